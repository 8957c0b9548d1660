/**
 * Known inventory per seller offer, so concurrent requests never order more copies than the
 * seller said it has (SPEC §4.2). A reservation is held while an attempt runs and becomes
 * "ordered" or is released. A newer quote replaces the seller's count; orders completed before
 * that quote was asked for are already in it, so only later ones (and those in flight) still count.
 * `quotedAt` is when the quote was asked for, not answered: an answer in flight while an order
 * completed may not reflect it, and is treated as if it did not.
 */
export interface InventoryGuard {
  /** Takes one unit of `key` against `known` (null: unknown, never limited). False when none is left. */
  reserve(key: string, known: number | null, quotedAt: number): Promise<boolean>;
  /** Ends a reservation: `ordered` keeps the unit taken, otherwise it returns to the pool. */
  release(key: string, ordered: boolean): Promise<void>;
}

/** The embedded default keeps counts in this process; several instances need a shared store. */

interface Entry {
  quotedAt: number;
  known: number;
  inFlight: number;
  /** When each order counted against `known` completed. */
  ordered: number[];
}

export class MemoryInventoryGuard implements InventoryGuard {
  private readonly entries = new Map<string, Entry>();

  /** @param maxEntries beyond it the oldest idle entries go: their quotes are long stale anyway. */
  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  async reserve(key: string, known: number | null, quotedAt: number): Promise<boolean> {
    if (known === null) return true;
    let e = this.entries.get(key);
    if (!e) {
      e = { quotedAt, known, inFlight: 0, ordered: [] };
      this.entries.set(key, e);
      if (this.entries.size > this.maxEntries) this.evict();
    } else if (quotedAt > e.quotedAt) {
      e.quotedAt = quotedAt;
      e.known = known;
      e.ordered = e.ordered.filter((at) => at > quotedAt);
    }
    if (e.known - e.inFlight - e.ordered.length <= 0) return false;
    e.inFlight += 1;
    return true;
  }

  async release(key: string, ordered: boolean): Promise<void> {
    const e = this.entries.get(key);
    if (!e) return;
    e.inFlight = Math.max(0, e.inFlight - 1);
    if (ordered) e.ordered.push(this.now());
    if (e.inFlight === 0 && e.ordered.length === 0) this.entries.delete(key);
  }

  private evict(): void {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.maxEntries * 0.9) break;
      if (e.inFlight === 0) this.entries.delete(key);
    }
  }
}
