import { afterEach, describe, expect, it, vi } from 'vitest';
import { busiestWindow } from '../../test/support/call-rate.js';
import { type CallRateLimiter, SPACING_MS, type SharedPauses } from '../infra/call-rate.js';
import { Metrics } from '../infra/metrics.js';
import type { CallFailure, FailureCause, OrderOutcome, OrderParams, OrderStatusOutcome, OrderStatusParams, QuoteOutcome, QuoteParams } from './connector.js';
import { type CallKind, type PipelineSeller, SellerPipeline } from './pipeline.js';
import { SellerGates } from './seller-gate.js';
import { SellerStats } from './seller-stats.js';

/** When a test sets `wake`, the pipeline's waits end at once, and `wake` says how long each was. */
const waits = vi.hoisted(() => ({ wake: null as null | ((ms: number) => void) }));
vi.mock('../domain/clock.js', async (load) => {
  const real = await load<typeof import('../domain/clock.js')>();
  return {
    ...real,
    sleep: (ms: number, signal?: AbortSignal) => {
      if (!waits.wake) return real.sleep(ms, signal);
      waits.wake(ms);
      return Promise.resolve();
    },
  };
});
afterEach(() => {
  waits.wake = null;
});
import type { EndpointConfig } from './seller-config.js';

const endpoint: EndpointConfig = { method: 'GET', path: '/x', headers: {}, body: null, response: { itemPrice: 'price' } };
const seller = (over: Partial<PipelineSeller> = {}): PipelineSeller => ({
  id: 'seller-1',
  name: 'Seller One',
  baseUrl: 'http://127.0.0.1:9',
  headers: {},
  timeoutMs: 1_000,
  maxConcurrency: 8,
  quote: endpoint,
  order: endpoint,
  orderStatus: endpoint,
  ...over,
});
const book = { isbn: '9780141439518', title: null, author: null };
const quoteParams: QuoteParams = { book, condition: 'any', requestId: 'r1', quoteRef: 'ref', callbackUrl: 'http://cb' };
const orderParams: OrderParams = {
  book,
  requestId: 'r1',
  idempotencyKey: 'r1:1',
  offerId: null,
  totalCents: 1000,
  currency: 'USD',
  shipping: { name: 'A', line1: '1 St', line2: null, city: 'X', region: null, postalCode: '1', country: 'US' },
};
const statusParams: OrderStatusParams = { book, requestId: 'r1', idempotencyKey: 'r1:1', sellerOrderId: null };

const fail = (cause: FailureCause, over: Partial<CallFailure> = {}): CallFailure => ({
  reason: 'some message',
  cause,
  status: cause.kind === 'http' ? cause.status : null,
  retryAfterMs: null,
  ...over,
});
const http = (status: number, over: Partial<CallFailure> = {}) => fail({ kind: 'http', status }, over);

type Answer<O> = (signal: AbortSignal | undefined) => Promise<O> | O;

/** A connector whose answers the test scripts, counting the calls that reached it. */
class ScriptedConnector {
  readonly calls: Record<CallKind, number> = { quote: 0, order: 0, orderStatus: 0 };
  inFlight = 0;
  peak = 0;
  quoteAnswer: Answer<QuoteOutcome> = () => ({ kind: 'offers', offers: [], latencyMs: 5 });
  orderAnswer: Answer<OrderOutcome> = () => ({ kind: 'confirmed', orderId: 'o1', totalCents: null, deliveryEta: null, latencyMs: 5 });
  statusAnswer: Answer<OrderStatusOutcome> = () => ({ kind: 'placed', orderId: 'o1', totalCents: null, deliveryEta: null, latencyMs: 5 });

  quote = (_s: unknown, _p: QuoteParams, signal?: AbortSignal) => this.#run('quote', () => this.quoteAnswer(signal));
  order = (_s: unknown, _p: OrderParams, signal?: AbortSignal) => this.#run('order', () => this.orderAnswer(signal));
  orderStatus = (_s: unknown, _p: OrderStatusParams, signal?: AbortSignal) => this.#run('orderStatus', () => this.statusAnswer(signal));

