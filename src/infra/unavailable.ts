import { AppError } from '../domain/errors.js';

/**
 * Failures that mean a dependency (Redis, the database) cannot be reached right now, as opposed
 * to a bug: the caller falls back, retries, or answers UNAVAILABLE with a retry hint — never
 * INTERNAL_SERVER_ERROR. Recognised by shape, so nothing outside infra/ needs the client libraries.
 */

/** The retry hint sent with UNAVAILABLE: about one reconnect attempt away. */
export const UNAVAILABLE_RETRY_AFTER_MS = 1_000;

/** Socket errnos: the peer is not there, or went away mid-call. */
const UNREACHABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * postgres.js's own codes for a connection that closed under a query, was closed by the pool
 * ending or being destroyed, or could not be opened in time.
 */
const POSTGRES_CLIENT_CODES = new Set(['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT']);

/**
 * SQLSTATEs of a server going away or not back yet: admin_shutdown (57P01, a stop or restart),
 * crash_shutdown (57P02), cannot_connect_now (57P03, starting up or recovering), and the
 * connection_exception class (every code starting 08). Nothing was done, or the outcome is unknown and the work
 * is retried under the usual guards.
 */
const POSTGRES_UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03']);
const POSTGRES_UNAVAILABLE_CLASSES = ['08'];

/** Redis replies that mean "not now" rather than "never": loading, failing over, busy with a script. */
const TRANSIENT_REPLIES = new Set(['LOADING', 'READONLY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN', 'BUSY']);

/** ioredis's own errors for a command it could not send or got no answer to. */
const CLIENT_ERRORS: readonly RegExp[] = [
  /^Stream isn't writeable/,
  /^Connection is closed/,
  /^Command timed out/,
  /^Reached the max retries per request limit/,
];

export function isUnavailable(thrown: unknown): boolean {
  let e: unknown = thrown;
  // Wrapped errors keep what happened as `cause`: look a few levels down.
  for (let depth = 0; depth < 5 && e instanceof Error; depth++, e = e.cause) {
    const { name, message } = e;
    if (e instanceof AppError) return e.code === 'UNAVAILABLE';
    if (name === 'MaxRetriesPerRequestError') return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (UNREACHABLE_ERRNOS.has(code) || POSTGRES_CLIENT_CODES.has(code))) return true;
    if (name === 'PostgresError' && typeof code === 'string' && isUnavailableState(code)) return true;
    if (name === 'ReplyError') return TRANSIENT_REPLIES.has(message.split(' ', 1)[0]!);
    if (CLIENT_ERRORS.some((re) => re.test(message))) return true;
  }
  return false;
}

/** The public form of an unavailable dependency, keeping what happened as `cause`. */
export function unavailable(cause: unknown, retryAfterMs = UNAVAILABLE_RETRY_AFTER_MS): AppError {
  if (cause instanceof AppError && cause.code === 'UNAVAILABLE') return cause;
  return new AppError('UNAVAILABLE', 'a service this operation needs is unavailable; retry shortly', { retryAfterMs }, { cause });
}

function isUnavailableState(sqlState: string): boolean {
  return POSTGRES_UNAVAILABLE_STATES.has(sqlState) || POSTGRES_UNAVAILABLE_CLASSES.includes(sqlState.slice(0, 2));
}
