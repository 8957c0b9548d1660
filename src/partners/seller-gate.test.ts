import { describe, expect, it } from 'vitest';
import { type Observation, OpenCircuitError, SellerGate, SellerGates } from './seller-gate.js';

type O = { ok: boolean | 'neutral'; ms: number; status?: number; retryAfterMs?: number };
const classify = (o: O): Observation => ({
  verdict: o.ok === 'neutral' ? 'neutral' : o.ok ? 'ok' : 'failed',
  latencyMs: o.ms,
  retryAfterMs: o.retryAfterMs ?? null,
  rateLimited: o.status === 429,
});
const gate = (over: Partial<ConstructorParameters<typeof SellerGate>[0]> = {}, now?: () => number) =>
  new SellerGate({ maxConcurrency: 64, initialConcurrency: 8, breakerThreshold: 3, breakerHalfOpenMs: 20, timeoutMs: 1000, ...over }, now);

async function until(cond: () => boolean, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('SellerGate', () => {
  it('opens after consecutive failures, refuses calls without making them, then lets one probe through', async () => {
    const g = gate();
    let calls = 0;
    const fail = () => g.run(async () => (calls++, { ok: false, ms: 5 }), classify);
    for (let i = 0; i < 3; i++) await fail();
    expect(g.health().breaker).toBe('OPEN');
    expect(g.available()).toBe(false);
    await expect(fail()).rejects.toBeInstanceOf(OpenCircuitError);
    expect(calls).toBe(3);

    await until(() => g.available());
    await g.run(async () => (calls++, { ok: true, ms: 5 }), classify);
    expect(calls).toBe(4);
    expect(g.health().breaker).toBe('CLOSED');
  });

  it('halves its concurrency limit on failure and grows it back slowly on success', async () => {
    const g = gate({ breakerThreshold: 100 });
    expect(g.health().concurrencyLimit).toBe(8);
    await g.run(async () => ({ ok: false, ms: 5 }), classify);
    expect(g.health().concurrencyLimit).toBe(4);
    for (let i = 0; i < 4; i++) await g.run(async () => ({ ok: true, ms: 5 }), classify);
    expect(g.health().concurrencyLimit).toBe(4);
    for (let i = 0; i < 40; i++) await g.run(async () => ({ ok: true, ms: 5 }), classify);
    expect(g.health().concurrencyLimit).toBeGreaterThan(4);
    expect(g.health().concurrencyLimit).toBeLessThanOrEqual(64);
  });

  it('never runs more calls at once than its limit', async () => {
    const g = gate({ initialConcurrency: 2, maxConcurrency: 2 });
    let now = 0;
    let peak = 0;
    const releases: Array<() => void> = [];
    const calls = [...Array(6)].map(() =>
      g.run(
        () =>
          new Promise<O>((resolve) => {
            now += 1;
            peak = Math.max(peak, now);
            releases.push(() => {
              now -= 1;
              resolve({ ok: true, ms: 1 });
            });
          }),
        classify,
      ),
    );
    await until(() => releases.length === 2);
    expect(g.health().queued).toBe(4);
    while (releases.length) {
      releases.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    await until(() => releases.length === 0 && now === 0);
    await Promise.all(calls.map(async (c) => c));
    expect(peak).toBe(2);
  });

  it('pauses a seller that answered 429 for its Retry-After', async () => {
    const g = gate({ breakerThreshold: 100 });
    await g.run(async () => ({ ok: false, ms: 5, status: 429, retryAfterMs: 60_000 }), classify);
    expect(g.available()).toBe(false);
    expect(g.health().pausedUntil).not.toBeNull();
    g.reset();
    expect(g.available()).toBe(true);
    expect(g.health().breaker).toBe('CLOSED');
  });

  it('reports recent latency percentiles and error rate', async () => {
    const g = gate({ breakerThreshold: 100 });
    for (let i = 1; i <= 10; i++) await g.run(async () => ({ ok: i !== 10, ms: i * 10 }), classify);
    const h = g.health();
    expect(h.latencyMs.p50).toBe(60);
    expect(h.latencyMs.p99).toBe(100);
    expect(h.errorRate).toBeCloseTo(0.1);
    expect(h.recentCalls).toBe(10);
  });

  it('counts neutral calls (aborted, unanswerable, never sent) toward nothing: breaker, error rate, limit', async () => {
    const g = gate({ breakerThreshold: 3 });
    for (let i = 0; i < 30; i++) await g.run(async () => ({ ok: 'neutral' as const, ms: 5 }), classify);
    const h = g.health();
    expect(h.breaker).toBe('CLOSED');
    expect(h.errorRate).toBe(0);
    expect(h.recentCalls).toBe(0);
    expect(h.concurrencyLimit).toBe(8);
    // Nor do they break a run of failures: two failures, neutral calls, one failure still opens it.
    await g.run(async () => ({ ok: false, ms: 5 }), classify);
    await g.run(async () => ({ ok: false, ms: 5 }), classify);
    for (let i = 0; i < 5; i++) await g.run(async () => ({ ok: 'neutral' as const, ms: 5 }), classify);
    await g.run(async () => ({ ok: false, ms: 5 }), classify);
    expect(g.health().breaker).toBe('OPEN');
  });

  it('lets one probe through when half-open; a neutral probe leaves it half-open for the next call', async () => {
    let t = 1_000;
    const g = gate({ breakerHalfOpenMs: 100 }, () => t);
    for (let i = 0; i < 3; i++) await g.run(async () => ({ ok: false, ms: 5 }), classify);
    expect(g.available()).toBe(false);
    t += 100;
    expect(g.available()).toBe(true);
    let release!: () => void;
    const probe = g.run(() => new Promise<O>((r) => (release = () => r({ ok: 'neutral', ms: 5 }))), classify);
    await until(() => release !== undefined);
    expect(g.health().breaker).toBe('HALF_OPEN');
    // While the probe is out nobody else gets through.
    expect(g.available()).toBe(false);
    await expect(g.run(async () => ({ ok: true, ms: 5 }), classify)).rejects.toBeInstanceOf(OpenCircuitError);
    release();
    await probe;
    expect(g.health().breaker).toBe('HALF_OPEN');
    expect(g.available()).toBe(true);
    await g.run(async () => ({ ok: true, ms: 5 }), classify);
    expect(g.health().breaker).toBe('CLOSED');
  });

  it('a failed probe opens the breaker again for another wait', async () => {
    let t = 0;
    const g = gate({ breakerHalfOpenMs: 100 }, () => t);
    for (let i = 0; i < 3; i++) await g.run(async () => ({ ok: false, ms: 5 }), classify);
    t = 150;
    await g.run(async () => ({ ok: false, ms: 5 }), classify);
    expect(g.health().breaker).toBe('OPEN');
    t = 200;
    expect(g.available()).toBe(false);
    t = 250;
    expect(g.available()).toBe(true);
  });

  it('reads time from the injected clock: pauses end when the clock says so', async () => {
    let t = Date.parse('2030-01-01T00:00:00Z');
    const gates = new SellerGates({ initialConcurrency: 4, breakerThreshold: 100, breakerHalfOpenMs: 20 }, { now: () => new Date(t) });
    const g = gates.get({ id: 's', maxConcurrency: 8, timeoutMs: 1000 });
    await g.run(async () => ({ ok: false, ms: 5, status: 429, retryAfterMs: 5_000 }), classify);
    expect(g.available()).toBe(false);
    expect(g.pausedFor()).toBe(5_000);
    expect(g.health().pausedUntil?.toISOString()).toBe('2030-01-01T00:00:05.000Z');
    t += 5_000;
    expect(g.available()).toBe(true);
    expect(g.health().pausedUntil).toBeNull();
  });
});