  async #run<O>(kind: CallKind, answer: () => Promise<O> | O): Promise<O> {
    this.calls[kind] += 1;
    this.inFlight += 1;
    this.peak = Math.max(this.peak, this.inFlight);
    try {
      return await answer();
    } finally {
      this.inFlight -= 1;
    }
  }
}

function setup(o: { globalConcurrency?: number; breakerThreshold?: number; now?: () => number } = {}) {
  const connector = new ScriptedConnector();
  const clock = o.now ? { now: () => new Date(o.now!()) } : undefined;
  const gates = new SellerGates({ initialConcurrency: 8, breakerThreshold: o.breakerThreshold ?? 3, breakerHalfOpenMs: 60_000 }, clock);
  const stats = new SellerStats();
  const metrics = new Metrics(false);
  const pipeline = new SellerPipeline({ connector, gates, stats, globalConcurrency: o.globalConcurrency ?? 64, metrics, random: () => 0 });
  return { connector, gates, stats, metrics, pipeline };
}

async function counter(metrics: Metrics, name: string): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
  const m = metrics.registry.getSingleMetric(name);
  return m ? ((await m.get()).values as Array<{ labels: Record<string, string | number>; value: number }>) : [];
}

describe('SellerPipeline: one gate for every kind of call', () => {
  it('refuses quotes, orders and status checks alike, without sending, once the breaker is open', async () => {
    const { connector, gates, pipeline } = setup();
    connector.quoteAnswer = () => ({ kind: 'failed', ...fail({ kind: 'timeout' }), latencyMs: 5 });
    for (let i = 0; i < 3; i++) expect((await pipeline.quote(seller(), quoteParams)).kind).toBe('failed');
    expect(gates.get(seller()).health().breaker).toBe('OPEN');
    expect(pipeline.available(seller())).toBe(false);

    expect(await pipeline.quote(seller(), quoteParams)).toEqual({ kind: 'refused', why: 'circuit_open' });
    expect(await pipeline.order(seller(), orderParams)).toEqual({ kind: 'refused', why: 'circuit_open' });
    expect(await pipeline.orderStatus(seller(), statusParams)).toEqual({ kind: 'refused', why: 'circuit_open' });
    expect(connector.calls).toEqual({ quote: 3, order: 0, orderStatus: 0 });
  });

  it('order and status failures open the breaker too: they count like any call', async () => {
    const { connector, gates, pipeline } = setup();
    connector.orderAnswer = () => ({ kind: 'unknown', ...http(503), latencyMs: 5 });
    connector.statusAnswer = () => ({ kind: 'unknown', ...fail({ kind: 'timeout' }), latencyMs: 5 });
    await pipeline.order(seller(), orderParams);
    await pipeline.orderStatus(seller(), statusParams);
    expect(gates.get(seller()).health().breaker).toBe('CLOSED');
    await pipeline.order(seller(), orderParams);
    expect(gates.get(seller()).health().breaker).toBe('OPEN');
    expect(gates.get(seller()).health().errorRate).toBe(1);
  });

  it("holds every kind to the seller's concurrency limit and to the global cap", async () => {
    for (const limits of [{ maxConcurrency: 1, globalConcurrency: 64 }, { maxConcurrency: 8, globalConcurrency: 1 }]) {
      const { connector, pipeline } = setup({ globalConcurrency: limits.globalConcurrency });
      const s = seller({ maxConcurrency: limits.maxConcurrency });
      const slow = <O>(o: O) => () => new Promise<O>((r) => setTimeout(() => r(o), 10));
      connector.quoteAnswer = slow<QuoteOutcome>({ kind: 'offers', offers: [], latencyMs: 10 });
      connector.orderAnswer = slow<OrderOutcome>({ kind: 'rejected', status: 409, reason: 'HTTP 409', latencyMs: 10 });
      connector.statusAnswer = slow<OrderStatusOutcome>({ kind: 'not_placed', latencyMs: 10 });
      await Promise.all([
        pipeline.quote(s, quoteParams),
        pipeline.order(s, orderParams),
        pipeline.orderStatus(s, statusParams),
        pipeline.order(s, orderParams),
      ]);
      expect(connector.calls).toEqual({ quote: 1, order: 2, orderStatus: 1 });
      expect(connector.peak).toBe(1);
    }
  });

  it('keeps seller stats and metrics for every kind', async () => {
    const { connector, stats, metrics, pipeline } = setup();
    connector.orderAnswer = () => ({ kind: 'unknown', ...http(500), latencyMs: 5 });
    await pipeline.quote(seller(), quoteParams);
    await pipeline.order(seller(), orderParams);
    await pipeline.orderStatus(seller(), statusParams);
    expect(stats.get('seller-1')).toMatchObject({ calls: 3, failures: 1, inFlight: 0 });
    const calls = await counter(metrics, 'broker_seller_calls_total');
    expect(calls.map((c) => `${c.labels.endpoint}:${c.labels.outcome}`).sort()).toEqual(['order:http_500', 'orderStatus:placed', 'quote:offers']);
  });
});

