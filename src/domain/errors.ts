/**
 * Public error vocabulary. Codes are part of the API (API.md) and never change meaning;
 * the classes that carry them stay internal.
 */
export const USER_ERROR_CODES = [
  'INVALID_INPUT',
  'INVALID_ISBN',
  'BOOK_REQUIRED',
  'INVALID_PRICE',
  'UNSUPPORTED_CURRENCY',
  'INVALID_EXPIRY',
  'INVALID_ADDRESS',
  'INVALID_PAYMENT_TOKEN',
  'IDEMPOTENCY_KEY_REUSED',
  'NOT_FOUND',
  'NOT_CANCELABLE',
  'NOT_UPDATABLE',
  'INVALID_SELLER_CONFIG',
  'INVALID_URL',
] as const;

export type UserErrorCode = (typeof USER_ERROR_CODES)[number];

/** An expected refusal, returned to the client in `userErrors`. */
export interface UserError {
  /** Path to the offending input field, e.g. ["input", "book", "isbn"]. */
  field: string[] | null;
  message: string;
  code: UserErrorCode;
}

export function userError(code: UserErrorCode, message: string, field: string[] | null = null): UserError {
  return { code, message, field };
}

/** Result of an operation that either succeeds or is refused with user errors. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; errors: UserError[] };

export const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
export const refused = <T = never>(...errors: UserError[]): Outcome<T> => ({ ok: false, errors });

/** Top-level error codes carried in GraphQL `extensions.code`. */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BAD_USER_INPUT'
  | 'GRAPHQL_VALIDATION_FAILED'
  | 'RATE_LIMITED'
  | 'OVERLOADED'
  /** A dependency (Redis, the database) is down and the operation cannot be done safely without it; with retryAfterMs. */
  | 'UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

/**
 * An unexpected-but-classified failure the transport turns into a GraphQL error with
 * `extensions.code`. Anything that is not an AppError (or a GraphQLError with a code) is masked.
 */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extensions: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }
}

/** Raised by a guarded write whose row changed underneath it; callers reload and decide again. */
export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}

/** Coerces anything thrown into an Error, keeping the original as `cause`. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : 'non-error thrown', { cause: thrown });
}
