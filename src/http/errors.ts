import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Logger } from 'pino';
import { AppError } from '../domain/errors.js';
import { isUnavailable, unavailable } from '../infra/unavailable.js';
import { withoutSuggestions } from './query-limits.js';

/** Codes whose messages were written for clients; anything else is masked. */
const PUBLIC_CODES = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'QUERY_NOT_IN_SAFELIST',
  'RATE_LIMITED',
  'OVERLOADED',
  'UNAVAILABLE',
]);

export const MASKED_MESSAGE = 'Internal server error';

/**
 * One error formatter for HTTP (Apollo's formatError) and WebSocket (graphql-ws hooks), so a
 * client sees the same thing on both: public errors keep message and code, without stack
 * traces; a dependency that cannot be reached (Redis, the database) is UNAVAILABLE with a retry
 * hint; everything else becomes INTERNAL_SERVER_ERROR and is logged, never shown.
 */
export function makeErrorFormatter(log: Logger, hideSchemaDetails = false) {
  return (raw: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const formatted = hideSchemaDetails ? { ...raw, message: withoutSuggestions(raw.message) } : raw;
    const code = formatted.extensions?.code;
    let original = unwrapResolverError(error);
    if (!(original instanceof AppError) && isUnavailable(original)) {
      log.warn({ err: original, path: formatted.path }, 'a dependency was unavailable to a GraphQL operation');
      original = unavailable(original);
    }
    if (original instanceof AppError) {
      return { message: original.message, ...(formatted.path ? { path: formatted.path } : {}), extensions: { ...original.extensions, code: original.code } };
    }
    if (typeof code === 'string' && PUBLIC_CODES.has(code) && original instanceof GraphQLError) {
      const { stacktrace: _drop, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    log.error({ err: original, path: formatted.path }, 'internal error in a GraphQL operation');
    return {
      message: MASKED_MESSAGE,
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}

export type ErrorFormatter = ReturnType<typeof makeErrorFormatter>;

/** For transports outside Apollo: give errors the codes Apollo would, then format them. */
export function formatErrors(errors: readonly GraphQLError[], format: ErrorFormatter, fallbackCode?: string) {
  return errors.map((e) => {
    const json = e.toJSON();
    const code = json.extensions?.code ?? fallbackCode;
    return format(code ? { ...json, extensions: { ...json.extensions, code } } : json, e);
  });
}
