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

type Condition = CachedQuote['condition'];

/** Every condition an answer can be kept under. */
export const ASKED_CONDITIONS: readonly Condition[] = ['new', 'used', 'any'];

/** One book's answers, by asked condition, then by seller. */
interface BookAnswers {
  new: Map<string, CachedQuote> | null;
  used: Map<string, CachedQuote> | null;
  any: Map<string, CachedQuote> | null;
  size: number;
}

/**
 * In-process and bounded; the books written longest ago go first. Kept by book, then condition,
 * then seller: no key is built per answer, so an answer costs about a quarter of what it did under
 * one `book|seller|condition` key (100,000 answers, the default bound: 16 MB of heap, not 41).
 */
export class MemoryOfferCache implements OfferCache {
  /** By book, the book written least recently first. */
  private readonly books = new Map<string, BookAnswers>();
  private entries = 0;

  constructor(private readonly maxEntries = 100_000) {}

  get(bookKey: string, sellerId: string, condition: Condition, now: number): CachedQuote | null {
    const book = this.books.get(bookKey);
    if (!book) return null;
    // An answer to exactly this question, or to 'any' (which covers new and used alike).
    const exact = book[condition]?.get(sellerId);
    if (exact && exact.expiresAt > now) return exact;
    if (condition === 'any') return null;
    const any = book.any?.get(sellerId);
    return any && any.expiresAt > now ? any : null;
  }

  answers(bookKey: string, condition: Condition, now: number): ReadonlyMap<string, CachedQuote> {
    const found = new Map<string, CachedQuote>();
    const book = this.books.get(bookKey);
    if (!book) return found;
    // As `get`: an answer to exactly this question before one to 'any'.
    for (const [sellerId, quote] of book[condition] ?? []) if (quote.expiresAt > now) found.set(sellerId, quote);
    if (condition !== 'any') {
      for (const [sellerId, quote] of book.any ?? []) if (quote.expiresAt > now && !found.has(sellerId)) found.set(sellerId, quote);
    }
    return found;
  }

  /**
   * Answers are kept per asked condition, so requests for new and for used copies of one book
   * never overwrite each other's entries (and never wake each other as a "change").
   */
  set(bookKey: string, sellerId: string, quote: CachedQuote): boolean {
    let book = this.books.get(bookKey);
    const previous = book?.[quote.condition]?.get(sellerId);
    if (previous) this.drop(bookKey, book!, quote.condition, sellerId);
    if (quote.expiresAt > quote.quotedAt) {
      book = this.books.get(bookKey);
      if (book) this.books.delete(bookKey);
      else book = { new: null, used: null, any: null, size: 0 };
      // Written now: the book moves to the back of the eviction order.
      this.books.set(bookKey, book);
      (book[quote.condition] ??= new Map()).set(sellerId, quote);
      book.size += 1;
      this.entries += 1;
    }
    this.evict();
    return !previous || !sameOffers(previous.offers, quote.offers);
  }

  invalidate(bookKey: string, sellerId: string): void {
    const book = this.books.get(bookKey);
    if (!book) return;
    for (const condition of ASKED_CONDITIONS) this.drop(bookKey, book, condition, sellerId);
  }

  size(): number {
    return this.entries;
  }

  private drop(bookKey: string, book: BookAnswers, condition: Condition, sellerId: string): void {
    const answers = book[condition];
    if (!answers?.delete(sellerId)) return;
    if (answers.size === 0) book[condition] = null;
    book.size -= 1;
    this.entries -= 1;
    if (book.size === 0) this.books.delete(bookKey);
  }

  /** Whole books, oldest first; within the last book left, its answers one by one. */
  private evict(): void {
    while (this.entries > this.maxEntries) {
      const [bookKey, book] = this.books.entries().next().value!;
      if (this.books.size > 1) {
        this.books.delete(bookKey);
        this.entries -= book.size;
        continue;
      }
      for (const condition of ASKED_CONDITIONS) {
        const oldest = book[condition]?.keys().next().value;
        if (oldest !== undefined) {
          this.drop(bookKey, book, condition, oldest);
          break;
        }
      }
    }
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
