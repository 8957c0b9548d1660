import type { ApolloServerPlugin } from '@apollo/server';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { Context } from '../resolvers/context.js';

/**
 * Names the GraphQL operation's span (opened around the HTTP request in routes.ts, active while
 * Apollo runs it) after the operation, and marks it failed when the operation has errors.
 */
export function operationTracing(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      const span = trace.getActiveSpan();
      if (!span?.isRecording()) return;
      return {
        async didResolveOperation({ operation, operationName }) {
          const type = operation?.operation ?? 'unknown';
          span.updateName(`graphql.${type}${operationName ? ` ${operationName}` : ''}`);
          span.setAttributes({ 'graphql.operation.type': type, ...(operationName ? { 'graphql.operation.name': operationName } : {}) });
        },
        async didEncounterErrors({ errors }) {
          const codes = [...new Set(errors.map((e) => String(e.extensions?.code ?? 'INTERNAL_SERVER_ERROR')))];
          span.setAttribute('graphql.error.codes', codes);
          span.setStatus({ code: SpanStatusCode.ERROR, message: codes.join(',') });
        },
      };
    },
  };
}
