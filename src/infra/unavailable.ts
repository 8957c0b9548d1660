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
    if (typeof code === 'string' && UNREACHABLE_ERRNOS.has(code)) return true;
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