describe('SellerPipeline: retries per kind, from the table', () => {
  it('retries a quote and a status check per the table, and never an order', async () => {
    const { connector, metrics, pipeline } = setup({ breakerThreshold: 100 });
    connector.quoteAnswer = () => ({ kind: 'failed', ...http(503), latencyMs: 1 });
    connector.statusAnswer = () => ({ kind: 'unknown', ...http(503), latencyMs: 1 });
    connector.orderAnswer = () => ({ kind: 'unknown', ...http(503), latencyMs: 1 });
    expect((await pipeline.quote(seller(), quoteParams)).kind).toBe('failed');
    expect((await pipeline.orderStatus(seller(), statusParams)).kind).toBe('unknown');
    expect((await pipeline.order(seller(), orderParams)).kind).toBe('unknown');
    // 503: two retries for the idempotent calls; the order went once and is left to the driver.
    expect(connector.calls).toEqual({ quote: 3, order: 1, orderStatus: 3 });
    const retries = await counter(metrics, 'broker_seller_call_retries_total');
    expect(retries.map((r) => [r.labels.endpoint, r.labels.cause, r.value]).sort()).toEqual([
      ['orderStatus', 'http_503', 2],
      ['quote', 'http_503', 2],
    ]);
  });

  it('never retries an order, whatever the cause', async () => {
    const { connector, pipeline } = setup({ breakerThreshold: 100 });
    for (const cause of [{ kind: 'network', errno: 'ECONNRESET' }, { kind: 'http', status: 502 }, { kind: 'http', status: 429 }] as FailureCause[]) {
      connector.orderAnswer = () => ({ kind: 'unknown', ...fail(cause), latencyMs: 1 });
      await pipeline.order(seller(), orderParams);
    }
    expect(connector.calls.order).toBe(3);
  });

  it('returns the answer of a retry that succeeds', async () => {
    const { connector, pipeline } = setup();
    let n = 0;
    connector.quoteAnswer = () =>
      ++n === 1 ? { kind: 'failed', ...fail({ kind: 'network', errno: 'ECONNRESET' }), latencyMs: 1 } : { kind: 'offers', offers: [], latencyMs: 1 };
    expect((await pipeline.quote(seller(), quoteParams)).kind).toBe('offers');
    expect(connector.calls.quote).toBe(2);
  });

  it('keys retries on the structured cause, never on the message', async () => {
    const { connector, pipeline } = setup({ breakerThreshold: 100 });
    connector.quoteAnswer = () => ({ kind: 'failed', ...fail({ kind: 'unreadable' }, { reason: 'request failed: ECONNRESET', status: 200 }), latencyMs: 1 });
    await pipeline.quote(seller(), quoteParams);
    expect(connector.calls.quote).toBe(1);
    connector.quoteAnswer = () => ({ kind: 'failed', ...fail({ kind: 'network', errno: 'ECONNREFUSED' }, { reason: '' }), latencyMs: 1 });
    await pipeline.quote(seller(), quoteParams);
    expect(connector.calls.quote).toBe(1 + 3);
  });

  it('stops retrying once the caller no longer needs the answer', async () => {
    const { connector, pipeline } = setup({ breakerThreshold: 100 });
    connector.quoteAnswer = () => ({ kind: 'failed', ...http(503), latencyMs: 1 });
    let needed = true;
    const outcome = await pipeline.quote(seller(), quoteParams, {
      stillNeeded: () => needed,
      onSend: () => {
        needed = false;
      },
    });
    expect(outcome.kind).toBe('failed');
    expect(connector.calls.quote).toBe(1);

    const controller = new AbortController();
    connector.quoteAnswer = () => {
      controller.abort();
      return { kind: 'failed', ...http(503), latencyMs: 1 };
    };
    await pipeline.quote(seller(), quoteParams, { signal: controller.signal });
    expect(connector.calls.quote).toBe(2);
  });

  it('sends nothing when the caller aborted or stopped needing the call before it was sent', async () => {
    const { connector, stats, pipeline } = setup();
    expect(await pipeline.quote(seller(), quoteParams, { signal: AbortSignal.abort() })).toEqual({ kind: 'refused', why: 'not_needed' });
    expect(await pipeline.orderStatus(seller(), statusParams, { stillNeeded: () => false })).toEqual({ kind: 'refused', why: 'not_needed' });
    expect(connector.calls).toEqual({ quote: 0, order: 0, orderStatus: 0 });
    expect(stats.get('seller-1')).toMatchObject({ calls: 0, inFlight: 0 });
  });
});

