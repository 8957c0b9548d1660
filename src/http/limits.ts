import type { ApolloServerPlugin } from '@apollo/server';
import { HeaderMap } from '@apollo/server';
import { type DocumentNode, GraphQLError, Kind, type SelectionSetNode } from 'graphql';
import type { RateLimiter } from '../infra/rate-limit.js';
import type { Context } from '../resolvers/context.js';

/**
 * Per-user limits on mutations (SPEC §6): each root mutation field costs one token from the
 * caller's bucket, so aliasing fifty creates into one operation costs fifty. Refusals are
 * RATE_LIMITED with a retry hint, as HTTP 429 with Retry-After.
 */
export function mutationRateLimit(limiter: RateLimiter): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, document, contextValue }) {
          if (operation?.operation !== 'mutation') return;
          const viewer = contextValue.viewer;
          if (viewer === null || viewer === 'invalid') return; // resolvers answer UNAUTHENTICATED
          const verdict = await limiter.take(`mutations:${viewer.id}`, rootFieldCount(operation.selectionSet, fragmentsOf(document)));
          if (verdict.ok) return;
          const headers = new HeaderMap([['retry-after', String(Math.ceil(verdict.retryAfterMs / 1000))]]);
          throw new GraphQLError('too many mutations; retry later', {
            extensions: { code: 'RATE_LIMITED', retryAfterMs: verdict.retryAfterMs, http: { status: 429, headers } },
          });
        },
      };
    },
  };
}

/** Root fields the operation will run, looking through fragments (validation has ruled out cycles). */
function rootFieldCount(set: SelectionSetNode, fragments: Map<string, SelectionSetNode>): number {
  let n = 0;
  for (const s of set.selections) {
    if (s.kind === Kind.FIELD) n += 1;
    else if (s.kind === Kind.INLINE_FRAGMENT) n += rootFieldCount(s.selectionSet, fragments);
    else {
      const f = fragments.get(s.name.value);
      if (f) n += rootFieldCount(f, fragments);
    }
  }
  return Math.max(1, n);
}

function fragmentsOf(doc: DocumentNode): Map<string, SelectionSetNode> {
  const out = new Map<string, SelectionSetNode>();
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) out.set(d.name.value, d.selectionSet);
  return out;
}
