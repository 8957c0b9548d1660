import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type Booking, type CallRateLimiter, MemoryCallRate, type SharedPauses, SPACING_MS } from './call-rate.js';
import { Fallible, closeRedis, connectRedis, whenReady } from './redis-connection.js';

/**
 * Seller call rates and Retry-After pauses shared by every instance, in Redis.
 *
 * Bookings are one sorted set per seller (member: booking id, score: start time), changed by one
 * Lua script so two instances never take the same slot. Times are Redis's own (TIME): instances'
 * clocks may disagree, and each only ever sees a wait relative to now. A pause is a key whose
 * PTTL is the time left, so it needs no clock at all.
 *
 * Redis failing never fails a call: while it is unreachable, or when a command errors, bookings
 * fall back to this instance's own log (the limit then holds per instance) and pauses to the
 * seller's local gate.
 */

const BOOK = `
local k = KEYS[1]
local limit = tonumber(ARGV[1]); local id = ARGV[2]; local spacing = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREMRANGEBYSCORE', k, '-inf', now - spacing)
local at = now
if redis.call('ZCARD', k) >= limit then
  local nth = redis.call('ZREVRANGE', k, limit - 1, limit - 1, 'WITHSCORES')
  at = math.max(now, tonumber(nth[2]) + spacing)
end
redis.call('ZADD', k, at, id)
redis.call('PEXPIRE', k, at - now + spacing)
return at - now
`;

const PAUSE = `
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
`;

type Scripts = Redis & {
  brokerBookCall(key: string, limit: number, id: string, spacingMs: number, now: string): Promise<number>;
  brokerPause(key: string, ms: number): Promise<number>;
};

interface PauseRead {
  /** performance.now() of the read. */
  readAt: number;
  /** performance.now() until which the pause holds. */
  until: number;
}

export interface RedisCallRateOptions {
  prefix?: string;
  /** How long a read pause is trusted before a call reads it again. */
  pauseRefreshMs?: number;
  /** Redis time in ms (tests pin it); default: the server's TIME. */
  now?: () => number;
  log?: Logger;
}

export class RedisCallRate implements CallRateLimiter, SharedPauses {
  private readonly redis: Scripts;
  private readonly local = new MemoryCallRate();
  private readonly prefix: string;
  private readonly refreshMs: number;
  private readonly pauseReads = new Map<string, PauseRead>();
  private readonly reading = new Map<string, Promise<number>>();
  private readonly instance = randomBytes(4).toString('hex');
  private seq = 0;
  private readonly fallible: Fallible;

  constructor(
    url: string,
    private readonly options: RedisCallRateOptions = {},
  ) {
    this.prefix = options.prefix ?? 'broker:';
    this.refreshMs = options.pauseRefreshMs ?? 150;
    // A hung Redis must not hold a seller call for long: the fallback answers instead.
    const redis = connectRedis(url, { role: 'call-rate', log: options.log, options: { commandTimeout: 500 } });
    redis.defineCommand('brokerBookCall', { numberOfKeys: 1, lua: BOOK });
    redis.defineCommand('brokerPause', { numberOfKeys: 1, lua: PAUSE });
    this.redis = redis as Scripts;
    this.fallible = new Fallible(redis, 'seller call rates and pauses', options.log);
  }

  async ready(): Promise<void> {
    await whenReady(this.redis);
  }

  async book(key: string, perSecond: number): Promise<Booking> {
    const id = `${this.instance}:${this.seq++}`;
    const waitMs = await this.attempt(() =>
      this.redis.brokerBookCall(this.callsKey(key), perSecond, id, SPACING_MS, this.options.now ? String(this.options.now()) : ''),
    );
    return waitMs === undefined ? this.local.bookNow(key, perSecond) : { id, waitMs };
  }

  cancel(key: string, booking: Booking): void {
    // Fallback bookings carry the local log's ids (no colon); Redis ones this instance's.
    if (!booking.id.includes(':')) return this.local.cancel(key, booking);
    void this.attempt(() => this.redis.zrem(this.callsKey(key), booking.id));
  }

  /** This instance's own gate holds the pause already: Redis is for the others. */
  publish(key: string, ms: number): void {
    if (ms <= 0) return;
    void this.attempt(() => this.redis.brokerPause(this.pauseKey(key), Math.ceil(ms)));
  }

  clear(key: string): void {
    this.pauseReads.set(key, { readAt: performance.now(), until: 0 });
    void this.attempt(() => this.redis.del(this.pauseKey(key)));
  }

  /** From a read at most `pauseRefreshMs` old: calls share one read rather than each asking Redis. */
  remaining(key: string): number | Promise<number> {
    const now = performance.now();
    const read = this.pauseReads.get(key);
    if (read && now - read.readAt < this.refreshMs) return Math.max(0, read.until - now);
    let pending = this.reading.get(key);
    if (!pending) {
      pending = this.readPause(key).finally(() => this.reading.delete(key));
      this.reading.set(key, pending);
    }
    return pending;
  }

  async current(key: string): Promise<number> {
    return Math.max(0, (await this.attempt(() => this.redis.pttl(this.pauseKey(key)))) ?? 0);
  }

  private async readPause(key: string): Promise<number> {
    const ttl = (await this.attempt(() => this.redis.pttl(this.pauseKey(key)))) ?? 0;
    const now = performance.now();
    // PTTL is -2 without a key, -1 without an expiry (never set by us).
    const remaining = Math.max(0, ttl);
    this.pauseReads.set(key, { readAt: now, until: now + remaining });
    return remaining;
  }

  /** Runs a command; undefined when Redis is unreachable or the command failed. */
  private attempt<T>(command: () => Promise<T>): Promise<T | undefined> {
    return this.fallible.attempt(command);
  }

  private callsKey(sellerId: string): string {
    return `${this.prefix}calls:${sellerId}`;
  }

  private pauseKey(sellerId: string): string {
    return `${this.prefix}pause:${sellerId}`;
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }
}
