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

/** How a refusal names the offer it was about: the same seller, offer and price. */
function refusalKey(o: Pick<OfferSnapshot, 'sellerId' | 'offerId' | 'totalCents'>): string {
  return `${o.sellerId}|${o.offerId ?? ''}|${o.totalCents}`;
}

/** How a lost copy names its offer: one seller's stock of it, whatever the price. */
function stockKey(o: Pick<OfferSnapshot, 'sellerId' | 'offerId' | 'condition'>): string {
  return `${o.sellerId}|${o.condition}|${o.offerId ?? ''}`;
}

/** A seller that refused this many of a request's orders is not offered another. */
const REFUSALS_PER_SELLER = 2;

/**
 * What one request may no longer take (SPEC §3, "Takeable, not just valid"): offers a seller
 * refused it (and, after repeated refusals, that seller altogether), and offers it could not
 * take this time round — a last copy gone to another request, a cached price revalidated away,
 * a seller that stopped taking orders.
 */
export class OfferExclusions {
  private readonly refused = new Set<string>();
  private readonly refusalsBySeller = new Map<string, number>();
  private readonly lost = new Set<string>();

  /**
   * From the request's finished attempts: every refused one counts, but for a refused cached
   * price that was ordered on unquoted. That refusal said the price had moved, and the seller's
   * answer was dropped from the cache with it: the next search asks the seller afresh.
   */
  static fromAttempts(attempts: readonly { state: string; paymentState: string; sellerId: string; offer: OfferSnapshot }[]): OfferExclusions {
    const x = new OfferExclusions();
    for (const a of attempts) if (a.state === 'failed' && a.paymentState !== 'declined' && !a.offer.priceCheckedAtOrder) x.refuse(a.offer);
    return x;
  }

  refuse(o: OfferSnapshot): void {
    this.refused.add(refusalKey(o));
    this.refusalsBySeller.set(o.sellerId, (this.refusalsBySeller.get(o.sellerId) ?? 0) + 1);
  }

  /**
   * A cached price ordered on unquoted and refused: most likely the price moved. That offer at
   * that total is not tried again by this claim; the seller's other offers, and this one at its
   * new price, still are, and it does not count towards giving up on the seller.
   */
  refusePrice(o: OfferSnapshot): void {
    this.refused.add(refusalKey(o));
  }

  lose(o: OfferSnapshot): void {
    this.lost.add(stockKey(o));
  }

  /** Offers lost so far: a new loss is a reason to search again at once. */
  get lostCount(): number {
    return this.lost.size;
  }

  /** Refused to this request: not even worth showing as its best offer. */
  readonly refusedOffer = (o: OfferSnapshot): boolean =>
    this.refused.has(refusalKey(o)) || (this.refusalsBySeller.get(o.sellerId) ?? 0) >= REFUSALS_PER_SELLER;

  readonly excludes = (o: OfferSnapshot): boolean =>
    this.refused.has(refusalKey(o)) || this.lost.has(stockKey(o)) || (this.refusalsBySeller.get(o.sellerId) ?? 0) >= REFUSALS_PER_SELLER;
}
