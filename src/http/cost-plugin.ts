import type { ApolloServerPlugin } from '@apollo/server';
import type { Context } from '../resolvers/context.js';
import { costError, operationCost } from './query-limits.js';

/** Refuses operations whose cost, with their variables applied, exceeds the limit. */
export function costLimit(maxCost: number): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request }) {
          if (!operation) return;
          const cost = operationCost(schema, document, operation, request.variables);
          if (cost > maxCost) {
            const err = costError(cost, maxCost);
            err.extensions.http = { status: 400 };
            throw err;
          }
        },
      };
    },
  };
}
