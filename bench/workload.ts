import { CATALOG } from '../src/partners/sandbox/catalog.js';
import { type Rng, createRng } from '../src/partners/sandbox/random.js';
import { type PriceTable, bestTotal } from './lib/sandbox.js';

export type Condition = 'NEW' | 'USED';
export type Expected = 'ORDERED' | 'QUOTED' | 'OUT_OF_STOCK';

/** One purchase request the load generator will send, and what the sandbox's prices say should become of it. */
export interface WorkItem {
  seq: number;
  user: number;
  isbn: string;
  conditions: Condition[];
  maxTotalCents: number;
  /** The lowest landed total any seller offers in the accepted conditions (null: nobody has it). */
  bestTotalCents: number | null;
  kind: 'affordable' | 'overBudget' | 'outOfPrint';
  expected: Expected;
}

export interface WorkloadMix {
  /** Zipf exponent of book popularity (rank r is asked with weight 1/r^s). */
  zipfS: number;
  /** Share of requests for books nobody carries (OUT_OF_STOCK). */
  outOfPrint: number;
  /** Share of requests whose budget is under every offer (QUOTED). */
  overBudget: number;
  /** Share of requests that accept used copies as well as new ones. */
  usedOk: number;
  /** Affordable budgets are the best total times a factor drawn from this range. */
  headroom: [number, number];
  /** Over-budget budgets are the best total times a factor drawn from this range. */
  shortfall: [number, number];
}

export const DEFAULT_MIX: WorkloadMix = {
  zipfS: 1.1,
  outOfPrint: 0.05,
  overBudget: 0.12,
  usedOk: 0.2,
  headroom: [1.0, 1.5],
  shortfall: [0.7, 0.97],
};

/**
 * A realistic, seeded stream of purchase requests: book popularity skewed (Zipf over a seeded
 * ranking of the in-print catalog, scarce lower-tier books included), mixed budgets (most
 * affordable, some over budget, some for out-of-print books), some accepting used copies.
 */
export class Workload {
  private readonly rng: Rng;
  private readonly ranked: string[];
  private readonly cumulative: number[];
  private readonly outOfPrint: string[];
  private seq = 0;

  constructor(
    private readonly table: PriceTable,
    seed: number,
    private readonly users: number,
    readonly mix: WorkloadMix = DEFAULT_MIX,
  ) {
    this.rng = createRng(seed);
    this.ranked = CATALOG.filter((b) => !b.outOfPrint).map((b) => b.isbn);
    // Seeded Fisher–Yates: which books are popular is part of the seed, not the catalog order.
    for (let i = this.ranked.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [this.ranked[i], this.ranked[j]] = [this.ranked[j]!, this.ranked[i]!];
    }
    let total = 0;
    this.cumulative = this.ranked.map((_, r) => (total += 1 / (r + 1) ** mix.zipfS));
    this.cumulative = this.cumulative.map((c) => c / total);
    this.outOfPrint = CATALOG.filter((b) => b.outOfPrint).map((b) => b.isbn);
  }

  /** Share of requests the most popular book gets. */
  topShare(): number {
    return this.cumulative[0] ?? 0;
  }

  next(): WorkItem {
    const seq = this.seq++;
    const user = seq % this.users;
    const conditions: Condition[] = this.rng() < this.mix.usedOk ? ['NEW', 'USED'] : ['NEW'];
    const roll = this.rng();
    if (roll < this.mix.outOfPrint) {
      const isbn = this.outOfPrint[Math.floor(this.rng() * this.outOfPrint.length)]!;
      return { seq, user, isbn, conditions, maxTotalCents: 2_000 + Math.floor(this.rng() * 4_000), bestTotalCents: null, kind: 'outOfPrint', expected: 'OUT_OF_STOCK' };
    }
    const isbn = this.pickBook();
    const best = bestTotal(this.table, isbn, conditions);
    if (best === null) {
      // Nobody lists this book in the accepted conditions: as good as out of print for this request.
      return { seq, user, isbn, conditions, maxTotalCents: 5_000, bestTotalCents: null, kind: 'outOfPrint', expected: 'OUT_OF_STOCK' };
    }
    if (roll < this.mix.outOfPrint + this.mix.overBudget) {
      const [lo, hi] = this.mix.shortfall;
      const maxTotalCents = Math.max(1, Math.min(best - 1, Math.floor(best * (lo + (hi - lo) * this.rng()))));
      return { seq, user, isbn, conditions, maxTotalCents, bestTotalCents: best, kind: 'overBudget', expected: 'QUOTED' };
    }
    const [lo, hi] = this.mix.headroom;
    const maxTotalCents = Math.ceil(best * (lo + (hi - lo) * this.rng()));
    return { seq, user, isbn, conditions, maxTotalCents, bestTotalCents: best, kind: 'affordable', expected: 'ORDERED' };
  }

  private pickBook(): string {
    const u = this.rng();
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return this.ranked[lo]!;
  }
}

/** A valid ISBN-13 that no catalog book has: every seller answers "not carried" (fan-out-heavy work). */
export function unknownIsbn(rng: Rng): string {
  const known = new Set(CATALOG.map((b) => b.isbn));
  for (;;) {
    let digits = '979';
    for (let i = 0; i < 9; i++) digits += Math.floor(rng() * 10);
    let sum = 0;
    for (let i = 0; i < 12; i++) sum += Number(digits[i]) * (i % 2 === 0 ? 1 : 3);
    const isbn = digits + ((10 - (sum % 10)) % 10);
    if (!known.has(isbn)) return isbn;
  }
}

export const ADDRESS = { name: 'Bench User', line1: '1 Loopback Way', city: 'Localhost', postalCode: '12345', country: 'US' };
