/**
 * Token buckets per key (a user's mutations): `burst` tokens at most, refilled at `perMinute`.
 * One interface; this in-process adapter serves one instance, a Redis one serves several.
 */
export interface RateLimiter {
  take(key: string, cost: number): Promise<{ ok: true } | { ok: false; retryAfterMs: number }>;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    perMinute: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {
    this.perMs = perMinute / 60_000;
  }

  async take(key: string, cost: number): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> {
    const now = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: now };
      if (this.buckets.size >= this.maxKeys) this.evictFull(now);
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    if (cost > this.burst) return { ok: false, retryAfterMs: Math.ceil(cost / this.perMs) };
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil((cost - b.tokens) / this.perMs) };
  }

  /** Buckets that have refilled completely carry no information: forget them first. */
  private evictFull(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.burst) this.buckets.delete(k);
      if (this.buckets.size < this.maxKeys * 0.9) return;
    }
  }
}
