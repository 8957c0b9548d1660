import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG } from '../../src/partners/sandbox/catalog.js';
import { type BrokerProcess, startBrokerProcess } from '../support/broker-process.js';
import { busiestWindow } from '../support/call-rate.js';
import { CREATE, createInput, usd } from '../support/fixtures.js';
import { type PartnerProxy, startPartnerProxy } from '../support/proxy.js';
import { type SandboxProcess, startSandboxProcess } from '../support/sandbox.js';
import { freshDatabase } from '../support/server.js';
import { FAST_ENGINE_ENV } from '../support/world.js';

/**
 * API.md "Seller call rates" and the seller's Retry-After, with real processes: two brokers on one
 * Postgres and one Redis call one sandbox seller through a proxy that notes when each call arrives
 * (one clock, the seller's side). Every kind of call counts: quotes, revalidations, orders, status.
 */

const SELLER = 'pageturner';
const RATE = 5;
/**
 * The arrival clock is the seller's: a call arrives a varying few milliseconds after it started
 * (the broker's event loop, the proxy's). Windows are this much shorter than a second — far too
 * short still for two instances each keeping the limit on its own (twice the rate).
 */
const ARRIVAL_SLACK_MS = 50;
const RETRY_AFTER_S = 3;

const ENGINE_ENV = {
  ...FAST_ENGINE_ENV,
  ENGINE_LEASE_MS: '5000',
  // Neither instance can claim the whole burst: both call the seller at once.
  ENGINE_MAX_ACTIVE: '4',
  // Requests that found nothing (the seller paused) look again soon.
  RECHECK_INTERVAL_MS: '200',
  RECHECK_MAX_MS: '400',
};

const HEALTH = `query { sellerHealth { seller { id } breaker errorRate } }`;
const STATUS = `query Q($id: ID!) { purchaseRequest(id: $id) { id status } }`;

let sandbox: SandboxProcess;
let proxy: PartnerProxy;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let a: BrokerProcess;
let b: BrokerProcess;
let sellerId: string;
/** performance.now() of every call that reached the seller, with its path. */
const arrivals: Array<{ at: number; path: string }> = [];
/** Set by a test: the next quote is answered 429 with Retry-After, and this is told when. */
let answer429: ((at: number) => void) | null = null;

beforeAll(async () => {
  if (!process.env.TEST_REDIS_URL) throw new Error('TEST_REDIS_URL must be set for the call-rate suite (limits shared in Redis)');
  sandbox = await startSandboxProcess({ seed: 1, latencyScale: 0 });
  proxy = await startPartnerProxy(sandbox.url, {
    intercept: (req, res) => {
      const at = performance.now();
      const path = req.url ?? '';
      if (answer429 && req.method === 'GET' && path.includes('/quote')) {
        const tell = answer429;
        answer429 = null;
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(RETRY_AFTER_S) });
        res.end('{"error":"slow down"}');
        arrivals.push({ at, path });
        tell(at);
        return true;
      }
      arrivals.push({ at, path });
      return false;
    },
  });
  db = await freshDatabase();
  const env = { ...ENGINE_ENV, ...db.env };
  // The seller is registered before the second broker starts, so both know it from the outset.
  a = await startBrokerProcess(env);
  const input = sandbox.sellers.find((s) => s.baseUrl.endsWith(`/${SELLER}`))!;
  const res = await a.gql(
    `mutation($input: SellerInput!) { upsertSeller(input: $input) { seller { id config } userErrors { code message } } }`,
    { input: { ...input, baseUrl: `${proxy.url}/${SELLER}`, maxCallsPerSecond: RATE, offerTtlSeconds: 0, timeoutMs: 3_000 } },
    a.tokens.admin,
  );
  const seller = res.data?.upsertSeller?.seller;
  if (!seller) throw new Error(`upsertSeller failed: ${JSON.stringify(res.errors ?? res.data)}`);
  expect(seller.config.maxCallsPerSecond).toBe(RATE);
  sellerId = seller.id;
  b = await startBrokerProcess(env);
}, 90_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await proxy?.close();
  await sandbox?.stop();
  await db?.drop();
});

async function stock(isbns: readonly string[]): Promise<void> {
  for (const isbn of isbns) {
    await sandbox.setInventory(SELLER, isbn, 10, 'new');
    await sandbox.setPrice(SELLER, isbn, 1_000, 'new');
  }
}

