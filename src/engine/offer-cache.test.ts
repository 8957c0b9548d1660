import { describe, expect, it } from 'vitest';
import { type CachedQuote, MemoryOfferCache } from './offer-cache.js';

const quote = (condition: CachedQuote['condition'], totalCents: number, expiresAt = 10_000): CachedQuote => ({
  condition,
  quotedAt: 0,
  expiresAt,
  offers: [{ offerId: `o${totalCents}`, condition: 'NEW', itemCents: totalCents, shippingCents: 0, taxCents: 0, feesCents: 0, totalCents, currency: 'USD', inventory: null, available: true }],
});
const totals = (m: ReadonlyMap<string, CachedQuote>) => Object.fromEntries([...m].map(([id, q]) => [id, q.offers[0]!.totalCents]));

describe('the offer cache, read by book', () => {
  it('gives the fresh answers of a book that serve the condition, as get would, one per seller', () => {
    const cache = new MemoryOfferCache();
    cache.set('book', 'a', quote('any', 100));
    cache.set('book', 'a', quote('new', 90));
    cache.set('book', 'b', quote('used', 50));
    cache.set('book', 'c', quote('any', 70, 5));
    cache.set('other', 'a', quote('any', 1));
    expect(totals(cache.answers('book', 'new', 10))).toEqual({ a: 90 });
    expect(totals(cache.answers('book', 'used', 10))).toEqual({ a: 100, b: 50 });
    expect(totals(cache.answers('book', 'any', 1))).toEqual({ a: 100, c: 70 });
    for (const condition of ['new', 'used', 'any'] as const) {
      for (const [id, q] of cache.answers('book', condition, 10)) expect(cache.get('book', id, condition, 10)).toBe(q);
    }
  });

  it('forgets what is invalidated or evicted', () => {
    const cache = new MemoryOfferCache(2);
    cache.set('book', 'a', quote('any', 100));
    cache.set('book', 'b', quote('any', 200));
    cache.invalidate('book', 'a');
    expect(totals(cache.answers('book', 'any', 0))).toEqual({ b: 200 });
    cache.set('x', 'a', quote('any', 1));
    cache.set('y', 'a', quote('any', 2));
    expect(cache.answers('book', 'any', 0).size).toBe(0);
    expect(cache.size()).toBe(2);
  });

  it('evicts the books written least recently, whole, and within a lone book its oldest answers', () => {
    const cache = new MemoryOfferCache(4);
    cache.set('old', 'a', quote('any', 1));
    cache.set('old', 'b', quote('new', 2));
    cache.set('mid', 'a', quote('any', 3));
    // Written again: 'old' is now the newest book, and 'mid' the one to go.
    cache.set('old', 'c', quote('used', 4));
    cache.set('new', 'a', quote('any', 5));
    expect(cache.size()).toBe(4);
    expect(totals(cache.answers('mid', 'any', 0))).toEqual({});
    expect(totals(cache.answers('old', 'new', 0))).toEqual({ a: 1, b: 2 });
    expect(totals(cache.answers('new', 'any', 0))).toEqual({ a: 5 });
    // One over the bound again: the oldest book goes with all three of its answers.
    cache.set('new', 'b', quote('any', 6));
    expect(cache.size()).toBe(2);
    expect(totals(cache.answers('old', 'used', 0))).toEqual({});
    expect(totals(cache.answers('new', 'any', 0))).toEqual({ a: 5, b: 6 });

    const lone = new MemoryOfferCache(2);
    lone.set('book', 'a', quote('any', 1));
    lone.set('book', 'b', quote('any', 2));
    lone.set('book', 'c', quote('any', 3));
    expect(totals(lone.answers('book', 'any', 0))).toEqual({ b: 2, c: 3 });
  });

  it('says whether an answer changed what was known, and keeps no answer that is stale on arrival', () => {
    const cache = new MemoryOfferCache();
    expect(cache.set('book', 'a', quote('any', 100))).toBe(true);
    expect(cache.set('book', 'a', quote('any', 100))).toBe(false);
    expect(cache.set('book', 'a', quote('any', 90))).toBe(true);
    // A TTL of 0: the previous answer is forgotten and nothing takes its place.
    expect(cache.set('book', 'a', quote('any', 90, 0))).toBe(false);
    expect(cache.get('book', 'a', 'any', 0)).toBeNull();
    expect(cache.size()).toBe(0);
    // Stored per asked condition: an answer for new copies is no change to one for any.
    cache.set('book', 'a', quote('any', 90));
    expect(cache.set('book', 'a', quote('new', 90))).toBe(true);
    expect(cache.size()).toBe(2);
  });
});