describe('SellerPipeline: what is not the seller\'s fault', () => {
  it.each([400, 422])('a quote answered %i (cannot answer this query) counts toward nothing and is not retried', async (status) => {
    const { connector, gates, stats, pipeline } = setup({ breakerThreshold: 3 });
    connector.quoteAnswer = () => ({ kind: 'unanswerable', status, latencyMs: 900 });
    for (let i = 0; i < 30; i++) expect(await pipeline.quote(seller(), quoteParams)).toMatchObject({ kind: 'unanswerable', status });
    expect(connector.calls.quote).toBe(30);
    const h = gates.get(seller()).health();
    expect(h).toMatchObject({ breaker: 'CLOSED', errorRate: 0, recentCalls: 0, concurrencyLimit: 8, pausedUntil: null });
    expect(stats.get('seller-1')).toMatchObject({ calls: 0, failures: 0, successRate: 1, inFlight: 0 });
    // The seller is served at once for a query it can answer.
    connector.quoteAnswer = () => ({ kind: 'offers', offers: [], latencyMs: 5 });
    expect((await pipeline.quote(seller(), quoteParams)).kind).toBe('offers');
  });

  it('aborted calls and calls that could not be sent count toward nothing either', async () => {
    const { connector, gates, stats, pipeline } = setup({ breakerThreshold: 2 });
    connector.quoteAnswer = () => ({ kind: 'failed', ...fail({ kind: 'aborted' }), latencyMs: 5 });
    for (let i = 0; i < 5; i++) await pipeline.quote(seller(), quoteParams);
    connector.quoteAnswer = () => ({ kind: 'failed', ...fail({ kind: 'unsendable' }), latencyMs: 0 });
    for (let i = 0; i < 5; i++) await pipeline.quote(seller(), quoteParams);
    expect(gates.get(seller()).health()).toMatchObject({ breaker: 'CLOSED', errorRate: 0, recentCalls: 0 });
    expect(stats.get('seller-1').calls).toBe(0);
  });

  it('an order refused 409 is a sound answer: it counts for the seller, not against it', async () => {
    const { connector, gates, pipeline } = setup({ breakerThreshold: 1 });
    connector.orderAnswer = () => ({ kind: 'rejected', status: 409, reason: 'HTTP 409', latencyMs: 5 });
    expect((await pipeline.order(seller(), orderParams)).kind).toBe('rejected');
    expect(gates.get(seller()).health()).toMatchObject({ breaker: 'CLOSED', errorRate: 0, recentCalls: 1 });
  });
});

