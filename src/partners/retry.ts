import type { CallFailure, FailureCause } from './connector.js';

/**
 * Which failed seller calls are worth repeating, and after how long — one table for every
 * idempotent call (quotes, revalidations, order status), keyed on the failure's structured cause
 * (HTTP status, errno), never on its message. Orders are never retried from here: an order is
 * repeated only with its attempt's idempotency key, by the attempt driver.
 *
 * Not retried, having no row: a timeout (it already spent the seller's time budget), an aborted
 * call (nobody is waiting), an unreadable answer (it would read the same again), a call that could
 * not be sent, and every status or errno not listed.
 */
interface Rule {
  /** HTTP statuses, or connection errors by code, this row covers. */
  when: { http: readonly number[] } | { errno: readonly string[] };
  /** Retries allowed for this kind of failure. */
  retries: number;
  /** First wait; doubles per retry, with ±50% jitter. A Retry-After header overrides it. */
  baseMs: number;
}

export const RETRY_TABLE: readonly Rule[] = [
  // Rate limited: retry once, after the seller's own Retry-After when it is short enough.
  { when: { http: [429] }, retries: 1, baseMs: 500 },
  // Gateway errors and unavailability are usually brief.
  { when: { http: [502, 503, 504] }, retries: 2, baseMs: 50 },
  { when: { http: [500] }, retries: 1, baseMs: 50 },
  // Refused or reset before an answer (a restarting partner, a pooled socket it had closed).
  {
    when: { errno: ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'] },
    retries: 2,
    baseMs: 25,
  },
];

function ruleFor(cause: FailureCause): Rule | undefined {
  switch (cause.kind) {
    case 'http':
      return RETRY_TABLE.find((r) => 'http' in r.when && r.when.http.includes(cause.status));
    case 'network':
      return RETRY_TABLE.find((r) => 'errno' in r.when && r.when.errno.includes(cause.errno));
    case 'timeout':
    case 'aborted':
    case 'unreadable':
    case 'unsendable':
      return undefined;
    default: {
      const never: never = cause;
      throw new Error(`unknown failure cause ${JSON.stringify(never)}`);
    }
  }
}

export interface RetryDecision {
  retry: boolean;
  delayMs: number;
}

/** Decides whether retry number `attempt` (1-based) should happen, and after what wait. */
export function retryDecision(f: Pick<CallFailure, 'cause' | 'retryAfterMs'>, attempt: number, maxWaitMs: number, random = Math.random): RetryDecision {
  const rule = ruleFor(f.cause);
  if (!rule || attempt > rule.retries) return { retry: false, delayMs: 0 };
  const delay = f.retryAfterMs ?? rule.baseMs * 2 ** (attempt - 1) * (0.5 + random());
  if (delay > maxWaitMs) return { retry: false, delayMs: 0 };
  return { retry: true, delayMs: Math.round(delay) };
}
