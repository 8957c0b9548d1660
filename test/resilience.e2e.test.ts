import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CANCEL, CREATE, GET, createInput, usd } from './support/fixtures.js';
import { startPartnerProxy } from './support/proxy.js';
import { type TestServer, eventually, startTestServer } from './support/server.js';
import { FAST_ENGINE_ENV, type World, quoteCalls, startWorld } from './support/world.js';
import { systemClock } from '../src/domain/clock.js';
import { SandboxPaymentGateway } from '../src/payments/sandbox-gateway.js';

/**
 * Resilience (SPEC §6), end to end: circuit breakers that open on consecutive failures and close
 * after a half-open probe or an operator's reset, Retry-After honoured on a 429 storm, transient
 * errors retried inside the round, and order attempts nobody can resolve turned into dead letters
 * an operator re-drives. Observed from outside: the sandbox's call counters and order ledger, the
 * request as its owner sees it, and the admin operations (sellerHealth, attemptsNeedingAttention,
 * deadLetters, paymentLedger).
 *
 * The sellers are registered without an offer cache, so every round asks every seller afresh and
 * a seller's call count is the number of rounds that reached it. Requests that should not order
 * ask for a budget nobody meets: their round waits for every seller, then ends QUOTED.
 */

const TIER1 = ['pageturner', 'inkwell', 'novella'] as const;
type Key = (typeof TIER1)[number];
const BREAKER_THRESHOLD = 3;

const BOOK = {
  /** Carried by the tier-1 sellers; used with an impossible budget, so rounds end QUOTED. */
  pride: '9780141439518',
  hobbit: '9780547928227',
  dune: '9780441172719',
  frankenstein: '9780141439471',
  /** Tier 2 and lower only: tier-1 sellers answer "not carried". */
  invisibleMan: '9780679732761',
};

const HEALTH = `query { sellerHealth { seller { id name } breaker errorRate recentCalls pausedUntil concurrencyLimit } }`;
const RESET = `mutation Reset($id: ID!) {
  resetSellerBreaker(sellerId: $id) { health { seller { id } breaker errorRate pausedUntil } userErrors { code field } }
}`;
const DETAIL = `query Detail($id: ID!) {
  purchaseRequest(id: $id) {
    id status revision
    order { sellerOrderId seller { id } total { cents } }
    events { type status }
    attempts { id attemptNo state paymentState sellerOrderId needsAttention lastError seller { id } }
  }
}`;
const ATTENTION = `query { attemptsNeedingAttention { id state needsAttention lastError } }`;
const DEAD_LETTERS = `query Letters($all: Boolean) { deadLetters(includeResolved: $all) { id kind ref payload lastError failures resolvedAt } }`;
const REDRIVE = `mutation Redrive($id: ID!) {
  redriveDeadLetter(id: $id) { deadLetter { id kind ref failures lastError resolvedAt } userErrors { code } }
}`;
const LEDGER = `query Ledger($id: ID!) { paymentLedger(requestId: $id) { key operation amountCents result effective } }`;

interface Health {
  seller: { id: string; name: string };
  breaker: 'CLOSED' | 'OPEN' | 'HALF_OPEN';
  errorRate: number;
  recentCalls: number;
  pausedUntil: string | null;
}

const detail = (w: World, id: string): Promise<any> => w.detail(id, DETAIL);
const until = (w: World, id: string, predicate: (r: any) => boolean, timeoutMs?: number): Promise<any> => w.until(id, predicate, timeoutMs, DETAIL);

async function health(w: World, key: string): Promise<Health> {
  const res = await w.server.gql(HEALTH, {}, w.server.tokens.admin);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  const h = (res.data.sellerHealth as Health[]).find((x) => x.seller.id === w.sellerIds[key]);
  if (!h) throw new Error(`no health for ${key}`);
  return h;
}

/** One round for the book that cannot end in an order: settles QUOTED (or OUT_OF_STOCK), then is canceled so it stops watching. */
async function searchOnce(w: World, isbn: string): Promise<void> {
  const id = await w.create({ book: { isbn }, maxTotalPrice: usd(100) });
  await until(w, id, (r) => r.status === 'QUOTED' || r.status === 'OUT_OF_STOCK');
  await w.server.gql(CANCEL, { id });
}

