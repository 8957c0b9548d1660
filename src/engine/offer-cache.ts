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
  /**
   * Every fresh answer for a book that serves `condition`, by seller (as `get` would return it):
   * a round reads the answers that exist, not one lookup per registered seller.
   */
  answers(bookKey: string, condition: 'new' | 'used' | 'any', now: number): ReadonlyMap<string, CachedQuote>;
  /** Stores an answer; returns true when it differs from the previous one (prices, stock). */
  set(bookKey: string, sellerId: string, quote: CachedQuote, scope?: SetScope): boolean;
  /** Forgets a seller's answer for a book (after it refused an order on it), on every instance. */
  invalidate(bookKey: string, sellerId: string): void;
  size(): number;
}

interface Entry {
  bookKey: string;
  sellerId: string;
  quote: CachedQuote;
}

/** In-process and bounded; the oldest entries go first. Indexed by book as well, for rounds. */
export class MemoryOfferCache implements OfferCache {
  /** By `book|seller|condition`, oldest first. */
  private readonly entries = new Map<string, Entry>();
  /** The same entries, grouped by book. */
  private readonly byBook = new Map<string, Map<string, Entry>>();

  constructor(private readonly maxEntries = 100_000) {}

  get(bookKey: string, sellerId: string, condition: 'new' | 'used' | 'any', now: number): CachedQuote | null {
    // An answer to exactly this question, or to 'any' (which covers new and used alike).
    for (const asked of condition === 'any' ? (['any'] as const) : ([condition, 'any'] as const)) {
      const entry = this.entries.get(`${bookKey}|${sellerId}|${asked}`);
      if (entry && entry.quote.expiresAt > now) return entry.quote;
    }
    return null;
  }

  answers(bookKey: string, condition: 'new' | 'used' | 'any', now: number): ReadonlyMap<string, CachedQuote> {
    const found = new Map<string, CachedQuote>();
    const book = this.byBook.get(bookKey);
    if (!book) return found;
    for (const { sellerId, quote } of book.values()) {
      if (quote.expiresAt <= now || (quote.condition !== condition && quote.condition !== 'any')) continue;
      // As `get`: an answer to exactly this question before one to 'any'.
      if (quote.condition === 'any' && found.has(sellerId)) continue;
      found.set(sellerId, quote);
    }
    return found;
  }

  /**
   * Answers are kept per asked condition, so requests for new and for used copies of one book
   * never overwrite each other's entries (and never wake each other as a "change").
   */
  set(bookKey: string, sellerId: string, quote: CachedQuote): boolean {
    const key = `${bookKey}|${sellerId}|${quote.condition}`;
    const previous = this.entries.get(key);
    this.remove(key);
    if (quote.expiresAt > quote.quotedAt) {
      const entry = { bookKey, sellerId, quote };
      this.entries.set(key, entry);
      let book = this.byBook.get(bookKey);
      if (!book) this.byBook.set(bookKey, (book = new Map()));
      book.set(key, entry);
    }
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
    }
    return !previous || !sameOffers(previous.quote.offers, quote.offers);
  }

  invalidate(bookKey: string, sellerId: string): void {
    for (const asked of ['new', 'used', 'any']) this.remove(`${bookKey}|${sellerId}|${asked}`);
  }

  size(): number {
    return this.entries.size;
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    const book = this.byBook.get(entry.bookKey);
    book?.delete(key);
    if (book?.size === 0) this.byBook.delete(entry.bookKey);
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
