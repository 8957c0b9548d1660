import type { SellerRow } from '../db/schema.js';
import { type Clock, systemClock } from '../domain/clock.js';

/**
 * The enabled sellers grouped by tier, held in memory for the hot path and reloaded when an
 * admin changes one (here) or periodically (changes made on another instance).
 */
export class SellerDirectory {
  private tiersCache: SellerRow[][] = [];
  private byId = new Map<string, SellerRow>();
  private loading: Promise<void> | null = null;
  private loadedAt = -Infinity;

  constructor(
    private readonly load: () => Promise<SellerRow[]>,
    private readonly clock: Clock = systemClock,
    private readonly maxAgeMs = 5_000,
  ) {}

  /** Enabled sellers, tier 1 first. */
  async tiers(now = this.clock.now().getTime()): Promise<SellerRow[][]> {
    await this.fresh(now);
    return this.tiersCache;
  }

  async get(id: string, now = this.clock.now().getTime()): Promise<SellerRow | null> {
    await this.fresh(now);
    return this.byId.get(id) ?? null;
  }

  /** Forces the next read to reload (after an upsert on this instance). */
  invalidate(): void {
    this.loadedAt = -Infinity;
  }

  count(): number {
    return this.byId.size;
  }

  private async fresh(now: number): Promise<void> {
    if (now - this.loadedAt < this.maxAgeMs) return;
    this.loading ??= this.reload().finally(() => {
      this.loading = null;
    });
    await this.loading;
  }

  private async reload(): Promise<void> {
    const rows = await this.load();
    // Every seller is kept by id (orders in flight may name a seller since disabled);
    // only enabled ones are asked for quotes.
    this.byId = new Map(rows.map((r) => [r.id, r]));
    const tiers = new Map<number, SellerRow[]>();
    for (const r of rows) {
      if (!r.enabled) continue;
      const list = tiers.get(r.tier) ?? [];
      list.push(r);
      tiers.set(r.tier, list);
    }
    this.tiersCache = [...tiers.entries()].sort((a, b) => a[0] - b[0]).map(([, list]) => list);
    this.loadedAt = this.clock.now().getTime();
  }
}