/** Runs rounds one after another until the seller's breaker is open; fails after `maxRounds`. */
async function openBreaker(w: World, key: string, isbn: string, maxRounds = 6): Promise<number> {
  for (let rounds = 1; rounds <= maxRounds; rounds++) {
    await searchOnce(w, isbn);
    if ((await health(w, key)).breaker === 'OPEN') return rounds;
  }
  throw new Error(`${key}'s breaker did not open within ${maxRounds} rounds: ${JSON.stringify(await health(w, key))}`);
}

/** Every registered seller's quote calls since `before`. */
async function quotesSince(w: World, before: Record<string, number>): Promise<Record<string, number>> {
  const now = await quoteCalls(w.sandbox);
  return Object.fromEntries(Object.keys(w.sellerIds).map((k) => [k, (now[k] ?? 0) - (before[k] ?? 0)]));
}

/** Stocks `isbn` at the given sellers (new copies at an item price); the other tier-1 sellers have none. */
async function stockOnly(w: World, isbn: string, prices: Partial<Record<Key, number>>, qty = 20): Promise<void> {
  for (const key of TIER1) {
    const price = prices[key];
    if (price === undefined) {
      await w.sandbox.setInventory(key, isbn, 0);
    } else {
      await w.sandbox.setInventory(key, isbn, qty, 'new');
      await w.sandbox.setPrice(key, isbn, price, 'new');
    }
  }
}

const keyOf = (w: World, sellerId: string) => Object.entries(w.sellerIds).find(([, id]) => id === sellerId)?.[0];
const statusesOf = (r: any): string[] => r.events.map((e: { type: string }) => e.type);

