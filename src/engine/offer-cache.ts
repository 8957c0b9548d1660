import type { ParsedOffer } from '../partners/mapping.js';

/** One seller's answer for one book, as cached: its offers, or that it does not carry the book. */
export interface CachedQuote {
  offers: readonly ParsedOffer[];
  /** What was asked for: an answer to 'any' serves every request, 'new'/'used' only the same. */
  condition: 'new' | 'used' | 'any';
  quotedAt: number;
  expiresAt: number;
}

/**
 * Offers per (book, seller), each kept for its seller's TTL, so a round uses a fresh cached answer
 * instead of calling that seller again. In-process and bounded; the oldest entries go first.
 */
export interface OfferCache {
  get(bookKey: string, sellerId: string, condition: 'new' | 'used' | 'any', now: number): CachedQuote | null;
  /** Stores an answer; returns true when it differs from the previous one (prices, stock). */
  set(bookKey: string, sellerId: string, quote: CachedQuote): boolean;
  /** Forgets a seller's answer for a book (after it refused an order on it). */
  invalidate(bookKey: string, sellerId: string): void;
  size(): number;
}

export class MemoryOfferCache implements OfferCache {
  private readonly entries = new Map<string, CachedQuote>();

  constructor(private readonly maxEntries = 100_000) {}

  get(bookKey: string, sellerId: string, condition: 'new' | 'used' | 'any', now: number): CachedQuote | null {
    const entry = this.entries.get(`${bookKey}|${sellerId}`);
    if (!entry || entry.expiresAt <= now) return null;
    return entry.condition === 'any' || entry.condition === condition ? entry : null;
  }

  set(bookKey: string, sellerId: string, quote: CachedQuote): boolean {
    const key = `${bookKey}|${sellerId}`;
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
    this.entries.delete(`${bookKey}|${sellerId}`);
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
