import type { ParsedOffer } from '../partners/mapping.js';
import type { BookCondition, OfferSnapshot } from '../domain/types.js';

/** An in-stock offer seen by a round, with where it came from. */
export interface SeenOffer extends OfferSnapshot {
  fromCache: boolean;
}

/** What a request asks of an offer (SPEC §1 "valid offer"). */
export interface OfferCriteria {
  conditions: readonly BookCondition[];
  currency: string;
  maxTotalCents: number;
}

export function toSeenOffer(sellerId: string, o: ParsedOffer, quotedAt: number, fromCache: boolean): SeenOffer {
  return {
    sellerId,
    offerId: o.offerId,
    condition: o.condition,
    itemCents: o.itemCents,
    shippingCents: o.shippingCents,
    taxCents: o.taxCents,
    feesCents: o.feesCents,
    totalCents: o.totalCents,
    currency: o.currency,
    inventory: o.inventory,
    quotedAt: new Date(quotedAt).toISOString(),
    fromCache,
  };
}

/** Offers this request could take at all: in stock (the round keeps only those), right condition and currency. */
export function matches(o: OfferSnapshot, c: OfferCriteria): boolean {
  return o.currency === c.currency && c.conditions.includes(o.condition) && (o.inventory === null || o.inventory > 0);
}

export function isValid(o: OfferSnapshot, c: OfferCriteria): boolean {
  return matches(o, c) && o.totalCents <= c.maxTotalCents;
}

/**
 * The valid offers, cheapest landed total first (fresh quotes before cached ones at equal
 * totals, since they need no revalidation), and the lowest-total matching offer at any price.
 */
export function evaluate<T extends SeenOffer>(offers: readonly T[], c: OfferCriteria): { valid: T[]; best: T | null } {
  let best: T | null = null;
  const valid: T[] = [];
  for (const o of offers) {
    if (!matches(o, c)) continue;
    if (best === null || o.totalCents < best.totalCents) best = o;
    if (o.totalCents <= c.maxTotalCents) valid.push(o);
  }
  valid.sort((a, b) => a.totalCents - b.totalCents || Number(a.fromCache) - Number(b.fromCache));
  return { valid, best };
}

/** The `condition` a quote asks for: one accepted condition names it, both ask for any. */
export function askedCondition(conditions: readonly BookCondition[]): 'new' | 'used' | 'any' {
  if (conditions.length === 1) return conditions[0] === 'NEW' ? 'new' : 'used';
  return 'any';
}

/** Strips the round's bookkeeping for storage on the request (bestOffer) or an attempt. */
export function snapshot(o: SeenOffer): OfferSnapshot {
  const { fromCache: _fromCache, ...rest } = o;
  return rest;
}
