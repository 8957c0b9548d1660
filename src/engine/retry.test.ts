import { describe, expect, it } from 'vitest';
import type { CallFailure } from '../partners/connector.js';
import { retryDecision } from './retry.js';

const f = (over: Partial<CallFailure>): CallFailure => ({ reason: 'HTTP 503', status: 503, retryAfterMs: null, timedOut: false, aborted: false, ...over });
const mid = () => 0.5;

describe('retryDecision', () => {
  it('never retries aborted or timed-out calls', () => {
    expect(retryDecision(f({ aborted: true }), 1, 10_000, mid).retry).toBe(false);
    expect(retryDecision(f({ timedOut: true, status: null, reason: 'timed out' }), 1, 10_000, mid).retry).toBe(false);
  });

  it('retries gateway errors twice with doubling backoff', () => {
    expect(retryDecision(f({}), 1, 10_000, mid)).toEqual({ retry: true, delayMs: 50 });
    expect(retryDecision(f({}), 2, 10_000, mid)).toEqual({ retry: true, delayMs: 100 });
    expect(retryDecision(f({}), 3, 10_000, mid).retry).toBe(false);
  });

  it('honours Retry-After on 429, and gives up when it is longer than the caller can wait', () => {
    expect(retryDecision(f({ status: 429, retryAfterMs: 300 }), 1, 1_000, mid)).toEqual({ retry: true, delayMs: 300 });
    expect(retryDecision(f({ status: 429, retryAfterMs: 2_000 }), 1, 1_000, mid).retry).toBe(false);
    expect(retryDecision(f({ status: 429, retryAfterMs: 300 }), 2, 1_000, mid).retry).toBe(false);
  });

  it('retries connection failures but not other client errors or unreadable answers', () => {
    expect(retryDecision(f({ status: null, reason: 'request failed: ECONNRESET' }), 1, 1_000, mid).retry).toBe(true);
    expect(retryDecision(f({ status: 400, reason: 'HTTP 400' }), 1, 1_000, mid).retry).toBe(false);
    expect(retryDecision(f({ status: 200, reason: 'unreadable quote: itemPrice' }), 1, 1_000, mid).retry).toBe(false);
    expect(retryDecision(f({ status: null, reason: 'template: unknown placeholder' }), 1, 1_000, mid).retry).toBe(false);
  });
});
