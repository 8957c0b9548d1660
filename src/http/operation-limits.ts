import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError } from 'graphql';
import type { Context } from '../resolvers/context.js';
import { costError, operationCost } from './query-limits.js';

/**
 * Refuses, over HTTP, subscriptions (they are served over WebSocket) and operations whose cost,
 * with their variables applied, exceeds the limit.
 */
export function httpOperationLimits(maxCost: number): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request }) {
          if (!operation) return;
          if (operation.operation === 'subscription') {
            throw new GraphQLError('subscriptions are served over WebSocket (graphql-transport-ws) at this same path', {
              extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
            });
          }
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
