import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPubSub } from '../../src/infra/redis-pubsub.js';
import { CREATE, UPDATE, WATCH, createInput } from '../support/fixtures.js';
import { type TestServer, collect, freshDatabase, startTestServer } from '../support/server.js';

// Several instances share one Postgres database and one Redis: a change made through one
// instance reaches a subscriber connected to another.
const redisUrl = process.env.TEST_REDIS_URL;

describe('two instances on shared Postgres and Redis', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    if (!redisUrl) throw new Error('TEST_REDIS_URL must be set for the multi-instance suite (Redis pub/sub)');
    db = await freshDatabase();
    a = await startTestServer({}, {}, db);
    b = await startTestServer({}, {}, db);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await db?.drop();
  });

  it('streams a change made on instance B to a subscriber on instance A', async () => {
    const created = await a.gql(CREATE, { input: createInput() });
    const id = created.data.createPurchaseRequest.purchaseRequest.id;
    const { seen } = collect(a.wsClient(), WATCH, { id });
    await seen.until((c) => c.values.length === 1);

    const updated = await b.gql(UPDATE, { id, input: { maxTotalPrice: { cents: 9900 } } });
    expect(updated.data.updatePurchaseRequest.userErrors).toEqual([]);

    await seen.until((c) => c.values.length === 2);
    expect(seen.values[1]!.data!.purchaseRequestUpdated).toMatchObject({ id, revision: 2, maxTotalPrice: { cents: 9900 } });
  });

  it('serves one idempotency key once across instances under concurrent creates', async () => {
    const input = createInput();
    const results = await Promise.all([...Array(10)].map((_, i) => (i % 2 ? a : b).gql(CREATE, { input })));
    const ids = new Set(results.map((r) => r.data.createPurchaseRequest.purchaseRequest.id));
    expect(ids.size).toBe(1);
  });
});

describe('RedisPubSub', () => {
  it('delivers across connections in order and stops after close', async () => {
    const prefix = `test-${process.pid}-${Date.now()}:`;
    const one = new RedisPubSub(redisUrl!, prefix);
    const two = new RedisPubSub(redisUrl!, prefix);
    try {
      await Promise.all([one.ready(), two.ready()]);
      const sub = await one.subscribe<{ n: number }>('topic');
      for (let n = 1; n <= 5; n++) await two.publish('topic', { n });
      const got: number[] = [];
      for (let i = 0; i < 5; i++) got.push(((await sub.next()).value as { n: number }).n);
      expect(got).toEqual([1, 2, 3, 4, 5]);
      expect(one.size()).toBe(1);
      sub.close();
      expect(one.size()).toBe(0);
    } finally {
      await one.close();
      await two.close();
    }
  });
});

describe('Redis-backed limits shared by instances', () => {
  it('one token bucket per user across instances', async () => {
    const { RedisLimits } = await import('../../src/infra/redis-limits.js');
    const prefix = `test-${process.pid}-${Date.now()}:`;
    const one = new RedisLimits(redisUrl!, prefix);
    const two = new RedisLimits(redisUrl!, prefix);
    try {
      let now = 1_000_000;
      const a = one.rateLimiter(60, 3, () => now);
      const b = two.rateLimiter(60, 3, () => now);
      expect(await a.take('u', 2)).toEqual({ ok: true });
      expect(await b.take('u', 1)).toEqual({ ok: true });
      expect(await b.take('u', 1)).toEqual({ ok: false, retryAfterMs: 1000 });
      now += 1000;
      expect(await a.take('u', 1)).toEqual({ ok: true });
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('never reserves more units than known across instances, and trusts only quotes asked after a sale', async () => {
    const { RedisLimits } = await import('../../src/infra/redis-limits.js');
    const prefix = `test-${process.pid}-${Date.now()}:`;
    let now = 5_000;
    const oneLimits = new RedisLimits(redisUrl!, prefix);
    const one = oneLimits.inventoryGuard(() => now);
    const twoLimits = new RedisLimits(redisUrl!, prefix);
    const two = twoLimits.inventoryGuard(() => now);
    try {
      const got = await Promise.all([...Array(6)].map((_, i) => (i % 2 ? one : two).reserve('offer', 2, 1_000)));
      expect(got.filter(Boolean)).toHaveLength(2);
      await one.release('offer', true);
      await two.release('offer', false);
      expect(await one.reserve('offer', 2, 1_000)).toBe(true); // one unit back after the release
      expect(await two.reserve('offer', 2, 1_000)).toBe(false);
      now = 9_000;
      // A quote asked after the sale already counts it: a fresh "2" means two are free again.
      await one.release('offer', false);
      await two.release('offer', false);
      expect(await one.reserve('offer', 2, 8_000)).toBe(true);
      expect(await two.reserve('offer', 2, 8_000)).toBe(true);
      expect(await one.reserve('offer', 2, 8_000)).toBe(false);
    } finally {
      await oneLimits.close();
      await twoLimits.close();
    }
  });
});