async function create(broker: BrokerProcess, isbn: string): Promise<string> {
  const res = await broker.gql(CREATE, { input: createInput({ book: { isbn }, maxTotalPrice: usd(5_000) }) });
  const id = res.data?.createPurchaseRequest?.purchaseRequest?.id;
  if (!id) throw new Error(`create failed: ${JSON.stringify(res.errors ?? res.data)}`);
  return id;
}

/**
 * Polls the requests, one at a time and unhurried, until every one is ORDERED: the proxy that
 * times the calls shares this process, and a busy event loop here would blur its clock.
 */
async function untilOrdered(ids: readonly string[], timeoutMs = 60_000): Promise<void> {
  const pending = new Set(ids);
  const deadline = Date.now() + timeoutMs;
  const last = new Map<string, unknown>();
  while (pending.size > 0) {
    for (const id of [...pending]) {
      const r = (await a.gql(STATUS, { id })).data?.purchaseRequest;
      last.set(id, r);
      if (r?.status === 'ORDERED') pending.delete(id);
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) throw new Error(`not ORDERED within ${timeoutMs} ms: ${JSON.stringify([...pending].map((id) => last.get(id)))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A counter's total on one broker, from its /metrics, over the series whose labels include `labels`. */
async function counter(broker: BrokerProcess, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${broker.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('maxCallsPerSecond across two broker processes', () => {
  it(`never lets more than ${RATE} calls to the seller start in one second, whichever instance makes them`, { timeout: 90_000 }, async () => {
    const warmUp = CATALOG.slice(0, 8).map((book) => book.isbn);
    const books = CATALOG.slice(8, 22).map((book) => book.isbn);
    await stock([...warmUp, ...books]);
    // Both instances' first calls (connections, code paths run for the first time) are not timed.
    await untilOrdered(await Promise.all(warmUp.map((isbn, i) => create(i % 2 ? b : a, isbn))));
    arrivals.length = 0;
    const before = await Promise.all([a, b].map((broker) => counter(broker, 'broker_seller_calls_total', {})));

    // A burst spread over both instances: each request is a quote and an order at least.
    await untilOrdered(await Promise.all(books.map((isbn, i) => create(i % 2 ? b : a, isbn))));

    const calls = arrivals.map((c) => c.at);
    expect(calls.length).toBeGreaterThanOrEqual(2 * books.length);
    expect(busiestWindow(calls, 1_000 - ARRIVAL_SLACK_MS)).toBeLessThanOrEqual(RATE);
    // Both instances called the seller during the burst: the limit held for the two together.
    const after = await Promise.all([a, b].map((broker) => counter(broker, 'broker_seller_calls_total', {})));
    expect(after[0]! - before[0]!).toBeGreaterThan(0);
    expect(after[1]! - before[1]!).toBeGreaterThan(0);
    expect(after[0]! - before[0]! + after[1]! - before[1]!).toBe(calls.length);
    // Waiting for a turn is no failure of the seller's, nor a refusal.
    for (const broker of [a, b]) {
      const health = (await broker.gql(HEALTH, {}, broker.tokens.admin)).data.sellerHealth;
      expect(health.find((h: { seller: { id: string } }) => h.seller.id === sellerId)).toMatchObject({ breaker: 'CLOSED', errorRate: 0 });
      expect(await counter(broker, 'broker_seller_calls_refused_total', {})).toBe(0);
    }
  });
});

describe("the seller's Retry-After across two broker processes", () => {
  it('pauses every instance: no call reaches the seller until the pause is over, then the requests are ordered', { timeout: 90_000 }, async () => {
    const books = CATALOG.slice(22, 30).map((book) => book.isbn);
    await stock(books);
    const told = new Promise<number>((resolve) => (answer429 = resolve));
    const first = await create(a, books[0]!);
    const pausedAt = await told;
    // Requests made during the pause on both instances, rechecked every 200 ms by both engines.
    const rest = await Promise.all(books.slice(1).map((isbn, i) => create(i % 2 ? b : a, isbn)));
    await untilOrdered([first, ...rest]);

    const during = arrivals.filter((c) => c.at > pausedAt && c.at < pausedAt + RETRY_AFTER_S * 1_000 - 300);
    expect(during).toEqual([]);
    // Each instance refused calls for the pause: the one the seller told, and the other.
    for (const broker of [a, b]) {
      expect(await counter(broker, 'broker_seller_calls_refused_total', { why: 'paused' })).toBeGreaterThan(0);
    }
  });
});
