import { money } from './books.js';
import type { RequestStatus } from './types.js';

/**
 * The request event catalogue: every event a request's timeline can hold (`RequestEvent.type`
 * in the schema is a String; these are its values). Each event is built by one named
 * constructor below, so a type and its message are written in one place.
 */
export const REQUEST_EVENT_TYPES = [
  'CREATED',
  'UPDATED',
  'CANCELED',
  'SEARCH_STARTED',
  'QUOTED',
  'OUT_OF_STOCK',
  'BEST_OFFER_CHANGED',
  'EXPIRED',
  'ORDER_STARTED',
  'ORDER_IN_DOUBT',
  'ORDER_UNRESOLVED',
  'ORDER_REFUSED',
  'PAYMENT_DECLINED',
  'ORDERED',
  'FAILED',
] as const;
export type RequestEventType = (typeof REQUEST_EVENT_TYPES)[number];

/** One event as written to a request's timeline (the status and revision come from the write). */
export interface RequestEvent<T extends RequestEventType = RequestEventType> {
  readonly type: T;
  readonly message: string;
  readonly data: Record<string, unknown> | null;
}

/** Why a round starts: the request's first one, or one of the reasons to look again. */
export type SearchReason = { sellers: number } | 'back_in_stock' | 'offers_changed' | 'after_refusals';

/** How a round's sellers answered, kept with its outcome event. */
export interface RoundTally {
  answered: number;
  unanswerable: number;
  failed: number;
  pending: number;
  offers: number;
}

/** The failure reason (and event message) when every seller refused and the deadline has passed. */
export const NO_SELLER_BEFORE_DEADLINE = 'No seller could take the order before the deadline';

interface Named {
  name: string;
}

function event<T extends RequestEventType>(type: T, message: string, data: Record<string, unknown> | null = null): RequestEvent<T> {
  return { type, message, data };
}

export const events = {
  created: () => event('CREATED', 'Request received; waiting for the engine'),

  updated(u: { maxTotalCents?: { from: number; to: number }; expiresAt?: { from: Date; to: Date } }) {
    const parts: string[] = [];
    if (u.maxTotalCents) parts.push(`budget ${u.maxTotalCents.from} → ${u.maxTotalCents.to} cents`);
    if (u.expiresAt) parts.push(`deadline ${u.expiresAt.from.toISOString()} → ${u.expiresAt.to.toISOString()}`);
    return event('UPDATED', `Updated: ${parts.join('; ')}`, {
      maxTotalCents: u.maxTotalCents?.to ?? null,
      expiresAt: u.expiresAt?.to.toISOString() ?? null,
    });
  },

  canceled: () => event('CANCELED', 'Canceled by the user'),

  searchStarted(why: SearchReason) {
    if (typeof why === 'object') return event('SEARCH_STARTED', `Asking sellers for offers (${why.sellers} configured)`);
    const messages = {
      back_in_stock: 'The book is available again; checking offers',
      offers_changed: 'Offers changed; checking again',
      after_refusals: 'Looking for another offer after sellers refused the order',
    } as const;
    return event('SEARCH_STARTED', messages[why]);
  },

  /**
   * A round ended without an order: QUOTED or OUT_OF_STOCK, or BEST_OFFER_CHANGED when a
   * QUOTED request stays QUOTED at a new best price. The message is the engine's summary.
   */
  roundEnded(r: { to: 'QUOTED' | 'OUT_OF_STOCK'; from: RequestStatus; message: string; tally: RoundTally }) {
    const type = r.to === 'QUOTED' && r.from === 'QUOTED' ? 'BEST_OFFER_CHANGED' : r.to;
    return event(type, r.message, { ...r.tally });
  },

  expired: (bestOffer: { totalCents: number; currency: string } | null) =>
    event(
      'EXPIRED',
      bestOffer ? `The deadline passed; the best price seen was ${money(bestOffer.totalCents, bestOffer.currency)}` : 'The deadline passed with no order',
    ),

  /**
   * An attempt starts. `shown` is the best offer the user was shown when this one is dearer:
   * that offer is gone (refused, sold out, revalidated away), and the event says so with both prices.
   */
  orderStarted: (o: { seller: Named & { id: string }; totalCents: number; currency: string; shown?: { sellerId: string; totalCents: number } | null }) =>
    event(
      'ORDER_STARTED',
      `Ordering from ${o.seller.name} for ${money(o.totalCents, o.currency)}` +
        (o.shown ? `; the ${money(o.shown.totalCents, o.currency)} offer shown before is no longer available` : ''),
      {
        sellerId: o.seller.id,
        totalCents: o.totalCents,
        ...(o.shown ? { shownSellerId: o.shown.sellerId, shownTotalCents: o.shown.totalCents } : {}),
      },
    ),

  /** The first time an attempt's outcome is unknown: the order is being confirmed. */
  orderInDoubt: (o: { seller: Named; why: string }) => event('ORDER_IN_DOUBT', `Confirming the order with ${o.seller.name}: ${o.why}`),

  /** An attempt still unknown after many tries: flagged for an operator, and still retried. */
  orderUnresolved: (o: { seller: Named; tries: number; why: string }) =>
    event('ORDER_UNRESOLVED', `Still confirming the order with ${o.seller.name} after ${o.tries} tries: ${o.why}`),

  orderRefused: (o: { attemptNo: number; failure: string | null }) =>
    event('ORDER_REFUSED', o.failure ?? 'the seller refused the order', { attemptNo: o.attemptNo }),

  paymentDeclined: (reason: string) => event('PAYMENT_DECLINED', `Payment declined: ${reason}`),

  ordered: (o: { seller: Named; totalCents: number; currency: string; sellerOrderId: string | null }) =>
    event('ORDERED', `Ordered from ${o.seller.name} for ${money(o.totalCents, o.currency)} (order ${o.sellerOrderId})`),

  noSellerBeforeDeadline: () => event('FAILED', NO_SELLER_BEFORE_DEADLINE),
} as const;