describe("SellerPipeline: the seller's Retry-After", () => {
  it('skips quotes while the seller asked us to pause, and lets orders and status checks wait a short pause out', async () => {
    const { connector, pipeline } = setup({ breakerThreshold: 100 });
    connector.quoteAnswer = () => ({ kind: 'failed', ...http(429, { retryAfterMs: 5_000 }), latencyMs: 1 });
    // Retry-After beyond what a round can wait: no retry, and the seller is paused.
    await pipeline.quote(seller(), quoteParams);
    expect(connector.calls.quote).toBe(1);
    expect(await pipeline.quote(seller(), quoteParams)).toEqual({ kind: 'refused', why: 'paused' });
    // Longer than the seller's timeout: an order is refused too (the driver tries it later).
    expect(await pipeline.order(seller(), orderParams)).toEqual({ kind: 'refused', why: 'paused' });
    expect(connector.calls).toEqual({ quote: 1, order: 0, orderStatus: 0 });

    const short = setup({ breakerThreshold: 100 });
    short.connector.quoteAnswer = () => ({ kind: 'failed', ...http(429, { retryAfterMs: 60 }), latencyMs: 1 });
    // Retried once after the Retry-After, answered 429 again: paused for another 60 ms.
    await short.pipeline.quote(seller({ id: 'seller-2' }), quoteParams);
    expect(short.connector.calls.quote).toBe(2);
    const started = performance.now();
    expect((await short.pipeline.order(seller({ id: 'seller-2' }), orderParams)).kind).toBe('confirmed');
    expect(performance.now() - started).toBeGreaterThanOrEqual(40);
    expect(short.connector.calls.order).toBe(1);
  });

  it('waits again when its timer ends a millisecond before the pause does, and never calls early', async () => {
    let t = Date.parse('2030-01-01T00:00:00Z');
    const { connector, gates, pipeline } = setup({ breakerThreshold: 100, now: () => t });
    gates.get(seller()).pauseFor(60);
    const until = t + 60;
    const slept: number[] = [];
    // The first wait ends 1 ms short of the pause, as a timer may; later ones on time.
    waits.wake = (ms) => {
      slept.push(ms);
      t += slept.length === 1 ? ms - 1 : ms;
    };
    connector.orderAnswer = () => {
      expect(t).toBeGreaterThanOrEqual(until);
      return { kind: 'confirmed', orderId: 'o1', totalCents: null, deliveryEta: null, latencyMs: 5 };
    };
    expect((await pipeline.order(seller(), orderParams)).kind).toBe('confirmed');
    expect(slept).toEqual([60, 1]);
    expect(connector.calls.order).toBe(1);
  });

  it('reads the pause from the injected clock', async () => {
    let t = Date.parse('2030-01-01T00:00:00Z');
    const { connector, pipeline } = setup({ breakerThreshold: 100, now: () => t });
    connector.quoteAnswer = () => ({ kind: 'failed', ...http(429, { retryAfterMs: 30_000 }), latencyMs: 1 });
    await pipeline.quote(seller(), quoteParams);
    expect(pipeline.available(seller())).toBe(false);
    t += 30_000;
    expect(pipeline.available(seller())).toBe(true);
    connector.quoteAnswer = () => ({ kind: 'offers', offers: [], latencyMs: 1 });
    expect((await pipeline.quote(seller(), quoteParams)).kind).toBe('offers');
  });
});