describe('circuit breaker, back-off and retries', () => {
  let w: World;
  let created: string[] = [];

  beforeAll(async () => {
    w = await startWorld({
      sellers: TIER1.map((key) => ({ key, tier: 1, offerTtlSeconds: 0 })),
      env: {
        BREAKER_THRESHOLD: String(BREAKER_THRESHOLD),
        // Long enough that an open breaker stays open for the whole test: no probes muddle the counts.
        BREAKER_HALF_OPEN_MS: '60000',
        // Rounds with a valid offer still hear calls already under way (a 429 arriving with the offer).
        IMPROVEMENT_WINDOW_MS: '100',
        ORDER_ATTENTION_AFTER_TRIES: '3',
        // Two quick re-checks, then a long wait: only a re-drive finishes the attempt in time.
        ORDER_RETRY_BACKOFF_MS: '50,50,60000',
      },
    });
  });
  afterAll(async () => {
    await w?.close();
  });
  afterEach(async () => {
    for (const id of created) await w.server.gql(CANCEL, { id });
    created = [];
    for (const key of TIER1) {
      await w.sandbox.configure(key, { errorRate: 0, rate429: 0, timeoutRate: 0, down: false, script: [] });
      await w.server.gql(RESET, { id: w.sellerIds[key] }, w.server.tokens.admin);
    }
  });

  it('stops calling a seller that fails every call once its breaker opens, while the other sellers keep being asked', async () => {
    await w.sandbox.configure('inkwell', { errorRate: 1 });
    const start = await quoteCalls(w.sandbox);

    await openBreaker(w, 'inkwell', BOOK.pride);
    const toOpen = await quotesSince(w, start);
    // Three consecutive failures open it (retries included); at most one retry was already on its way.
    expect(toOpen.inkwell).toBeGreaterThanOrEqual(BREAKER_THRESHOLD);
    expect(toOpen.inkwell).toBeLessThanOrEqual(BREAKER_THRESHOLD + 1);

    const opened = await quoteCalls(w.sandbox);
    for (let i = 0; i < 5; i++) await searchOnce(w, BOOK.pride);
    const later = await quotesSince(w, opened);
    expect(later.inkwell).toBe(0);
    expect(later.pageturner).toBeGreaterThanOrEqual(5);
    expect(later.novella).toBeGreaterThanOrEqual(5);

    // Every call inkwell did get failed at the partner.
    const stats = (await w.sandbox.stats()).inkwell!;
    expect(stats.byStatus['500']).toBe(stats.quote);

    const h = await health(w, 'inkwell');
    expect(h.breaker).toBe('OPEN');
    expect(h.errorRate).toBeGreaterThanOrEqual(0.9);
    expect(h.recentCalls).toBeGreaterThanOrEqual(BREAKER_THRESHOLD);
    for (const key of ['pageturner', 'novella']) {
      expect(await health(w, key)).toMatchObject({ breaker: 'CLOSED', errorRate: 0 });
    }
  });

  it('an operator resets an open breaker by hand: it closes at once and the next round asks the seller again', async () => {
    // Connections dropped on every call (connection errors are retried twice per round).
    await w.sandbox.configure('novella', { down: true });
    await openBreaker(w, 'novella', BOOK.pride);
    await w.sandbox.configure('novella', { down: false });

    // Healed, but the breaker still holds it off: nobody probes before the half-open wait.
    let before = await quoteCalls(w.sandbox);
    await searchOnce(w, BOOK.pride);
    expect((await quotesSince(w, before)).novella).toBe(0);

    const forbidden = await w.server.gql(RESET, { id: w.sellerIds.novella }, w.server.tokens.alice);
    expect(forbidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await health(w, 'novella')).breaker).toBe('OPEN');

    const unknown = await w.server.gql(RESET, { id: randomUUID() }, w.server.tokens.admin);
    expect(unknown.data.resetSellerBreaker).toMatchObject({ health: null, userErrors: [{ code: 'NOT_FOUND' }] });

    const reset = await w.server.gql(RESET, { id: w.sellerIds.novella }, w.server.tokens.admin);
    expect(reset.errors).toBeUndefined();
    expect(reset.data.resetSellerBreaker).toMatchObject({
      health: { seller: { id: w.sellerIds.novella }, breaker: 'CLOSED', pausedUntil: null },
      userErrors: [],
    });
    expect((await health(w, 'novella')).breaker).toBe('CLOSED');

    before = await quoteCalls(w.sandbox);
    await searchOnce(w, BOOK.pride);
    expect((await quotesSince(w, before)).novella).toBe(1);
    expect((await health(w, 'novella')).breaker).toBe('CLOSED');
  });

  it('admin-only: sellerHealth is FORBIDDEN to a user', async () => {
    const res = await w.server.gql(HEALTH, {}, w.server.tokens.alice);
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const anonymous = await w.server.gql(HEALTH, {}, null);
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('backs off a seller answering 429 with Retry-After: few calls over a burst, pausedUntil shown, requests ordered elsewhere', async () => {
    const isbn = BOOK.hobbit;
    // Novella would be the cheapest by far, if it answered.
    await stockOnly(w, isbn, { pageturner: 1500, inkwell: 1500, novella: 300 });
    await w.sandbox.configure('novella', { rate429: 1 });
    const before = (await w.sandbox.stats()).novella!;

    const t0 = Date.now();
    const first = await w.create({ book: { isbn }, maxTotalPrice: usd(5000) });
    created.push(first);
    // The sandbox asks for one second; the broker notes it as soon as the 429 comes back.
    const paused = await eventually(async () => {
      const h = await health(w, 'novella');
      return h.pausedUntil ? h : null;
    }, 10_000, 10);
    expect(Date.parse(paused.pausedUntil!)).toBeGreaterThan(t0);

    const ids = [first];
    await until(w, first, (r) => r.status === 'ORDERED');
    for (let i = 0; i < 9; i++) {
      const id = await w.create({ book: { isbn }, maxTotalPrice: usd(5000) });
      created.push(id);
      await until(w, id, (r) => r.status === 'ORDERED');
      ids.push(id);
    }

    const after = (await w.sandbox.stats()).novella!;
    const calls = after.quote - before.quote;
    expect(calls).toBeGreaterThanOrEqual(1);
    // Paused, then held off by its breaker: far fewer calls than requests.
    expect(calls).toBeLessThanOrEqual(BREAKER_THRESHOLD);
    expect(calls).toBeLessThan(ids.length / 2);
    expect((after.byStatus['429'] ?? 0) - (before.byStatus['429'] ?? 0)).toBe(calls);
    expect(after.order).toBe(before.order);

    for (const id of ids) {
      const r = await detail(w, id);
      expect(['pageturner', 'inkwell']).toContain(keyOf(w, r.order.seller.id));
    }
    const ledger = (await w.sandbox.ledger()).filter((e) => ids.includes(e.requestId ?? ''));
    expect(ledger).toHaveLength(ids.length);
    expect(ledger.filter((e) => e.sellerKey === 'novella')).toEqual([]);
  });

  it('retries a quote that failed with a 500 inside the same round, and the request gets that seller\'s offer', async () => {
    const isbn = BOOK.dune;
    await stockOnly(w, isbn, { pageturner: 1000 });
    await w.sandbox.configure('pageturner', { script: [{ endpoint: 'quote', fault: 'error500' }] });
    const before = (await w.sandbox.stats()).pageturner!;

    const id = await w.create({ book: { isbn }, maxTotalPrice: usd(5000) });
    created.push(id);
    const r = await until(w, id, (x) => x.status === 'ORDERED');

    expect(keyOf(w, r.order.seller.id)).toBe('pageturner');
    // One round: it never had to give up and watch.
    expect(statusesOf(r)).toEqual(['CREATED', 'SEARCH_STARTED', 'ORDER_STARTED', 'ORDERED']);
    const after = (await w.sandbox.stats()).pageturner!;
    expect(after.quote - before.quote).toBe(2);
    expect((after.byStatus['500'] ?? 0) - (before.byStatus['500'] ?? 0)).toBe(1);
  });

  it('an attempt nobody can resolve needs attention and becomes a dead letter; re-driven after healing, it orders exactly once', async () => {
    const isbn = BOOK.frankenstein;
    await stockOnly(w, isbn, { pageturner: 900 });
    // The order is placed but its answer never comes, and the status endpoint keeps failing.
    await w.sandbox.configure('pageturner', {
      script: [
        { endpoint: 'order', fault: 'timeoutAfterSuccess' },
        ...Array.from({ length: 40 }, () => ({ endpoint: 'orderStatus' as const, fault: 'error500' as const })),
      ],
    });

    const id = await w.create({ book: { isbn }, maxTotalPrice: usd(5000) });
    created.push(id);
    // Flagged, filed as a dead letter, then told to the user (ORDER_UNRESOLVED), in that order.
    const stuck = await until(w, id, (r) => r.attempts[0]?.needsAttention === true && statusesOf(r).includes('ORDER_UNRESOLVED'));
    expect(stuck.status).toBe('ORDERING');
    expect(stuck.attempts).toHaveLength(1);
    const attempt = stuck.attempts[0];
    expect(attempt.state).toBe('UNKNOWN');

    const placed = (await w.sandbox.ledger('pageturner')).filter((e) => e.requestId === id);
    expect(placed).toHaveLength(1);
    let payments = (await w.server.gql(LEDGER, { id }, w.server.tokens.admin)).data.paymentLedger as any[];
    expect(payments.filter((c) => c.operation === 'capture')).toEqual([]);

    const attention = await w.server.gql(ATTENTION, {}, w.server.tokens.admin);
    expect(attention.data.attemptsNeedingAttention).toContainEqual(expect.objectContaining({ id: attempt.id, state: 'UNKNOWN', needsAttention: true }));
    expect((await w.server.gql(ATTENTION, {}, w.server.tokens.alice)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    const letters = await w.server.gql(DEAD_LETTERS, {}, w.server.tokens.admin);
    const letter = (letters.data.deadLetters as any[]).find((l) => l.kind === 'attempt' && l.ref === attempt.id);
    expect(letter).toMatchObject({ kind: 'attempt', ref: attempt.id, resolvedAt: null });
    expect(letter.lastError).toMatch(/status|500/i);
    expect(letter.payload).toMatchObject({ requestId: id });
    expect((await w.server.gql(DEAD_LETTERS, {}, w.server.tokens.alice)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await w.server.gql(REDRIVE, { id: letter.id }, w.server.tokens.alice)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    // Heal the seller and close its breaker (status checks count toward it like any call), then
    // re-drive: the reconciler asks again with the same key and finds the order.
    await w.sandbox.configure('pageturner', { script: [] });
    await w.server.gql(RESET, { id: w.sellerIds.pageturner }, w.server.tokens.admin);
    const redriven = await w.server.gql(REDRIVE, { id: letter.id }, w.server.tokens.admin);
    expect(redriven.errors).toBeUndefined();
    expect(redriven.data.redriveDeadLetter).toMatchObject({ deadLetter: { id: letter.id }, userErrors: [] });

    const done = await until(w, id, (r) => r.status === 'ORDERED');
    const orders = (await w.sandbox.ledger()).filter((e) => e.requestId === id);
    expect(orders).toHaveLength(1);
    expect(orders[0]!.orderId).toBe(placed[0]!.orderId);
    expect(done.order.sellerOrderId).toBe(placed[0]!.orderId);
    expect(done.attempts).toEqual([expect.objectContaining({ id: attempt.id, state: 'SUCCEEDED', paymentState: 'CAPTURED', needsAttention: false })]);

    payments = (await w.server.gql(LEDGER, { id }, w.server.tokens.admin)).data.paymentLedger as any[];
    expect(payments.filter((c) => c.operation === 'capture' && c.effective)).toEqual([expect.objectContaining({ key: `${id}:1` })]);

    const stillListed = (await w.server.gql(ATTENTION, {}, w.server.tokens.admin)).data.attemptsNeedingAttention as any[];
    expect(stillListed.map((a) => a.id)).not.toContain(attempt.id);
    const open = (await w.server.gql(DEAD_LETTERS, {}, w.server.tokens.admin)).data.deadLetters as any[];
    expect(open.map((l) => l.id)).not.toContain(letter.id);
    const all = (await w.server.gql(DEAD_LETTERS, { all: true }, w.server.tokens.admin)).data.deadLetters as any[];
    expect(all.find((l) => l.id === letter.id)?.resolvedAt).not.toBeNull();
  });
});

/**
 * A partner-side proxy in front of one sandbox seller: it answers the next quote calls with a
 * chosen status (a gateway in trouble) and passes everything else through unchanged.
 */
interface FaultProxy {
  url: string;
  /** The next `n` quote calls are answered `status` without reaching the seller. */
  failQuotes(n: number, status: number): void;
  refused(): number;
  close(): Promise<void>;
}

async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  let failing = 0;
  let failStatus = 503;
  let refused = 0;
  const proxy = await startPartnerProxy(upstream, {
    intercept(req, res) {
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method === 'GET' && path.endsWith('/quote') && failing > 0) {
        failing -= 1;
        refused += 1;
        res.writeHead(failStatus, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'unavailable' }));
        return true;
      }
      return false;
    },
  });
  return {
    url: proxy.url,
    failQuotes(n, status) {
      failing = n;
      failStatus = status;
    },
    refused: () => refused,
    close: proxy.close,
  };
}

describe('half-open probes and transient gateway errors', () => {
  let w: World;
  let proxy: FaultProxy;
  let proxiedId: string;

  beforeAll(async () => {
    w = await startWorld({
      sellers: TIER1.map((key) => ({ key, tier: 1, offerTtlSeconds: 0 })),
      env: { BREAKER_THRESHOLD: String(BREAKER_THRESHOLD), BREAKER_HALF_OPEN_MS: '500' },
    });
    proxy = await startFaultProxy(w.sandbox.url);
    const dogear = w.sandbox.sellers.find((s) => s.baseUrl.endsWith('/dogear'))!;
    const res = await w.server.gql(
      `mutation($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { code message } } }`,
      { input: { ...dogear, name: 'Dog-Ear (behind a gateway)', tier: 1, offerTtlSeconds: 0, baseUrl: `${proxy.url}/dogear` } },
      w.server.tokens.admin,
    );
    if (!res.data?.upsertSeller?.seller) throw new Error(`upsertSeller failed: ${JSON.stringify(res.errors ?? res.data?.upsertSeller)}`);
    proxiedId = res.data.upsertSeller.seller.id;
  });
  afterAll(async () => {
    await w?.close();
    await proxy?.close();
  });

  it('after the half-open wait, a later round probes the healed seller once and its breaker closes again', async () => {
    await w.sandbox.configure('pageturner', { down: true });
    await openBreaker(w, 'pageturner', BOOK.pride);
    const open = await health(w, 'pageturner');
    expect(open.breaker).toBe('OPEN');
    expect(open.errorRate).toBeGreaterThanOrEqual(0.9);

    await w.sandbox.configure('pageturner', { down: false });
    // Rounds one after another until one of them is let through to probe (after 500 ms).
    const grew = await eventually(
      async () => {
        const before = await quoteCalls(w.sandbox);
        await searchOnce(w, BOOK.pride);
        const delta = (await quotesSince(w, before)).pageturner!;
        return delta > 0 ? { delta } : null;
      },
      15_000,
      0,
    );
    expect(grew.delta).toBe(1);

    const closed = await health(w, 'pageturner');
    expect(closed.breaker).toBe('CLOSED');
    // Closed for good: the next round asks it like any other seller.
    const before = await quoteCalls(w.sandbox);
    await searchOnce(w, BOOK.pride);
    expect((await quotesSince(w, before)).pageturner).toBe(1);
  });

  it('retries quotes answered 503 twice in a row, and the request still gets that seller\'s offer in the same round', async () => {
    const isbn = BOOK.invisibleMan;
    await w.sandbox.setInventory('dogear', isbn, 5, 'new');
    await w.sandbox.setPrice('dogear', isbn, 1500, 'new');
    const before = (await w.sandbox.stats()).dogear!;
    proxy.failQuotes(2, 503);

    const id = await w.create({ book: { isbn }, maxTotalPrice: usd(5000) });
    const r = await until(w, id, (x) => x.status === 'ORDERED');

    expect(r.order.seller.id).toBe(proxiedId);
    expect(statusesOf(r)).toEqual(['CREATED', 'SEARCH_STARTED', 'ORDER_STARTED', 'ORDERED']);
    expect(proxy.refused()).toBe(2);
    const after = (await w.sandbox.stats()).dogear!;
    expect(after.quote - before.quote).toBe(1);
    expect((await w.sandbox.ledger('dogear')).filter((e) => e.requestId === id)).toHaveLength(1);
  });
});

/**
 * A bookstore that searches by ISBN only, as a real partner might: a quote without an ISBN is
 * answered 400 (API.md: the seller cannot answer this query). It counts what it was asked.
 */
interface IsbnOnlyStore {
  url: string;
  counts: { titleQuotes: number; isbnQuotes: number; orders: number };
  /** ISBN quotes wait for `release()` before answering; resolves when the first one arrives. */
  holdQuotes(): { arrived: Promise<void>; release(): void };
  close(): Promise<void>;
}

async function startIsbnOnlyStore(): Promise<IsbnOnlyStore> {
  const counts = { titleQuotes: 0, isbnQuotes: 0, orders: 0 };
  let hold: { arrived: () => void; released: Promise<void> } | null = null;
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    req.resume();
    req.on('end', async () => {
      const url = new URL(req.url ?? '/', 'http://store');
      if (req.method === 'GET' && url.pathname === '/quote') {
        if (!url.searchParams.get('isbn')) {
          counts.titleQuotes += 1;
          return send(400, { error: 'isbn_required', message: 'this store searches by ISBN only' });
        }
        counts.isbnQuotes += 1;
        if (hold) {
          hold.arrived();
          await hold.released;
        }
        return send(200, { id: 'offer-1', price: '12.50', shipping: '3.00', inventory: 50 });
      }
      if (req.method === 'POST' && url.pathname === '/orders') {
        counts.orders += 1;
        return send(201, { id: `order-${counts.orders}` });
      }
      send(404, { error: 'not_found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    holdQuotes() {
      let arrived!: () => void;
      let release!: () => void;
      const arrivedP = new Promise<void>((r) => (arrived = r));
      hold = { arrived, released: new Promise<void>((r) => (release = r)) };
      return {
        arrived: arrivedP,
        release: () => {
          hold = null;
          release();
        },
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('a query the seller cannot answer is not its fault (400/422)', () => {
  let server: TestServer;
  let store: IsbnOnlyStore;
  let sellerId: string;

  beforeAll(async () => {
    store = await startIsbnOnlyStore();
    server = await startTestServer({ ...FAST_ENGINE_ENV, BREAKER_THRESHOLD: String(BREAKER_THRESHOLD), BREAKER_HALF_OPEN_MS: '60000' });
    const res = await server.gql(
      `mutation($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { code message } } }`,
      {
        input: {
          name: 'ISBN-only Books',
          tier: 1,
          baseUrl: store.url,
          // No offer cache: every request's round asks the seller again.
          offerTtlSeconds: 0,
          timeoutMs: 2000,
          maxConcurrency: 4,
          quote: {
            method: 'GET',
            path: '/quote?isbn={{isbn}}&title={{title}}',
            response: { offerId: 'id', itemPrice: 'price', shipping: 'shipping', inventory: 'inventory' },
          },
          order: {
            method: 'POST',
            path: '/orders',
            body: { key: '{{idempotencyKey}}', offer: '{{offerId}}', totalCents: '{{totalCents}}' },
            response: { orderId: 'id' },
          },
        },
      },
      server.tokens.admin,
    );
    if (!res.data?.upsertSeller?.seller) throw new Error(`upsertSeller failed: ${JSON.stringify(res.errors ?? res.data?.upsertSeller)}`);
    sellerId = res.data.upsertSeller.seller.id;
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  async function create(book: Record<string, string>): Promise<string> {
    const res = await server.gql(CREATE, { input: createInput({ book, maxTotalPrice: usd(5000) }) });
    const p = res.data?.createPurchaseRequest;
    if (!p?.purchaseRequest) throw new Error(`create failed: ${JSON.stringify(res.errors ?? p?.userErrors)}`);
    return p.purchaseRequest.id as string;
  }

  async function settled(id: string, done: (status: string) => boolean, timeoutMs = 10_000): Promise<any> {
    return eventually(
      async () => {
        const r = (await server.gql(GET, { id })).data?.purchaseRequest;
        return r && done(r.status) ? r : null;
      },
      timeoutMs,
    );
  }

  it('30 title-only requests open no breaker, and an ISBN request to the same seller is served at once', async () => {
    const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => create({ title: `A Book Searched By Title ${i} ${randomUUID()}` })));
    for (const id of ids) {
      const r = await settled(id, (s) => s !== 'PENDING' && s !== 'SEARCHING');
      // No offers from a seller that cannot search by title; the request was not failed for it.
      expect(r.status).toBe('OUT_OF_STOCK');
      await server.gql(CANCEL, { id });
    }
    expect(store.counts.titleQuotes).toBeGreaterThanOrEqual(30);

    const health = await server.gql(`query { sellerHealth { seller { id } breaker errorRate recentCalls pausedUntil concurrencyLimit } }`, {}, server.tokens.admin);
    const h = (health.data.sellerHealth as any[]).find((x) => x.seller.id === sellerId);
    expect(h).toMatchObject({ breaker: 'CLOSED', errorRate: 0, recentCalls: 0, pausedUntil: null });
    // Never halved: those answers were not failures (AIMD would have cut the limit).
    expect(h.concurrencyLimit).toBe(Math.min(server.config.engine.sellerInitialConcurrency, 4));

    const started = Date.now();
    const id = await create({ isbn: '9780141439518' });
    const r = await settled(id, (s) => s === 'ORDERED' || s === 'FAILED' || s === 'OUT_OF_STOCK', 5_000);
    expect(r.status).toBe('ORDERED');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r.events.map((e: { type: string }) => e.type)).toEqual(['CREATED', 'SEARCH_STARTED', 'ORDER_STARTED', 'ORDERED']);
    expect(store.counts.isbnQuotes).toBe(1);
    expect(store.counts.orders).toBe(1);
  });
  it('a payment conflict is definitive: the attempt fails once, nothing is ordered, and it is never retried', async () => {
    const hold = store.holdQuotes();
    const ordersBefore = store.counts.orders;
    const id = await create({ isbn: '9780547928227' });
    await hold.arrived;
    // While the seller is quoting, the payment provider already holds this attempt's key for another amount.
    await new SandboxPaymentGateway(server.app.services.db, systemClock).authorize({ key: `${id}:1`, amountCents: 1, currency: 'USD', token: 'tok_visa' });
    hold.release();

    const failed = await eventually(async () => {
      const r = (await server.gql(`query($id: ID!) { purchaseRequest(id: $id) { status events { type } attempts { attemptNo state paymentState failure needsAttention } } }`, { id })).data
        ?.purchaseRequest;
      return r?.attempts?.[0]?.state === 'FAILED' && r.status !== 'ORDERING' ? r : null;
    });
    expect(failed.attempts).toHaveLength(1);
    expect(failed.attempts[0]).toMatchObject({ attemptNo: 1, paymentState: 'NONE', needsAttention: false });
    expect(failed.attempts[0].failure).toMatch(/payment conflict/);
    expect(statusesOf(failed)).toContain('ORDER_REFUSED');
    const ledger = async () => ((await server.gql(LEDGER, { id }, server.tokens.admin)).data.paymentLedger as any[]).filter((c) => c.key === `${id}:1`);
    // Our own first authorisation, then the engine's: refused once as a conflict, not repeated.
    expect((await ledger()).map((c) => [c.operation, c.result])).toEqual([
      ['authorize', 'authorized'],
      ['authorize', 'conflict'],
    ]);
    expect(store.counts.orders).toBe(ordersBefore);
    // Later rounds for the request do not try the same offer again (and so never the same key).
    await server.gql(CANCEL, { id });
    expect((await ledger()).length).toBe(2);
  });
});
