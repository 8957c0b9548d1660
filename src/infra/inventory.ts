/**
 * Known inventory per seller offer, so concurrent requests never order more copies than the
 * seller said it has (SPEC §4.2). A reservation is held while an attempt runs and becomes
 * "ordered" or is released. A newer quote replaces the seller's count: it already reflects
 * orders completed before it, so only reservations still in flight are counted against it.
 */
export interface InventoryGuard {
  /** Takes one unit of `key` against `known` (null: unknown, never limited). False when none is left. */
  reserve(key: string, known: number | null, quotedAt: number): Promise<boolean>;
  /** Ends a reservation: `ordered` keeps the unit taken, otherwise it returns to the pool. */
  release(key: string, ordered: boolean): Promise<void>;
}

interface Entry {
  quotedAt: number;
  known: number;
  inFlight: number;
  ordered: number;
}

/** The embedded default: counters in this process. Several instances need the Redis adapter. */
export class MemoryInventoryGuard implements InventoryGuard {
  private readonly entries = new Map<string, Entry>();

  /** @param maxEntries beyond it the oldest idle entries go: their quotes are long stale anyway. */
  constructor(private readonly maxEntries = 100_000) {}

  async reserve(key: string, known: number | null, quotedAt: number): Promise<boolean> {
    if (known === null) return true;
    let e = this.entries.get(key);
    if (!e) {
      e = { quotedAt, known, inFlight: 0, ordered: 0 };
      this.entries.set(key, e);
      if (this.entries.size > this.maxEntries) this.evict();
    } else if (quotedAt > e.quotedAt) {
      e.quotedAt = quotedAt;
      e.known = known;
      e.ordered = 0;
    }
    if (e.known - e.inFlight - e.ordered <= 0) return false;
    e.inFlight += 1;
    return true;
  }

  async release(key: string, ordered: boolean): Promise<void> {
    const e = this.entries.get(key);
    if (!e) return;
    e.inFlight = Math.max(0, e.inFlight - 1);
    if (ordered) e.ordered += 1;
    if (e.inFlight === 0 && e.ordered === 0) this.entries.delete(key);
  }

  private evict(): void {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.maxEntries * 0.9) break;
      if (e.inFlight === 0) this.entries.delete(key);
    }
  }
}