describe("SellerPipeline: the seller's calls per second and the fleet's pauses", () => {
  afterEach(() => vi.useRealTimers());

  function paced(o: { callRate?: CallRateLimiter; pauses?: SharedPauses } = {}) {
    const connector = new ScriptedConnector();
    // The breaker stays out of these tests: a refusal here is the rate limit's or the pause's.
    const gates = new SellerGates({ initialConcurrency: 8, breakerThreshold: 100, breakerHalfOpenMs: 60_000 }, undefined, o.pauses);
    const stats = new SellerStats();
    const pipeline = new SellerPipeline({ connector, gates, stats, globalConcurrency: 64, random: () => 0, ...o });
    const starts: number[] = [];
    const record = <O>(o: O) => () => {
      starts.push(performance.now());
      return o;
    };
    connector.quoteAnswer = record<QuoteOutcome>({ kind: 'offers', offers: [], latencyMs: 5 });
    connector.orderAnswer = record<OrderOutcome>({ kind: 'confirmed', orderId: 'o1', totalCents: null, deliveryEta: null, latencyMs: 5 });
    connector.statusAnswer = record<OrderStatusOutcome>({ kind: 'placed', orderId: 'o1', totalCents: null, deliveryEta: null, latencyMs: 5 });
    return { connector, gates, stats, pipeline, starts };
  }

  it('holds quotes, orders and status checks together to maxCallsPerSecond: the rest wait their turn, holding no slot, counted against nothing', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const { connector, gates, stats, pipeline, starts } = paced();
    const s = seller({ maxCallsPerSecond: 2 });
    const all = Promise.all([
      pipeline.quote(s, quoteParams),
      pipeline.order(s, orderParams),
      pipeline.orderStatus(s, statusParams),
      pipeline.quote(s, quoteParams),
      pipeline.order(s, orderParams),
      pipeline.orderStatus(s, statusParams),
    ]);
    await vi.advanceTimersByTimeAsync(500);
    expect(starts).toHaveLength(2);
    // Waiting for their turn, the other four hold none of the seller's slots.
    expect(gates.get(s).health()).toMatchObject({ inFlight: 0, queued: 0 });
    await vi.advanceTimersByTimeAsync(2 * SPACING_MS);
    const outcomes = await all;
    expect(outcomes.map((o) => o.kind)).toEqual(['offers', 'confirmed', 'placed', 'offers', 'confirmed', 'placed']);
    expect(connector.calls).toEqual({ quote: 2, order: 2, orderStatus: 2 });
    expect(busiestWindow(starts)).toBe(2);
    expect(Math.max(...starts) - Math.min(...starts)).toBe(2 * SPACING_MS);
    expect(gates.get(s).health()).toMatchObject({ breaker: 'CLOSED', errorRate: 0, recentCalls: 6 });
    expect(stats.get('seller-1')).toMatchObject({ calls: 6, failures: 0 });
    // A seller without a limit is not held back.
    const free = seller({ id: 'seller-2', maxCallsPerSecond: null });
    await Promise.all([...Array(10)].map(() => pipeline.quote(free, quoteParams)));
    expect(connector.calls.quote).toBe(12);
  });

  it('a caller that stops waiting gives its turn back to the next one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const { connector, pipeline, starts } = paced();
    const s = seller({ maxCallsPerSecond: 1 });
    expect((await pipeline.quote(s, quoteParams)).kind).toBe('offers');
    const controller = new AbortController();
    const abandoned = pipeline.quote(s, quoteParams, { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(100);
    controller.abort();
    expect(await abandoned).toEqual({ kind: 'refused', why: 'not_needed' });
    const next = pipeline.order(s, orderParams);
    await vi.advanceTimersByTimeAsync(SPACING_MS - 100);
    expect((await next).kind).toBe('confirmed');
    // The slot it gave back, not one after it.
    expect(starts).toEqual([starts[0], starts[0]! + SPACING_MS]);
    expect(connector.calls).toEqual({ quote: 1, order: 1, orderStatus: 0 });
  });

  it("honours a pause published by another instance, and publishes the seller's own Retry-After (429, or 503 with Retry-After)", async () => {
    const published: Array<[string, number]> = [];
    const cleared: string[] = [];
    let remote = 0;
    const pauses: SharedPauses = {
      publish: (key, ms) => void published.push([key, ms]),
      remaining: (key) => (key.startsWith('breaker:') ? 0 : remote),
      clear: (key) => void cleared.push(key),
    };
    const { connector, gates, pipeline } = paced({ pauses });
    remote = 5_000;
    expect(await pipeline.quote(seller(), quoteParams)).toEqual({ kind: 'refused', why: 'paused' });
    expect(await pipeline.order(seller(), orderParams)).toEqual({ kind: 'refused', why: 'paused' });
    expect(pipeline.available(seller())).toBe(false);
    expect(connector.calls).toEqual({ quote: 0, order: 0, orderStatus: 0 });
    expect(published).toEqual([]);

    remote = 0;
    const other = seller({ id: 'seller-2' });
    connector.quoteAnswer = () => ({ kind: 'failed', ...http(429, { retryAfterMs: 5_000 }), latencyMs: 1 });
    await pipeline.quote(other, quoteParams);
    // What is left of the pause when it is published: a millisecond may have passed on a busy machine.
    const publishedToTheTen = () => published.map(([key, ms]) => [key, Math.ceil(ms / 10) * 10]);
    expect(publishedToTheTen()).toEqual([['seller-2', 5_000]]);

    const third = seller({ id: 'seller-3' });
    connector.quoteAnswer = () => ({ kind: 'failed', ...http(503), latencyMs: 1 });
    await pipeline.quote(third, quoteParams);
    expect(pipeline.available(third)).toBe(true);
    connector.quoteAnswer = () => ({ kind: 'failed', ...http(503, { retryAfterMs: 3_000 }), latencyMs: 1 });
    await pipeline.quote(third, quoteParams);
    expect(pipeline.available(third)).toBe(false);
    expect(publishedToTheTen()).toEqual([['seller-2', 5_000], ['seller-3', 3_000]]);

    // An operator's reset lifts the pause here and in the shared store.
    gates.reset(third);
    expect(pipeline.available(third)).toBe(true);
    expect(cleared).toEqual(['seller-3', 'breaker:seller-3']);
  });

  it('a breaker one instance opened holds on every instance, each still counting its own failures', async () => {
    const shared = new Map<string, number>();
    let t = 1_000_000;
    const clock = { now: () => new Date(t) };
    const pauses: SharedPauses = {
      publish: (key, ms) => void shared.set(key, t + ms),
      remaining: (key) => Math.max(0, (shared.get(key) ?? 0) - t),
      clear: (key) => void shared.delete(key),
    };
    const instance = () => {
      const connector = new ScriptedConnector();
      const gates = new SellerGates({ initialConcurrency: 8, breakerThreshold: 2, breakerHalfOpenMs: 10_000 }, clock, pauses);
      const pipeline = new SellerPipeline({ connector, gates, stats: new SellerStats(), globalConcurrency: 64, random: () => 0, pauses });
      return { connector, gates, pipeline };
    };
    const a = instance();
    const b = instance();
    a.connector.quoteAnswer = () => ({ kind: 'failed', ...http(500), latencyMs: 1 });
    // Two failures (the call and its retry) open A's breaker.
    expect(shared.size).toBe(0);
    await a.pipeline.quote(seller(), quoteParams);
    expect(a.connector.calls.quote).toBe(2);
    expect(a.gates.get(seller()).breakerState()).toBe('OPEN');
    expect(shared.get('breaker:seller-1')).toBe(t + 10_000);

    // B has never seen the seller fail: its next call is refused all the same, without a call.
    expect(await b.pipeline.quote(seller(), quoteParams)).toEqual({ kind: 'refused', why: 'circuit_open' });
    expect(b.connector.calls.quote).toBe(0);
    expect((await b.gates.synced(seller())).health().breaker).toBe('OPEN');

    // After the wait B probes on its own; a good answer closes its breaker.
    t += 10_000;
    expect((await b.pipeline.quote(seller(), quoteParams)).kind).toBe('offers');
    expect(b.gates.get(seller()).breakerState()).toBe('CLOSED');
    expect(b.connector.calls.quote).toBe(1);

    // An operator's reset on A lifts the shared breaker for the others.
    a.gates.reset(seller());
    expect(shared.has('breaker:seller-1')).toBe(false);
  });
});
