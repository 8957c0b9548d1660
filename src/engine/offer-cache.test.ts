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
});
