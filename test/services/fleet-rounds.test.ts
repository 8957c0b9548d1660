import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisOffers } from '../../src/infra/redis-offers.js';
import { CATALOG } from '../../src/partners/sandbox/catalog.js';
import { type BrokerProcess, startBrokerProcess } from '../support/broker-process.js';
import { CREATE, createInput, usd } from '../support/fixtures.js';
import { type SandboxProcess, startSandboxProcess } from '../support/sandbox.js';
import { eventually, freshDatabase } from '../support/server.js';

/**
 * SPEC §3 and §11 with real processes: three brokers on one Postgres and one Redis share one
 * offer cache and run one round per book between them, so adding instances never multiplies the
 * quotes a seller receives. Budgets are below every price: requests end QUOTED, and no order (with
 * its revalidating quote) adds calls of its own.
 */

const SELLERS = ['pageturner', 'inkwell'] as const;
const TTL_S = 300;
/** Long enough that every instance's first round starts while the first answers are still on their way. */
const QUOTE_LATENCY = { medianMs: 1_500, p99Ms: 1_600 };
const PRICE_CENTS = 2_000;
const BUDGET = usd(1_000);

const ENV = {
  ENGINE: 'true',
  ENGINE_POLL_MS: '50',
  ENGINE_LEASE_MS: '5000',
  RECONCILE_INTERVAL_MS: '200',
  IMPROVEMENT_WINDOW_MS: '0',
  // No instance can claim the whole burst: each has requests for the book in a round at once.
  ENGINE_MAX_ACTIVE: '10',
};

const STATUS = `query Q($id: ID!) { purchaseRequest(id: $id) { id status bestOffer { total { cents } } } }`;
const UPSERT = `mutation($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { code message } } }`;

let sandbox: SandboxProcess;
let db: Awaited<ReturnType<typeof freshDatabase>>;
const brokers: BrokerProcess[] = [];

beforeAll(async () => {
  if (!process.env.TEST_REDIS_URL) throw new Error('TEST_REDIS_URL must be set for the fleet-rounds suite (instances share Redis)');
  sandbox = await startSandboxProcess({ seed: 1 });
  db = await freshDatabase();
  const env = { ...ENV, ...db.env };
  const first = await startBrokerProcess(env);
  brokers.push(first);
  for (const key of SELLERS) {
    await sandbox.configure(key, { latency: QUOTE_LATENCY, orderLatency: { medianMs: 5, p99Ms: 10 } });
    const input = sandbox.sellers.find((s) => s.baseUrl.endsWith(`/${key}`))!;
    const res = await first.gql(UPSERT, { input: { ...input, tier: 1, offerTtlSeconds: TTL_S, timeoutMs: 5_000 } }, first.tokens.admin);
    if (!res.data?.upsertSeller?.seller) throw new Error(`upsertSeller failed: ${JSON.stringify(res.errors ?? res.data)}`);
  }
  // The others start knowing the sellers.
  brokers.push(...(await Promise.all([startBrokerProcess(env), startBrokerProcess(env)])));
}, 120_000);

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.stop()));
  await sandbox?.stop();
  await db?.drop();
});

async function stock(isbn: string): Promise<void> {
  for (const key of SELLERS) {
    await sandbox.setInventory(key, isbn, 100, 'new');
    await sandbox.setPrice(key, isbn, PRICE_CENTS, 'new');
  }
}

async function quotes(): Promise<Record<string, number>> {
  const stats = await sandbox.stats();
  return Object.fromEntries(SELLERS.map((key) => [key, stats[key]!.quote]));
}

async function create(broker: BrokerProcess, isbn: string): Promise<string> {
  const res = await broker.gql(CREATE, { input: createInput({ book: { isbn }, maxTotalPrice: BUDGET }) });
  const id = res.data?.createPurchaseRequest?.purchaseRequest?.id;
  if (!id) throw new Error(`create failed: ${JSON.stringify(res.errors ?? res.data)}`);
  return id;
}

/** Polls until every request is QUOTED (over budget, nothing ordered); returns their best totals. */
async function untilQuoted(broker: BrokerProcess, ids: readonly string[], timeoutMs = 30_000): Promise<number[]> {
  const seen = new Map<string, any>();
  try {
    return await eventually(
      async () => {
        for (const id of ids) {
          if (seen.get(id)?.status === 'QUOTED') continue;
          seen.set(id, (await broker.gql(STATUS, { id })).data?.purchaseRequest);
        }
        return ids.every((id) => seen.get(id)?.status === 'QUOTED') ? ids.map((id) => seen.get(id).bestOffer.total.cents as number) : null;
      },
      timeoutMs,
      100,
    );
  } catch {
    throw new Error(`not all QUOTED within ${timeoutMs} ms: ${JSON.stringify([...seen.values()].filter((r) => r?.status !== 'QUOTED'))}`);
  }
}

