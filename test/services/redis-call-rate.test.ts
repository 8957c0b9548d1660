import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Booking, SPACING_MS } from '../../src/infra/call-rate.js';
import { RedisCallRate } from '../../src/infra/redis-call-rate.js';
import { busiestWindow } from '../support/call-rate.js';

// The Redis adapter of the seller call-rate limiter and of shared Retry-After pauses: two adapters
// stand for two instances on one Redis.
const redisUrl = process.env.TEST_REDIS_URL;

describe('RedisCallRate: one schedule per seller across instances', () => {
  let redis: Redis;
  beforeAll(() => {
    if (!redisUrl) throw new Error('TEST_REDIS_URL must be set for the Redis call-rate suite');
    redis = new Redis(redisUrl);
  });
  afterAll(async () => {
    await redis?.quit();
  });

  const prefix = () => `test-${randomBytes(6).toString('hex')}:`;

  it('never lets more than N calls start in any one-second window, bookings from both instances interleaved (pinned Redis time)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(
          fc.record({
            gap: fc.integer({ min: 0, max: 300 }),
            instance: fc.integer({ min: 0, max: 1 }),
            cancelAfter: fc.option(fc.integer({ min: 0, max: 1_500 }), { nil: null }),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        async (limit, arrivals) => {
          let now = 1_000_000;
          const options = { prefix: prefix(), now: () => now };
          const instances = [new RedisCallRate(redisUrl!, options), new RedisCallRate(redisUrl!, options)];
          try {
            await Promise.all(instances.map((i) => i.ready()));
            const starts: number[] = [];
            let pending: Array<{ by: RedisCallRate; booking: Booking; at: number; cancelAt: number | null }> = [];
            const settle = () => {
              pending = pending.filter((p) => {
                if (p.cancelAt !== null && p.cancelAt <= now && p.cancelAt < p.at) {
                  p.by.cancel('seller', p.booking);
                  return false;
                }
                if (p.at > now) return true;
                starts.push(p.at);
                return false;
              });
            };
            for (const a of arrivals) {
              now += a.gap;
              settle();
              const by = instances[a.instance]!;
              const booking = await by.book('seller', limit);
              pending.push({ by, booking, at: now + booking.waitMs, cancelAt: a.cancelAfter === null ? null : now + a.cancelAfter });
            }
            now = Infinity;
            settle();
            expect(busiestWindow(starts)).toBeLessThanOrEqual(limit);
          } finally {
            await Promise.all(instances.map((i) => i.close()));
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it("books on Redis's own clock, under the deployment's prefix, and expires what it keeps", async () => {
    const p = prefix();
    const one = new RedisCallRate(redisUrl!, { prefix: p });
    const two = new RedisCallRate(redisUrl!, { prefix: p });
    try {
      await Promise.all([one.ready(), two.ready()]);
      const waits = [(await one.book('s', 2)).waitMs, (await two.book('s', 2)).waitMs, (await one.book('s', 2)).waitMs];
      expect(waits.slice(0, 2)).toEqual([0, 0]);
      // A second (and the guard) after the first two, less the moments between the bookings.
      expect(waits[2]).toBeGreaterThan(SPACING_MS - 100);
      expect(waits[2]).toBeLessThanOrEqual(SPACING_MS);
      expect(await redis.zcard(`${p}calls:s`)).toBe(3);
      const ttl = await redis.pttl(`${p}calls:s`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(2 * SPACING_MS);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('gives a cancelled booking back to every instance', async () => {
    let now = 5_000;
    const options = { prefix: prefix(), now: () => now };
    const one = new RedisCallRate(redisUrl!, options);
    const two = new RedisCallRate(redisUrl!, options);
    try {
      await Promise.all([one.ready(), two.ready()]);
      expect((await one.book('s', 1)).waitMs).toBe(0);
      const queued = await two.book('s', 1);
      expect(queued.waitMs).toBe(SPACING_MS);
      two.cancel('s', queued);
      // Commands on one connection run in order: the cancel is in before this booking.
      expect((await two.book('s', 1)).waitMs).toBe(SPACING_MS);
      now += SPACING_MS;
      expect((await one.book('s', 1)).waitMs).toBe(SPACING_MS);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it("shares a seller's Retry-After pause: published on one instance, honoured on the other; a longer pause stands", async () => {
    const p = prefix();
    const one = new RedisCallRate(redisUrl!, { prefix: p });
    const two = new RedisCallRate(redisUrl!, { prefix: p, pauseRefreshMs: 0 });
    try {
      await Promise.all([one.ready(), two.ready()]);
      expect(await two.remaining('s')).toBe(0);
      one.publish('s', 5_000);
      one.publish('s', 100);
      const deadline = Date.now() + 5_000;
      let seen = 0;
      while (seen === 0 && Date.now() < deadline) seen = await two.remaining('s');
      expect(seen).toBeGreaterThan(4_000);
      expect(seen).toBeLessThanOrEqual(5_000);
      expect(await redis.pttl(`${p}pause:s`)).toBeGreaterThan(4_000);
      expect(await two.remaining('other')).toBe(0);

      // Lifted by hand on one instance: gone from Redis, so the others read no pause either.
      two.clear('s');
      expect(await two.remaining('s')).toBe(0);
      await two.book('flush', 1); // same connection: the delete is done by now
      expect(await redis.pttl(`${p}pause:s`)).toBe(-2);
      expect(await one.remaining('s')).toBe(0);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('reads a pause at most once per refresh interval, however many calls ask', async () => {
    const p = prefix();
    const reader = new RedisCallRate(redisUrl!, { prefix: p, pauseRefreshMs: 60_000 });
    const writer = new RedisCallRate(redisUrl!, { prefix: p });
    try {
      await Promise.all([reader.ready(), writer.ready()]);
      const first = await Promise.all([...Array(20)].map(() => reader.remaining('s')));
      expect(first.every((ms) => ms === 0)).toBe(true);
      writer.publish('s', 10_000);
      await writer.book('flush', 1); // same connection: the pause is written by now
      // Still trusted: the read above stands until the refresh interval has passed.
      expect(reader.remaining('s')).toBe(0);
    } finally {
      await reader.close();
      await writer.close();
    }
  });
});
