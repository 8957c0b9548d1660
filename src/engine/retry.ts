import type { CallFailure } from '../partners/connector.js';

/**
 * Which failed seller calls are worth repeating, and after how long — one table for every
 * idempotent call (quotes, order status). Orders are never retried from here: an order is
 * repeated only with its attempt's idempotency key, by the ordering state machine.
 */
interface Rule {
  match: (f: CallFailure) => boolean;
  /** Retries allowed for this kind of failure. */
  retries: number;
  /** First wait; doubles per retry, with ±50% jitter. A Retry-After header overrides it. */
  baseMs: number;
}

const RULES: Rule[] = [
  // Nobody is waiting for an aborted call, and a timed-out one already spent the seller's time budget.
  { match: (f) => f.aborted || f.timedOut, retries: 0, baseMs: 0 },
  // Rate limited: retry once, after the seller's own Retry-After when it is short enough.
  { match: (f) => f.status === 429, retries: 1, baseMs: 500 },
  // Gateway errors and unavailability are usually brief.
  { match: (f) => f.status === 502 || f.status === 503 || f.status === 504, retries: 2, baseMs: 50 },
  { match: (f) => f.status === 500, retries: 1, baseMs: 50 },
  // Connection refused or reset before an answer.
  { match: (f) => f.status === null && f.reason.startsWith('request failed'), retries: 2, baseMs: 25 },
];

export interface RetryDecision {
  retry: boolean;
  delayMs: number;
}

/** Decides whether retry number `attempt` (1-based) should happen, and after what wait. */
export function retryDecision(f: CallFailure, attempt: number, maxWaitMs: number, random = Math.random): RetryDecision {
  const rule = RULES.find((r) => r.match(f));
  if (!rule || attempt > rule.retries) return { retry: false, delayMs: 0 };
  const delay = f.retryAfterMs ?? rule.baseMs * 2 ** (attempt - 1) * (0.5 + random());
  if (delay > maxWaitMs) return { retry: false, delayMs: 0 };
  return { retry: true, delayMs: Math.round(delay) };
}
