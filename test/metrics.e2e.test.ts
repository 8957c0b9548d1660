import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usd } from './support/fixtures.js';
import { collect, eventually } from './support/server.js';
import { type World, startWorld } from './support/world.js';

/**
 * SPEC §9's metrics, each moved by the event it counts: the exposition text is read before and
 * after an ordered, a quoted and an out-of-stock request (and the rounds, cache hits, aborts,
 * timeouts, breaker, refusals and retries they cause), all seen from outside through GET /metrics. The operator's
 * gauges (attempts needing attention, open dead letters, outbox lag) are moved by an attempt nobody
 * can resolve, a webhook that keeps failing and a relay with no free slot, and moved back by
 * the re-drive or delivery that resolves them, in a world of their own.
 *
 * Sellers: PageTurner and Inkwell in tier 1, Dog-Ear in tier 2 (sandbox seed 1 prices).
 * Inkwell times out after 300 ms and one failure opens a breaker, so the out-of-stock step can
 * show a timeout and an open breaker without waiting long.
 */

const BOOK = {
  /** PageTurner 1467 (t1), Dog-Ear (t2); Inkwell does not carry it. */
  pride: '9780141439518',
  /** Every seller over 1600. */
  hobbit: '9780547928227',
  /** Every seller over 1000. */
  frankenstein: '9780141439471',
  /** Out of print: nobody carries it. */
  ulysses: '9780679722762',
};

/** Every metric SPEC §9 and issue 13 name, by the name an operator scrapes. */
const SPEC_METRICS = [
  'broker_seller_calls_total',
  'broker_seller_call_duration_seconds',
  'broker_seller_call_retries_total',
  'broker_seller_calls_refused_total',
  'broker_requests_created_total',
  'broker_round_seller_calls',
  'broker_seller_calls_skipped_total',
  'broker_offer_cache_lookups_total',
  'broker_rounds_started_total',
  'broker_round_members_total',
  'broker_rounds_attached_total',
  'broker_queue_lag_seconds',
  'broker_rounds_in_flight',
  'broker_requests_active',
  'broker_request_outcomes_total',
  'broker_order_attempts_total',
  'broker_resolution_seconds',
  'broker_subscriptions',
  'broker_websocket_connections',
  'broker_breaker_state',
  'broker_attempts_needing_attention',
  'broker_dead_letters_open',
  'broker_webhook_outbox_lag_seconds',
  'broker_webhook_deliveries_total',
];

const WATCH = `subscription Watch($id: ID!) { purchaseRequestUpdated(id: $id) { id status } }`;

type Sample = { name: string; labels: Record<string, string>; value: number };

/** The Prometheus text format, one sample per line. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

class Scrape {
  readonly samples: Sample[];
  constructor(readonly text: string) {
    this.samples = parse(text);
  }

  /** The sum of the samples of `name` whose labels include `match` (0 when there are none). */
  value(name: string, match: Record<string, string> = {}): number {
    return this.samples
      .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
      .reduce((n, s) => n + s.value, 0);
  }

  declares(name: string): boolean {
    return new RegExp(`^# TYPE ${name} `, 'm').test(this.text);
  }
}

/** The world the current describe block runs against. */
let w: World;
let sellerName: (key: string) => string;

async function scrape(): Promise<Scrape> {
  const res = await fetch(`${w.server.url}/metrics`);
  expect(res.status).toBe(200);
  return new Scrape(await res.text());
}

/** Polls /metrics until `predicate` holds (no fixed sleeps). */
const scrapeUntil = (predicate: (s: Scrape) => boolean, timeoutMs = 10_000): Promise<Scrape> =>
  eventually(async () => {
    const s = await scrape();
    return predicate(s) ? s : null;
  }, timeoutMs);

const create = (isbn: string, cents: number) => w.create({ book: { isbn }, maxTotalPrice: usd(cents) });
const settled = (...statuses: string[]) => (r: any) => statuses.includes(r.status);

