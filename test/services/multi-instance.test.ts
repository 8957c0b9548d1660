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