/** A counter's total on one broker, from its /metrics, over the series whose labels include `labels`. */
async function counter(broker: BrokerProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${broker.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || !/^[a-z_]+(\{| )/.test(line) || line.slice(0, line.search(/[{ ]/)) !== name) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('three broker processes, one offer cache and one round per book', () => {
  it('a quote one instance received is a cache hit on another: that one asks no seller', { timeout: 60_000 }, async () => {
    const isbn = CATALOG[30]!.isbn;
    await stock(isbn);
    const lookups = (result: 'hit' | 'miss') => Promise.all(brokers.map((b) => counter(b, 'broker_offer_cache_lookups_total', { result })));
    const before = await quotes();
    const missesBefore = await lookups('miss');
    const [first] = await untilQuoted(brokers[0]!, [await create(brokers[0]!, isbn)]);
    const quoted = await quotes();
    for (const key of SELLERS) expect(quoted[key]! - before[key]!).toBe(1);
    // Whichever instance claimed the request asked the sellers.
    const missesAfter = await lookups('miss');
    const asker = missesAfter.findIndex((n, i) => n - missesBefore[i]! === SELLERS.length);
    expect(asker).toBeGreaterThanOrEqual(0);

    // Any instance may claim a request, whoever took it in: ask until another one has served it.
    let servedElsewhere = false;
    for (let i = 1; i <= 10 && !servedElsewhere; i++) {
      const hitsBefore = await lookups('hit');
      const broker = brokers[(asker + i) % brokers.length]!;
      const [total] = await untilQuoted(broker, [await create(broker, isbn)]);
      expect(total).toBe(first);
      expect(await quotes()).toEqual(quoted);
      const hits = await lookups('hit');
      servedElsewhere = hits.some((n, j) => j !== asker && n - hitsBefore[j]! === SELLERS.length);
    }
    expect(servedElsewhere).toBe(true);
  });

  it('a burst of 30 requests for one book over 3 instances: each seller quoted once in all, every request QUOTED', { timeout: 90_000 }, async () => {
    const isbn = CATALOG[31]!.isbn;
    await stock(isbn);
    const before = await quotes();
    const attachedBefore = (await Promise.all(brokers.map((b) => counter(b, 'broker_rounds_attached_total')))).reduce((x, y) => x + y, 0);
    const ids = await Promise.all([...Array(30)].map((_, i) => create(brokers[i % 3]!, isbn)));
    const totals = await untilQuoted(brokers[0]!, ids);
    expect(new Set(totals).size).toBe(1);

    const after = await quotes();
    for (const key of SELLERS) expect(after[key]! - before[key]!, key).toBe(1);
    // The other instances' rounds ran while the first one's calls were out: they attached to it.
    const attached = (await Promise.all(brokers.map((b) => counter(b, 'broker_rounds_attached_total')))).reduce((x, y) => x + y, 0);
    expect(attached - attachedBefore).toBeGreaterThanOrEqual(1);
  });
});

describe('RedisOffers', () => {
  it('one lease per round: renewed and released only by its holder; answers expire with their TTL', async () => {
    const prefix = `test-${process.pid}-${Date.now()}:`;
    const one = new RedisOffers(process.env.TEST_REDIS_URL!, { prefix });
    const two = new RedisOffers(process.env.TEST_REDIS_URL!, { prefix });
    try {
      await Promise.all([one.ready(), two.ready()]);
      expect(await one.claim('book|new', 'a', 5_000)).toBe('owner');
      expect(await two.claim('book|new', 'b', 5_000)).toEqual({ holder: 'a' });
      expect(await two.renew('book|new', 'b', 5_000)).toBe(false);
      expect(await one.renew('book|new', 'a', 5_000)).toBe(true);
      two.release('book|new', 'b');
      expect(await one.holder('book|new')).toBe('a');
      one.release('book|new', 'a');
      await eventually(async () => (await two.holder('book|new')) === null, 2_000);
      expect(await two.claim('book|new', 'b', 50)).toBe('owner');
      // A holder that stops renewing loses the round when its lease lapses.
      await eventually(async () => (await one.claim('book|new', 'a', 5_000)) === 'owner', 2_000);

      one.put('book|s1|new', { offers: [], condition: 'new', quotedAt: 1, expiresAt: 2 }, 5_000);
      one.put('book|s2|new', { offers: [] }, 30);
      await eventually(async () => (await two.getMany(['book|s1|new']))[0] !== null, 2_000);
      await eventually(async () => (await two.getMany(['book|s2|new']))[0] === null, 2_000);
      expect(await two.getMany(['book|s1|new', 'book|none|new'])).toEqual([{ offers: [], condition: 'new', quotedAt: 1, expiresAt: 2 }, null]);
      two.remove(['book|s1|new']);
      await eventually(async () => (await one.getMany(['book|s1|new']))[0] === null, 2_000);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('Redis unreachable: nothing shared, every round local, nothing thrown', async () => {
    const down = new RedisOffers('redis://127.0.0.1:1', { prefix: 'x:' });
    try {
      down.put('k', { a: 1 }, 1_000);
      down.remove(['k']);
      expect(await down.getMany(['k'])).toEqual([null]);
      expect(await down.claim('r', 'a', 1_000)).toBeNull();
      expect(await down.renew('r', 'a', 1_000)).toBe(false);
      expect(await down.holder('r')).toBeNull();
    } finally {
      await down.close();
    }
  });
});
