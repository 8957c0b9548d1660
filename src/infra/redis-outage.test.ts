import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { GraphQLError } from 'graphql';
import { AppError } from '../domain/errors.js';
import { makeErrorFormatter } from '../http/errors.js';
import { freePort } from '../../test/support/broker-process.js';
import { type RedisProcess, hasRedisServer, startRedisProcess } from '../../test/support/redis-process.js';
import { RedisLimits } from './redis-limits.js';
import { RedisPubSub } from './redis-pubsub.js';
import { isUnavailable } from './unavailable.js';

/** Everything here must answer well within this while Redis is away: fail fast, never hang. */
const FAST_MS = 300;

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await work();
  return { ms: performance.now() - start, value };
}

/** Polls `done` with a deadline (no fixed sleeps). */
async function until(done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('with Redis unreachable (a closed port)', () => {
  let url: string;
  let limits: RedisLimits;
  let pubsub: RedisPubSub;
  beforeAll(async () => {
    url = `redis://127.0.0.1:${await freePort()}`;
    limits = new RedisLimits(url, 'outage:');
    pubsub = new RedisPubSub(url, 'outage:');
  });
  afterAll(async () => {
    await limits.close();
    await pubsub.close();
  });

  it('start-up fails fast rather than waiting for Redis', async () => {
    const { ms, value } = await timed(() => rejection(limits.ready()));
    expect(isUnavailable(value)).toBe(true);
    expect(ms).toBeLessThan(2_000);
    expect(isUnavailable(await rejection(pubsub.ready()))).toBe(true);
  });

  it('mutation limits fall back to a bucket per instance: still limiting, never an error', async () => {
    let now = 0;
    const rl = limits.rateLimiter(60, 2, () => now);
    const { ms } = await timed(async () => {
      expect(await rl.take('u', 1)).toEqual({ ok: true });
      expect(await rl.take('u', 1)).toEqual({ ok: true });
      expect(await rl.take('u', 1)).toEqual({ ok: false, retryAfterMs: 1000 });
    });
    expect(ms).toBeLessThan(FAST_MS);
    now = 1000;
    expect(await rl.take('u', 1)).toEqual({ ok: true });
  });

  it('the inventory guard refuses to guess: UNAVAILABLE with a retry hint, at once', async () => {
    const guard = limits.inventoryGuard();
    const { ms, value } = await timed(() => rejection(guard.reserve('offer', 3, 1)));
    expect(ms).toBeLessThan(FAST_MS);
    expect(value).toBeInstanceOf(AppError);
    expect(value).toMatchObject({ code: 'UNAVAILABLE', extensions: { retryAfterMs: expect.any(Number) } });
    // Unknown inventory is never limited, so it needs no Redis.
    expect(await guard.reserve('offer', null, 1)).toBe(true);
  });

  it('a release is kept for when Redis is back, not failed', async () => {
    const guard = limits.inventoryGuard();
    const { ms } = await timed(() => guard.release('offer', true));
    expect(ms).toBeLessThan(FAST_MS);
    expect(limits.heldReleases()).toBe(1);
  });

  it('publishing never fails the publisher: the message is held', async () => {
    const { ms } = await timed(() => pubsub.publish('topic', { n: 1 }));
    expect(ms).toBeLessThan(FAST_MS);
    expect(pubsub.heldCount()).toBe(1);
  });

  it('subscribing still works (served once Redis is back)', async () => {
    const { ms, value: ch } = await timed(() => pubsub.subscribe('topic'));
    expect(ms).toBeLessThan(FAST_MS);
    expect(pubsub.size()).toBe(1);
    ch.close();
    expect(pubsub.size()).toBe(0);
  });
});

describe('the error formatter', () => {
  const format = makeErrorFormatter(pino({ level: 'silent' }));
  const formatted = (thrown: Error) => {
    const error = new GraphQLError('boom', { originalError: thrown, path: ['createPurchaseRequest'] });
    return format(error.toJSON(), error);
  };

  it('answers UNAVAILABLE with a retry hint for a Redis connection failure, never INTERNAL_SERVER_ERROR', () => {
    const maxRetries = Object.assign(new Error('Reached the max retries per request limit (which is 0).'), { name: 'MaxRetriesPerRequestError' });
    const offline = new Error("Stream isn't writeable and enableOfflineQueue options is false");
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' });
    for (const e of [maxRetries, offline, refused, new Error('wrapped', { cause: refused })]) {
      const out = formatted(e);
      expect(out.extensions).toEqual({ code: 'UNAVAILABLE', retryAfterMs: expect.any(Number) });
      expect(out.message).not.toMatch(/redis|ECONN|6390/i);
    }
  });

  it('still masks everything else', () => {
    expect(formatted(new Error('a bug')).extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
    const reply = Object.assign(new Error('ERR wrong number of arguments'), { name: 'ReplyError' });
    expect(formatted(reply).extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
  });
});

// A redis-server of this file's own, killed and started again on its port.
describe.skipIf(!hasRedisServer())('when Redis is killed and comes back', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await startRedisProcess();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('held messages go out in order once resubscribed, then topics are re-read', async () => {
    const resynced: string[] = [];
    const one = new RedisPubSub(redis.url, 'back:', {
      resyncDelayMs: 0,
      resync: async (topic) => {
        resynced.push(topic);
        return { n: 'current' };
      },
    });
    const two = new RedisPubSub(redis.url, 'back:');
    try {
      await Promise.all([one.ready(), two.ready()]);
      const sub = await one.subscribe<{ n: number | string }>('topic');
      await one.publish('topic', { n: 1 });
      expect((await sub.next()).value).toEqual({ n: 1 });

      await redis.kill();
      for (let n = 2; n <= 4; n++) await one.publish('topic', { n });
      expect(one.heldCount()).toBe(3);
      await redis.restart();

      const got: Array<number | string> = [];
      for (let i = 0; i < 4; i++) got.push((await sub.next()).value!.n);
      // Its own held messages in order, then the re-read state (which subscribers drop when seen).
      expect(got).toEqual([2, 3, 4, 'current']);
      expect(resynced).toEqual(['topic']);
      expect(one.heldCount()).toBe(0);
      // And live again across instances (held by `two` if it is not back yet).
      await two.publish('topic', { n: 5 });
      expect((await sub.next()).value).toEqual({ n: 5 });
      sub.close();
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('limits: a release made while Redis was away reaches it once it is back', async () => {
    const limits = new RedisLimits(redis.url, 'back:');
    try {
      await limits.ready();
      const guard = limits.inventoryGuard();
      expect(await guard.reserve('offer', 2, 1)).toBe(true);
      await redis.kill();
      await guard.release('offer', true); // ordered while Redis was down
      expect(limits.heldReleases()).toBe(1);
      await redis.restart();
      await until(() => limits.heldReleases() === 0);
      // Redis came back empty, but the replayed release recorded the order: one of two units is left.
      expect(await guard.reserve('offer', 2, 1)).toBe(true);
      expect(await guard.reserve('offer', 2, 1)).toBe(false);
    } finally {
      await limits.close();
    }
  });
});
