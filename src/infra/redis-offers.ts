import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Fallible, closeRedis, connectRedis, whenReady } from './redis-connection.js';

/**
 * What the fleet shares about quotes, in Redis: every seller's answer for a book under its own
 * key (expiring with the answer's TTL), so an instance that starts or restarts finds what the
 * others were told; and the registry of rounds in flight, one lease per book, so one instance
 * calls the sellers for a book and the others attach to its round.
 *
 * Redis failing never fails a round: reads answer "nothing shared" and claims "run your own".
 */
export interface SharedOffers {
  /** Stores an answer for `ttlMs` (fire and forget). */
  put(key: string, value: unknown, ttlMs: number): void;
  remove(keys: readonly string[]): void;
  /** The values under `keys`, null where there is none; all null when Redis cannot answer. */
  getMany(keys: readonly string[]): Promise<Array<unknown | null>>;
  /**
   * Takes the lease on a round: 'owner' when this instance now holds it, the holder's name when
   * another does, null when Redis cannot say (run a local round).
   */
  claim(key: string, owner: string, leaseMs: number): Promise<'owner' | { holder: string } | null>;
  /** Extends a lease this owner holds; false when it no longer does (or Redis cannot say). */
  renew(key: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Ends a lease this owner holds (fire and forget). */
  release(key: string, owner: string): void;
  /** Who holds the lease now; null when nobody does or Redis cannot say. */
  holder(key: string): Promise<string | null>;
}

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

type Scripts = Redis & {
  brokerRenewRound(key: string, owner: string, leaseMs: number): Promise<number>;
  brokerReleaseRound(key: string, owner: string): Promise<number>;
};

export class RedisOffers implements SharedOffers {
  private readonly redis: Scripts;
  private readonly fallible: Fallible;

  constructor(
    url: string,
    private readonly o: { prefix?: string; log?: Logger } = {},
  ) {
    // A round waits on these at its start: a hung Redis must cost it little, the fallback answers instead.
    const redis = connectRedis(url, { role: 'offers', log: o.log, options: { commandTimeout: 300 } });
    redis.defineCommand('brokerRenewRound', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('brokerReleaseRound', { numberOfKeys: 1, lua: RELEASE });
    this.redis = redis as Scripts;
    this.fallible = new Fallible(redis, 'shared offers', o.log);
  }

  async ready(): Promise<void> {
    await whenReady(this.redis);
  }

  put(key: string, value: unknown, ttlMs: number): void {
    const ms = Math.floor(ttlMs);
    if (ms <= 0) return;
    void this.attempt(() => this.redis.set(this.offerKey(key), JSON.stringify(value), 'PX', ms));
  }

  remove(keys: readonly string[]): void {
    if (keys.length === 0) return;
    void this.attempt(() => this.redis.del(...keys.map((k) => this.offerKey(k))));
  }

  async getMany(keys: readonly string[]): Promise<Array<unknown | null>> {
    if (keys.length === 0) return [];
    const texts = await this.attempt(() => this.redis.mget(...keys.map((k) => this.offerKey(k))));
    return keys.map((_, i) => {
      const text = texts?.[i];
      if (typeof text !== 'string') return null;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return null;
      }
    });
  }

  async claim(key: string, owner: string, leaseMs: number): Promise<'owner' | { holder: string } | null> {
    const k = this.roundKey(key);
    // Twice at most: the holder may release between our SET and our GET.
    for (let i = 0; i < 2; i++) {
      const got = await this.attempt(async () => {
        if ((await this.redis.set(k, owner, 'PX', Math.ceil(leaseMs), 'NX')) === 'OK') return 'owner' as const;
        const holder = await this.redis.get(k);
        return holder === null ? ('again' as const) : { holder };
      });
      if (got === undefined) return null;
      if (got !== 'again') return got;
    }
    return null;
  }

  async renew(key: string, owner: string, leaseMs: number): Promise<boolean> {
    return (await this.attempt(() => this.redis.brokerRenewRound(this.roundKey(key), owner, Math.ceil(leaseMs)))) === 1;
  }

  release(key: string, owner: string): void {
    void this.attempt(() => this.redis.brokerReleaseRound(this.roundKey(key), owner));
  }

  async holder(key: string): Promise<string | null> {
    return (await this.attempt(() => this.redis.get(this.roundKey(key)))) ?? null;
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }

  /** Runs a command; undefined when Redis is unreachable or the command failed. */
  private attempt<T>(command: () => Promise<T>): Promise<T | undefined> {
    return this.fallible.attempt(command);
  }

  private offerKey(key: string): string {
    return `${this.o.prefix ?? 'broker:'}offer:${key}`;
  }

  private roundKey(key: string): string {
    return `${this.o.prefix ?? 'broker:'}round:${key}`;
  }
}
