import { Redis } from 'ioredis';
import type { InventoryGuard } from './inventory.js';
import type { RateLimiter } from './rate-limit.js';

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

export class RedisLimits {
  private readonly redis: Scripts;
  private seq = 0;

  constructor(url: string, private readonly prefix = 'broker:') {
    const redis = new Redis(url, { maxRetriesPerRequest: 3 });
    redis.defineCommand('brokerTake', { numberOfKeys: 1, lua: TAKE });
    redis.defineCommand('brokerReserve', { numberOfKeys: 2, lua: RESERVE });
    redis.defineCommand('brokerRelease', { numberOfKeys: 2, lua: RELEASE });
    this.redis = redis as Scripts;
  }

  async ready(): Promise<void> {
    await this.redis.ping();
  }

  rateLimiter(perMinute: number, burst: number, now: () => number = Date.now): RateLimiter {
    const perMs = perMinute / 60_000;
    return {
      take: async (key, cost) => {
        const [ok, retryAfterMs] = await this.redis.brokerTake(`${this.prefix}rl:${key}`, burst, perMs, cost, now());
        return ok === 1 ? { ok: true } : { ok: false, retryAfterMs };
      },
    };
  }

  /** Entries live a day past their last use: a quote older than that is never ordered on. */
  inventoryGuard(now: () => number = Date.now, ttlMs = 86_400_000): InventoryGuard {
    return {
      reserve: async (key, known, quotedAt) => {
        if (known === null) return true;
        const k = `${this.prefix}inv:${key}`;
        return (await this.redis.brokerReserve(k, `${k}:orders`, known, quotedAt, ttlMs)) === 1;
      },
      release: async (key, ordered) => {
        const k = `${this.prefix}inv:${key}`;
        // A unique member per completed order, so two orders in one millisecond both count.
        const member = `${process.pid}:${Date.now()}:${this.seq++}`;
        await this.redis.brokerRelease(k, `${k}:orders`, ordered ? '1' : '0', now(), member, ttlMs);
      },
    };
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => {});
  }
}
