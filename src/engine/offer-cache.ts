import type { ParsedOffer } from '../partners/mapping.js';

/** One seller's answer for one book, as cached: its offers, or that it does not carry the book. */
export interface CachedQuote {
  offers: readonly ParsedOffer[];
  /** What was asked for: an answer to 'any' serves every request, 'new'/'used' only the same. */
  condition: 'new' | 'used' | 'any';
  quotedAt: number;
  expiresAt: number;
  /** The seller cannot answer this query (400/422: a title search it does not support); no offers. */
  unanswerable?: boolean;
}

/**
 * Where an answer stored in the cache goes: to every instance ('fleet', an answer this instance
 * received), or only here ('here', an answer every instance is being told about already, such as
 * a quote callback published to all of them).
 */
export type SetScope = 'fleet' | 'here';

/**
 * Offers per (book, seller), each kept for its seller's TTL, so a round uses a fresh cached answer
 * instead of calling that seller again. Reads are synchronous and local: rounds read it in their
 * hot path. One instance: `MemoryOfferCache`; a fleet: `FleetOfferCache`, which shares every write.
 */
export interface OfferCache {
  get(bookKey: string, sellerId: string, condition: 'new' | 'used' | 'any', now: number): CachedQuote | null;
  /** Stores an answer; returns true when it differs from the previous one (prices, stock). */
  set(bookKey: string, sellerId: string, quote: CachedQuote, scope?: SetScope): boolean;
  /** Forgets a seller's answer for a book (after it refused an order on it), on every instance. */
  invalidate(bookKey: string, sellerId: string): void;
  size(): number;
}

/** In-process and bounded; the oldest entries go first. */
export class MemoryOfferCache implements OfferCache {
  private readonly entries = new Map<string, CachedQuote>();

  constructor(private readonly maxEntries = 100_000) {}

  get(bookKey: string, sellerId: string, condition: 'new' | 'used' | 'any', now: number): CachedQuote | null {
    // An answer to exactly this question, or to 'any' (which covers new and used alike).
    for (const asked of condition === 'any' ? (['any'] as const) : ([condition, 'any'] as const)) {
      const entry = this.entries.get(`${bookKey}|${sellerId}|${asked}`);
      if (entry && entry.expiresAt > now) return entry;
    }
    return null;
  }

  /**
   * Answers are kept per asked condition, so requests for new and for used copies of one book
   * never overwrite each other's entries (and never wake each other as a "change").
   */
  set(bookKey: string, sellerId: string, quote: CachedQuote): boolean {
    const key = `${bookKey}|${sellerId}|${quote.condition}`;
    const previous = this.entries.get(key);
    this.entries.delete(key);
    if (quote.expiresAt > quote.quotedAt) this.entries.set(key, quote);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return !previous || !sameOffers(previous.offers, quote.offers);
  }

  invalidate(bookKey: string, sellerId: string): void {
    for (const asked of ['new', 'used', 'any']) this.entries.delete(`${bookKey}|${sellerId}|${asked}`);
  }

  size(): number {
    return this.entries.size;
  }
}

function sameOffers(a: readonly ParsedOffer[], b: readonly ParsedOffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.totalCents !== y.totalCents || x.available !== y.available || x.condition !== y.condition || (x.inventory ?? -1) > 0 !== (y.inventory ?? -1) > 0) {
      return false;
    }
  }
  return true;
}
