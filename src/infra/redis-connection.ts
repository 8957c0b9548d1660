import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * How every Redis connection of ours behaves while Redis is away: commands fail at once rather
 * than wait (each caller has a fallback or a retry of its own, and a queued script could run long
 * after its caller gave up, holding a unit nobody releases), and the connection comes back within
 * about a second of Redis's return.
 */
const FAIL_FAST: RedisOptions = {
  enableOfflineQueue: false,
  // Commands in flight when the connection drops fail at once too, and are never sent again.
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  commandTimeout: 2_000,
  connectTimeout: 2_000,
  retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1_000),
};

/** A connection that logs when it is lost and when it is back, once each per outage. */
export function connectRedis(url: string, o: { role: string; log?: Logger; options?: RedisOptions }): Redis {
  const redis = new Redis(url, { ...FAIL_FAST, ...o.options });
  let lost = false;
  redis.on('close', () => {
    if (lost || redis.status === 'end') return;
    lost = true;
    o.log?.warn({ role: o.role }, 'Redis connection lost; degrading until it is back');
  });
  redis.on('ready', () => {
    if (!lost) return;
    lost = false;
    o.log?.info({ role: o.role }, 'Redis connection back');
  });
  // Connection errors surface on the commands that needed the connection; without a listener
  // ioredis would print each reconnect failure.
  redis.on('error', (err: Error) => o.log?.debug({ err, role: o.role }, 'Redis connection error'));
  return redis;
}

/** Resolves once the connection is ready; rejects on its first error, so start-up fails fast on a bad URL. */
export function whenReady(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      redis.off('ready', onReady);
      redis.off('error', onError);
      redis.off('end', onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const onError = (err: Error) => done(err);
    const onEnd = () => done(new Error('Connection is closed.'));
    redis.on('ready', onReady);
    redis.on('error', onError);
    redis.on('end', onEnd);
  });
}

/** Quits politely when connected; otherwise stops reconnecting at once. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
  else redis.disconnect();
}

/**
 * Runs the Redis commands of an adapter that has a fallback of its own: `undefined` when Redis
 * is disconnected (at once, without trying) or the command failed. A streak of failures is
 * logged once, with `what` falls back, not once per command.
 */
export class Fallible {
  private degraded = false;

  constructor(
    private readonly redis: Redis,
    private readonly what: string,
    private readonly log?: Logger,
  ) {}

  async attempt<T>(command: () => Promise<T>): Promise<T | undefined> {
    if (this.redis.status !== 'ready') return undefined;
    try {
      const result = await command();
      this.degraded = false;
      return result;
    } catch (e) {
      if (!this.degraded) {
        const err = e instanceof Error ? e : new Error(String(e), { cause: e });
        this.log?.warn({ err }, `${this.what} fall back to this instance: a Redis command failed`);
      }
      this.degraded = true;
      return undefined;
    }
  }
}
