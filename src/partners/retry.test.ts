import { describe, expect, it } from 'vitest';
import type { CallFailure, FailureCause } from './connector.js';
import { retryDecision } from './retry.js';

const f = (cause: FailureCause, over: Partial<CallFailure> = {}): CallFailure => ({
  reason: 'whatever the message says',
  cause,
  status: cause.kind === 'http' ? cause.status : null,
  retryAfterMs: null,
  ...over,
});
const http = (status: number) => f({ kind: 'http', status });
const mid = () => 0.5;

describe('retryDecision', () => {
  it('never retries aborted or timed-out calls', () => {
    expect(retryDecision(f({ kind: 'aborted' }), 1, 10_000, mid).retry).toBe(false);
    expect(retryDecision(f({ kind: 'timeout' }), 1, 10_000, mid).retry).toBe(false);
  });

  it('retries gateway errors twice with doubling backoff', () => {
    expect(retryDecision(http(503), 1, 10_000, mid)).toEqual({ retry: true, delayMs: 50 });
    expect(retryDecision(http(503), 2, 10_000, mid)).toEqual({ retry: true, delayMs: 100 });
    expect(retryDecision(http(503), 3, 10_000, mid).retry).toBe(false);
    expect(retryDecision(http(500), 1, 10_000, mid).retry).toBe(true);
    expect(retryDecision(http(500), 2, 10_000, mid).retry).toBe(false);
  });

  it('honours Retry-After on 429, and gives up when it is longer than the caller can wait', () => {
    expect(retryDecision(f({ kind: 'http', status: 429 }, { retryAfterMs: 300 }), 1, 1_000, mid)).toEqual({ retry: true, delayMs: 300 });
    expect(retryDecision(f({ kind: 'http', status: 429 }, { retryAfterMs: 2_000 }), 1, 1_000, mid).retry).toBe(false);
    expect(retryDecision(f({ kind: 'http', status: 429 }, { retryAfterMs: 300 }), 2, 1_000, mid).retry).toBe(false);
  });

  it('retries connection failures by errno', () => {
    for (const errno of ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET']) {
      expect(retryDecision(f({ kind: 'network', errno }), 1, 1_000, mid)).toEqual({ retry: true, delayMs: 25 });
    }
    expect(retryDecision(f({ kind: 'network', errno: 'ECONNRESET' }), 3, 1_000, mid).retry).toBe(false);
    // Not transient: a name that does not resolve, a certificate the partner got wrong.
    expect(retryDecision(f({ kind: 'network', errno: 'ENOTFOUND' }), 1, 1_000, mid).retry).toBe(false);
    expect(retryDecision(f({ kind: 'network', errno: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 1, 1_000, mid).retry).toBe(false);
  });

  it('does not retry other client errors, unreadable answers or calls that could not be sent', () => {
    expect(retryDecision(http(400), 1, 1_000, mid).retry).toBe(false);
    expect(retryDecision(http(418), 1, 1_000, mid).retry).toBe(false);
    expect(retryDecision(f({ kind: 'unreadable' }, { status: 200 }), 1, 1_000, mid).retry).toBe(false);
    expect(retryDecision(f({ kind: 'unsendable' }), 1, 1_000, mid).retry).toBe(false);
  });

  it('decides on the cause, never on the message', () => {
    // A message that reads like a retryable failure changes nothing; the same cause with any message is retried.
    expect(retryDecision(f({ kind: 'unreadable' }, { reason: 'request failed: ECONNRESET' }), 1, 1_000, mid).retry).toBe(false);
    expect(retryDecision(f({ kind: 'network', errno: 'ECONNRESET' }, { reason: '' }), 1, 1_000, mid).retry).toBe(true);
  });
});
