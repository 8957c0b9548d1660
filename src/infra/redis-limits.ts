import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { toError } from '../domain/errors.js';
import type { InventoryGuard } from './inventory.js';
import { MemoryRateLimiter, type RateLimiter } from './rate-limit.js';
import { closeRedis, connectRedis, whenReady } from './redis-connection.js';
import { isUnavailable, unavailable } from './unavailable.js';

/**
 * The Redis adapters for state several instances must share: per-user mutation buckets and the
 * inventory guard. Each operation is one Lua script, so it is atomic across instances.
 */

const TAKE = `
local k = KEYS[1]
local burst = tonumber(ARGV[1]); local perMs = tonumber(ARGV[2]); local cost = tonumber(ARGV[3]); local now = tonumber(ARGV[4])
local b = redis.call('HMGET', k, 't', 'a')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * perMs)
local ttl = math.ceil(burst / perMs) + 1000
if cost > burst then return {0, math.ceil(cost / perMs)} end
if tokens >= cost then
  redis.call('HSET', k, 't', tostring(tokens - cost), 'a', tostring(now))
  redis.call('PEXPIRE', k, ttl)
  return {1, 0}
end
redis.call('HSET', k, 't', tostring(tokens), 'a', tostring(now))
redis.call('PEXPIRE', k, ttl)
return {0, math.ceil((cost - tokens) / perMs)}
`;

const RESERVE = `
local k = KEYS[1]; local orders = KEYS[2]
local known = tonumber(ARGV[1]); local quotedAt = tonumber(ARGV[2]); local ttl = tonumber(ARGV[3])
local seen = tonumber(redis.call('HGET', k, 'q') or '-1')
if quotedAt > seen then
  redis.call('HSET', k, 'q', tostring(quotedAt), 'n', tostring(known))
  redis.call('ZREMRANGEBYSCORE', orders, '-inf', tostring(quotedAt))
end
local n = tonumber(redis.call('HGET', k, 'n'))
local inflight = tonumber(redis.call('HGET', k, 'f') or '0')
local ordered = redis.call('ZCARD', orders)
redis.call('PEXPIRE', k, ttl); redis.call('PEXPIRE', orders, ttl)
if n - inflight - ordered <= 0 then return 0 end
redis.call('HINCRBY', k, 'f', 1)
return 1
`;

const RELEASE = `
local k = KEYS[1]; local orders = KEYS[2]
local ordered = ARGV[1] == '1'; local now = tonumber(ARGV[2]); local member = ARGV[3]; local ttl = tonumber(ARGV[4])
local f = tonumber(redis.call('HGET', k, 'f') or '0')
if f > 0 then redis.call('HINCRBY', k, 'f', -1) end
if ordered then redis.call('ZADD', orders, now, member); redis.call('PEXPIRE', orders, ttl) end
return 1
`;

type Scripts = Redis & {
  brokerTake(key: string, burst: number, perMs: number, cost: number, now: number): Promise<[number, number]>;
  brokerReserve(key: string, orders: string, known: number, quotedAt: number, ttl: number): Promise<number>;
  brokerRelease(key: string, orders: string, ordered: string, now: number, member: string, ttl: number): Promise<number>;
};

type ReleaseArgs = Parameters<Scripts['brokerRelease']>;
/** Releases kept while Redis is away; past this many the oldest go (their keys expire in a day anyway). */
const MAX_HELD_RELEASES = 10_000;

/**
 * While Redis is away (SPEC §6): mutation limits fall back to a bucket per instance (a user may
 * get up to N× the rate over N instances, never an error); the inventory guard cannot be checked
 * safely by one instance alone, so a reservation fails UNAVAILABLE and the engine retries the
 * request shortly; a release is kept and sent when Redis is back, so no unit stays held.
 */
export class RedisLimits {
  private readonly redis: Scripts;
  private seq = 0;
  private held: ReleaseArgs[] = [];
  private replaying = false;
  /** Settles with the first connection attempt: commands made before it wait for it, later ones never wait. */
  private readonly connected: Promise<void>;

  constructor(url: string, private readonly prefix = 'broker:', o: { log?: Logger } = {}) {
    const redis = connectRedis(url, { role: 'limits', log: o.log });
    redis.defineCommand('brokerTake', { numberOfKeys: 1, lua: TAKE });
    redis.defineCommand('brokerReserve', { numberOfKeys: 2, lua: RESERVE });
    redis.defineCommand('brokerRelease', { numberOfKeys: 2, lua: RELEASE });
    redis.on('ready', () => void this.replayReleases());
    this.redis = redis as Scripts;
    this.connected = whenReady(redis).catch(() => {});
  }

  async ready(): Promise<void> {
    await whenReady(this.redis);
  }

  /** Whether Redis can be asked now (after waiting for the first connection, if it is still being made). */
  private async up(): Promise<boolean> {
    if (this.redis.status !== 'ready') await this.connected;
    return this.redis.status === 'ready';
  }

  rateLimiter(perMinute: number, burst: number, now: () => number = Date.now): RateLimiter {
    const perMs = perMinute / 60_000;
    const local = new MemoryRateLimiter(perMinute, burst, now);
    return {
      take: async (key, cost) => {
        if (!(await this.up())) return local.take(key, cost);
        try {
          const [ok, retryAfterMs] = await this.redis.brokerTake(`${this.prefix}rl:${key}`, burst, perMs, cost, now());
          return ok === 1 ? { ok: true } : { ok: false, retryAfterMs };
        } catch (e) {
          if (isUnavailable(e)) return local.take(key, cost);
          throw toError(e);
        }
      },
    };
  }

  /** Entries live a day past their last use: a quote older than that is never ordered on. */
  inventoryGuard(now: () => number = Date.now, ttlMs = 86_400_000): InventoryGuard {
    return {
      reserve: async (key, known, quotedAt) => {
        if (known === null) return true;
        const k = `${this.prefix}inv:${key}`;
        if (!(await this.up())) throw unavailable(new Error(`Redis is ${this.redis.status}`));
        try {
          return (await this.redis.brokerReserve(k, `${k}:orders`, known, quotedAt, ttlMs)) === 1;
        } catch (e) {
          throw isUnavailable(e) ? unavailable(e) : toError(e);
        }
      },
      release: async (key, ordered) => {
        const k = `${this.prefix}inv:${key}`;
        // A unique member per completed order, so two orders in one millisecond both count.
        const member = `${process.pid}:${Date.now()}:${this.seq++}`;
        const args: ReleaseArgs = [k, `${k}:orders`, ordered ? '1' : '0', now(), member, ttlMs];
        if (!(await this.up()) || this.held.length > 0) return this.hold(args);
        try {
          await this.redis.brokerRelease(...args);
        } catch (e) {
          if (!isUnavailable(e)) throw toError(e);
          this.hold(args);
        }
      },
    };
  }

  /** Releases waiting for Redis, for tests and metrics. */
  heldReleases(): number {
    return this.held.length;
  }

  private hold(args: ReleaseArgs): void {
    this.held.push(args);
    if (this.held.length > MAX_HELD_RELEASES) this.held.shift();
    // Redis may have come back between the failure and now: 'ready' will not fire again.
    if (this.redis.status === 'ready') void this.replayReleases();
  }

  private async replayReleases(): Promise<void> {
    if (this.replaying) return;
    this.replaying = true;
    try {
      while (this.held.length > 0 && this.redis.status === 'ready') {
        await this.redis.brokerRelease(...this.held[0]!);
        this.held.shift();
      }
    } catch {
      // Gone again: the next 'ready' replays the rest.
    } finally {
      this.replaying = false;
    }
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }
}