describe('GET /metrics, SPEC §9', () => {
  beforeAll(async () => {
    w = await startWorld({
      sellers: [{ key: 'pageturner' }, { key: 'inkwell', timeoutMs: 300 }, { key: 'dogear' }],
      // A lease long enough that a create slowed by a busy machine still starts the request it
      // wrote (a create that used up half its lease hands the request back to be claimed).
      env: { ENGINE_MAX_ACTIVE: '2', BREAKER_THRESHOLD: '1', BREAKER_HALF_OPEN_MS: '600000', ENGINE_LEASE_MS: '20000' },
    });
    sellerName = (key) => w.sandbox.sellers.find((s) => s.baseUrl.endsWith(`/${key}`))!.name;
  });
  afterAll(async () => {
    await w?.close();
  });

  it('declares every metric the spec names, in the Prometheus text format', async () => {
    const s = await scrape();
    for (const name of SPEC_METRICS) expect(s.declares(name), name).toBe(true);
    expect(s.value('broker_rounds_in_flight')).toBe(0);
    // The engine's own subscriptions (signals, quotes) are not users'.
    expect(s.value('broker_subscriptions')).toBe(0);
  });

  it('an ordered request moves the seller-call, order, outcome, resolution and early-exit metrics', async () => {
    const before = await scrape();
    // Inkwell is slow: PageTurner's offer decides the round, and Inkwell's call is cut short.
    await w.sandbox.configure('inkwell', { script: [{ endpoint: 'quote', fault: 'slow', ms: 2_000 }] });
    const id = await create(BOOK.pride, 5000);
    expect((await w.until(id, settled('ORDERED', 'FAILED'))).status).toBe('ORDERED');
    const after = await scrapeUntil((s) => s.value('broker_seller_calls_total', { outcome: 'aborted' }) > before.value('broker_seller_calls_total', { outcome: 'aborted' }));

    const moved = (name: string, match: Record<string, string> = {}) => after.value(name, match) - before.value(name, match);
    expect(moved('broker_requests_created_total')).toBe(1);
    // Created on an instance whose engine had room: taken as it was written, never claimed.
    expect(moved('broker_engine_requests_taken_total', { how: 'on_create' })).toBe(1);
    expect(moved('broker_engine_requests_taken_total', { how: 'claim' })).toBe(0);
    expect(moved('broker_seller_calls_total', { seller: sellerName('pageturner'), endpoint: 'quote', outcome: 'offers' })).toBe(1);
    expect(moved('broker_seller_calls_total', { seller: sellerName('pageturner'), endpoint: 'order', outcome: 'confirmed' })).toBe(1);
    expect(moved('broker_seller_call_duration_seconds_count', { seller: sellerName('pageturner'), endpoint: 'quote' })).toBe(1);
    expect(moved('broker_seller_call_duration_seconds_count', { seller: sellerName('pageturner'), endpoint: 'order' })).toBe(1);
    // Early exit: Dog-Ear (tier 2) never asked, Inkwell's call aborted.
    expect(moved('broker_seller_calls_skipped_total')).toBe(1);
    expect(moved('broker_seller_calls_total', { seller: sellerName('inkwell'), outcome: 'aborted' })).toBe(1);
    expect(moved('broker_rounds_started_total')).toBe(1);
    expect(moved('broker_round_members_total', { how: 'started' })).toBe(1);
    expect(moved('broker_round_seller_calls_count')).toBe(1);
    expect(moved('broker_round_seller_calls_sum')).toBe(2);
    expect(moved('broker_offer_cache_lookups_total', { result: 'miss' })).toBe(2);
    expect(moved('broker_order_attempts_total', { state: 'succeeded', payment: 'captured' })).toBe(1);
    expect(moved('broker_request_outcomes_total', { status: 'ORDERED' })).toBe(1);
    expect(moved('broker_resolution_seconds_count', { status: 'ORDERED' })).toBe(1);
    expect(moved('broker_resolution_seconds_sum', { status: 'ORDERED' })).toBeGreaterThan(0);
    expect(after.value('broker_breaker_state', { seller: sellerName('pageturner') })).toBe(0);
  });

  it('quoted requests move rounds in flight, coalescing, queue lag, subscriptions, cache hits and QUOTED outcomes', async () => {
    const before = await scrape();
    // PageTurner answers slowly: the round stays in flight long enough to be seen.
    await w.sandbox.configure('pageturner', { script: [{ endpoint: 'quote', fault: 'slow', ms: 1_500 }] });
    const first = await create(BOOK.hobbit, 500);
    const client = w.server.wsClient();
    const { stop } = collect(client, WATCH, { id: first });
    try {
      const second = await create(BOOK.hobbit, 600);
      const during = await scrapeUntil(
        (s) => s.value('broker_rounds_in_flight') >= 1 && s.value('broker_subscriptions') >= 1 && s.value('broker_round_members_total', { how: 'joined' }) > before.value('broker_round_members_total', { how: 'joined' }),
      );
      expect(during.value('broker_websocket_connections')).toBeGreaterThanOrEqual(1);
      expect(during.value('broker_requests_active')).toBe(2);
      // Both slots are taken (ENGINE_MAX_ACTIVE=2): a third request waits, and the queue lag shows it.
      const third = await create(BOOK.frankenstein, 100);
      await scrapeUntil((s) => s.value('broker_queue_lag_seconds') > 0);

      for (const id of [first, second, third]) expect((await w.until(id, settled('QUOTED', 'ORDERED', 'OUT_OF_STOCK', 'FAILED'))).status).toBe('QUOTED');
      // Inside the offer TTL, the same book is answered from the cache.
      const fourth = await create(BOOK.hobbit, 700);
      expect((await w.until(fourth, settled('QUOTED', 'ORDERED', 'OUT_OF_STOCK', 'FAILED'))).status).toBe('QUOTED');
    } finally {
      stop();
      await client.dispose();
    }
    const after = await scrapeUntil((s) => s.value('broker_rounds_in_flight') === 0 && s.value('broker_queue_lag_seconds') === 0 && s.value('broker_subscriptions') === 0);
    const moved = (name: string, match: Record<string, string> = {}) => after.value(name, match) - before.value(name, match);
    expect(moved('broker_round_members_total', { how: 'joined' })).toBeGreaterThanOrEqual(1);
    expect(moved('broker_offer_cache_lookups_total', { result: 'hit' })).toBeGreaterThanOrEqual(1);
    expect(moved('broker_request_outcomes_total', { status: 'QUOTED' })).toBe(4);
    // The first, second and fourth were taken as they were created; the third, created with both
    // slots taken, was written for any instance to claim, and claimed once a slot was free.
    expect(moved('broker_engine_requests_taken_total', { how: 'on_create' })).toBe(3);
    expect(moved('broker_engine_requests_taken_total', { how: 'claim' })).toBeGreaterThanOrEqual(1);
    expect(moved('broker_resolution_seconds_count', { status: 'QUOTED' })).toBe(4);
  });

  it('an out-of-stock request after a seller times out moves the timeout, breaker and OUT_OF_STOCK metrics', async () => {
    const before = await scrape();
    await w.sandbox.configure('inkwell', { script: [{ endpoint: 'quote', fault: 'timeout' }] });
    const id = await create(BOOK.ulysses, 5000);
    expect((await w.until(id, settled('OUT_OF_STOCK', 'QUOTED', 'ORDERED', 'FAILED'))).status).toBe('OUT_OF_STOCK');
    const after = await scrape();
    const moved = (name: string, match: Record<string, string> = {}) => after.value(name, match) - before.value(name, match);
    expect(moved('broker_seller_calls_total', { seller: sellerName('inkwell'), endpoint: 'quote', outcome: 'timeout' })).toBe(1);
    expect(after.value('broker_breaker_state', { seller: sellerName('inkwell') })).toBe(2);
    expect(before.value('broker_breaker_state', { seller: sellerName('inkwell') })).toBe(0);
    expect(moved('broker_request_outcomes_total', { status: 'OUT_OF_STOCK' })).toBe(1);
    expect(moved('broker_resolution_seconds_count', { status: 'OUT_OF_STOCK' })).toBe(1);
    // Nothing here needs an operator, no dead letters, no webhooks waiting.
    expect(after.value('broker_attempts_needing_attention')).toBe(0);
    expect(after.value('broker_dead_letters_open', { kind: 'attempt' })).toBe(0);
    expect(after.samples.filter((s) => s.name === 'broker_dead_letters_open').map((s) => s.labels.kind).sort()).toEqual(['attempt', 'callback', 'webhook']);
    expect(after.value('broker_webhook_outbox_lag_seconds')).toBe(0);
  });

  it('a seller whose breaker is open is not called, and each refusal counts', async () => {
    // Inkwell's breaker opened in the test before and stays open (BREAKER_HALF_OPEN_MS).
    const before = await scrape();
    const calls = (await w.sandbox.stats()).inkwell!.quote;
    const id = await create(BOOK.ulysses, 5000);
    expect((await w.until(id, settled('OUT_OF_STOCK', 'QUOTED', 'ORDERED', 'FAILED'))).status).toBe('OUT_OF_STOCK');
    const after = await scrape();
    expect((await w.sandbox.stats()).inkwell!.quote).toBe(calls);
    const refused = { seller: sellerName('inkwell'), endpoint: 'quote', why: 'circuit_open' };
    expect(after.value('broker_seller_calls_refused_total', refused) - before.value('broker_seller_calls_refused_total', refused)).toBeGreaterThanOrEqual(1);
  });

  it('the Grafana dashboard and the alert rules query only metrics the broker exposes, and show every one', async () => {
    const s = await scrape();
    const dashboard = JSON.parse(readFileSync(new URL('../ops/grafana/broker.json', import.meta.url), 'utf8'));
    const alerts = readFileSync(new URL('../ops/prometheus/alerts.yml', import.meta.url), 'utf8');
    expect(dashboard.templating.list.find((v: any) => v.type === 'datasource')?.query).toBe('prometheus');
    const exprs: string[] = [];
    const walk = (panels: any[] = []) => {
      for (const p of panels) {
        if (p.type !== 'row') expect(p.datasource?.uid, p.title).toBe('${datasource}');
        for (const t of p.targets ?? []) exprs.push(t.expr);
        walk(p.panels);
      }
    };
    walk(dashboard.panels);
    // Histogram series are declared under their base name.
    const names = (text: string) => new Set([...text.matchAll(/\bbroker_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')));
    const used = names(exprs.join('\n'));
    for (const name of used) expect(s.declares(name), `dashboard: ${name}`).toBe(true);
    // Expressions and the descriptions that point operators at other metrics alike.
    const inAlerts = names(alerts);
    expect(inAlerts.size).toBeGreaterThanOrEqual(5);
    for (const name of inAlerts) expect(s.declares(name), `alerts: ${name}`).toBe(true);
    for (const name of SPEC_METRICS) expect(used.has(name), `no panel shows ${name}`).toBe(true);
    for (const alert of ['BrokerQueueLagHigh', 'BrokerAttemptsNeedAttention', 'BrokerSellerBreakerOpen', 'BrokerWebhookOutboxLag', 'BrokerDeadLettersGrowing']) {
      expect(alerts).toContain(`alert: ${alert}`);
    }
  });
});

const ATTENTION = `query { attemptsNeedingAttention { id } }`;
const DEAD_LETTERS = `query { deadLetters { id kind ref payload } }`;
const REDRIVE = `mutation($id: ID!) { redriveDeadLetter(id: $id) { deadLetter { id resolvedAt } userErrors { code } } }`;
const RESET = `mutation($id: ID!) { resetSellerBreaker(sellerId: $id) { userErrors { code } } }`;
const CREATE_ENDPOINT = `mutation($input: WebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } userErrors { code } } }`;
const DELETE_ENDPOINT = `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { endpoint { id } userErrors { code } } }`;

/** A user's webhook receiver: answers each POST per `answer(path)`; `hold` keeps the answer until `release()`. */
class Receiver {
  answer: (path: string) => number | 'hold' = () => 204;
  readonly tries: string[] = [];
  private readonly held: ServerResponse[] = [];
  private readonly server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '';
      this.tries.push(path);
      const a = this.answer(path);
      if (a === 'hold') this.held.push(res);
      else res.writeHead(a).end();
    });
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  holding(): number {
    return this.held.length;
  }

  release(): void {
    for (const res of this.held.splice(0)) res.writeHead(204).end();
  }

  async stop(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe('GET /metrics, the operator gauges', () => {
  const receiver = new Receiver();

  beforeAll(async () => {
    await receiver.start();
    w = await startWorld({
      sellers: [{ key: 'pageturner', offerTtlSeconds: 0 }],
      env: {
        ORDER_ATTENTION_AFTER_TRIES: '3',
        // Two quick re-checks, then a long wait: only a re-drive finishes the attempt.
        ORDER_RETRY_BACKOFF_MS: '50,50,60000',
        WEBHOOK_URLS: 'any',
        WEBHOOK_POLL_MS: '50',
        // One delivery in flight at a time: a held one keeps the next waiting, due.
        WEBHOOK_MAX_IN_FLIGHT: '1',
        WEBHOOK_RETRY_BASE_MS: '40',
        WEBHOOK_RETRY_MAX_MS: '200',
        WEBHOOK_RETRY_WINDOW_MS: '1500',
      },
    });
  }, 60_000);
  afterAll(async () => {
    await w?.close();
    await receiver.stop();
  });

  const admin = async (query: string, variables: Record<string, unknown> = {}) => {
    const res = await w.server.gql(query, variables, w.server.tokens.admin);
    expect(res.errors).toBeUndefined();
    return res.data;
  };

  it('a quote that fails once is retried within the round, and the retry counts', async () => {
    const isbn = '9780547928227';
    await w.sandbox.setInventory('pageturner', isbn, 20, 'new');
    await w.sandbox.setPrice('pageturner', isbn, 900, 'new');
    await w.sandbox.configure('pageturner', { script: [{ endpoint: 'quote', fault: 'error500' }] });
    const before = await scrape();
    const id = await w.create({ book: { isbn }, maxTotalPrice: usd(5000) });
    expect((await w.until(id, (r) => ['ORDERED', 'FAILED', 'QUOTED', 'OUT_OF_STOCK'].includes(r.status))).status).toBe('ORDERED');
    const after = await scrape();
    const retries = { seller: w.sandbox.sellers.find((s) => s.baseUrl.endsWith('/pageturner'))!.name, endpoint: 'quote' };
    expect(after.value('broker_seller_call_retries_total', retries) - before.value('broker_seller_call_retries_total', retries)).toBe(1);
  });

  it('an order attempt nobody can resolve moves attempts needing attention and open attempt dead letters; its re-drive moves them back', async () => {
    const isbn = '9780141439471';
    await w.sandbox.setInventory('pageturner', isbn, 20, 'new');
    await w.sandbox.setPrice('pageturner', isbn, 900, 'new');
    // The order is placed but its answer never comes, and every status check fails.
    await w.sandbox.configure('pageturner', {
      script: [{ endpoint: 'order', fault: 'timeoutAfterSuccess' }, ...Array.from({ length: 40 }, () => ({ endpoint: 'orderStatus' as const, fault: 'error500' as const }))],
    });
    const before = await scrape();
    expect(before.value('broker_attempts_needing_attention')).toBe(0);
    expect(before.value('broker_dead_letters_open', { kind: 'attempt' })).toBe(0);

    const id = await w.create({ book: { isbn }, maxTotalPrice: usd(5000) });
    await scrapeUntil((s) => s.value('broker_attempts_needing_attention') === 1 && s.value('broker_dead_letters_open', { kind: 'attempt' }) === 1, 20_000);
    expect((await w.get(id)).status).toBe('ORDERING');
    expect((await admin(ATTENTION)).attemptsNeedingAttention).toHaveLength(1);

    // Healed, its breaker reset, the dead letter re-driven: the attempt finds the order placed.
    await w.sandbox.configure('pageturner', { script: [] });
    await admin(RESET, { id: w.sellerIds.pageturner });
    const letter = (await admin(DEAD_LETTERS)).deadLetters.find((l: any) => l.kind === 'attempt' && l.payload.requestId === id);
    expect((await admin(REDRIVE, { id: letter.id })).redriveDeadLetter.userErrors).toEqual([]);
    expect((await w.until(id, (r) => r.status === 'ORDERED', 20_000)).status).toBe('ORDERED');
    await scrapeUntil((s) => s.value('broker_attempts_needing_attention') === 0 && s.value('broker_dead_letters_open', { kind: 'attempt' }) === 0);
  }, 60_000);

  it('a webhook that keeps failing past its retry window moves open webhook dead letters; delivered on re-drive, it moves back', async () => {
    let up = false;
    receiver.answer = (path) => (path === '/down' ? (up ? 204 : 503) : 204);
    const endpoint = (await w.server.gql(CREATE_ENDPOINT, { input: { url: `${receiver.url}/down`, events: ['OUT_OF_STOCK'] } })).data.createWebhookEndpoint.endpoint;
    try {
      const before = await scrape();
      expect(before.value('broker_dead_letters_open', { kind: 'webhook' })).toBe(0);
      // Out of print: the request ends OUT_OF_STOCK, the event the endpoint asked for.
      const id = await w.create({ book: { isbn: '9780679722762' }, maxTotalPrice: usd(5000) });
      const lettered = await scrapeUntil((s) => s.value('broker_dead_letters_open', { kind: 'webhook' }) === 1, 20_000);
      expect(lettered.value('broker_webhook_deliveries_total', { outcome: 'dead' }) - before.value('broker_webhook_deliveries_total', { outcome: 'dead' })).toBe(1);
      expect(lettered.value('broker_webhook_deliveries_total', { outcome: 'retry' })).toBeGreaterThan(before.value('broker_webhook_deliveries_total', { outcome: 'retry' }));

      up = true;
      const letter = (await admin(DEAD_LETTERS)).deadLetters.find((l: any) => l.kind === 'webhook' && l.payload.requestId === id);
      expect((await admin(REDRIVE, { id: letter.id })).redriveDeadLetter.userErrors).toEqual([]);
      const after = await scrapeUntil((s) => s.value('broker_webhook_deliveries_total', { outcome: 'delivered' }) > before.value('broker_webhook_deliveries_total', { outcome: 'delivered' }));
      expect(after.value('broker_dead_letters_open', { kind: 'webhook' })).toBe(0);
    } finally {
      await w.server.gql(DELETE_ENDPOINT, { id: endpoint.id });
    }
  }, 60_000);

  it('a delivery due while the relay has no free slot moves the outbox lag; delivered, the lag falls back to 0', async () => {
    receiver.answer = (path) => (path === '/slow' ? 'hold' : 204);
    const endpoint = (await w.server.gql(CREATE_ENDPOINT, { input: { url: `${receiver.url}/slow`, events: ['OUT_OF_STOCK'] } }, w.server.tokens.bob)).data.createWebhookEndpoint.endpoint;
    try {
      expect((await scrape()).value('broker_webhook_outbox_lag_seconds')).toBe(0);
      await w.create({ book: { isbn: '9780679722762' }, maxTotalPrice: usd(5000) }, w.server.tokens.bob);
      // The first event's delivery takes the relay's only slot and is held there.
      await eventually(() => Promise.resolve(receiver.holding() === 1), 15_000);
      await w.create({ book: { isbn: '9780679722762' }, maxTotalPrice: usd(5000) }, w.server.tokens.bob);
      await scrapeUntil((s) => s.value('broker_webhook_outbox_lag_seconds') > 0, 15_000);
      expect(receiver.holding()).toBe(1);

      receiver.answer = () => 204;
      receiver.release();
      await eventually(() => Promise.resolve(receiver.tries.filter((p) => p === '/slow').length === 2), 15_000);
      await scrapeUntil((s) => s.value('broker_webhook_outbox_lag_seconds') === 0);
    } finally {
      await w.server.gql(DELETE_ENDPOINT, { id: endpoint.id }, w.server.tokens.bob);
    }
  }, 60_000);
});
