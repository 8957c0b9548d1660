/** Domain types shared by the engine, the database layer and the resolvers. */

export const REQUEST_STATUSES = [
  'PENDING',
  'SEARCHING',
  'QUOTED',
  'ORDERING',
  'ORDERED',
  'EXPIRED',
  'OUT_OF_STOCK',
  'FAILED',
  'CANCELED',
] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

export const BOOK_CONDITIONS = ['NEW', 'USED'] as const;
export type BookCondition = (typeof BOOK_CONDITIONS)[number];

export interface Address {
  name: string;
  line1: string;
  line2: string | null;
  city: string;
  region: string | null;
  postalCode: string;
  country: string;
}

export interface Book {
  isbn: string | null;
  title: string | null;
  author: string | null;
}

/** An offer as it was quoted, kept on the request (best offer) and on attempts. */
export interface OfferSnapshot {
  sellerId: string;
  offerId: string | null;
  condition: BookCondition;
  itemCents: number;
  shippingCents: number;
  taxCents: number;
  feesCents: number;
  totalCents: number;
  currency: string;
  inventory: number | null;
  quotedAt: string;
  /**
   * On an attempt's offer only: ordered on a cached price with no fresh quote first, the seller's
   * own price check at order time standing in for one (a seller registered with orderChecksPrice).
   */
  priceCheckedAtOrder?: true;
}

export interface OrderDetails {
  sellerId: string;
  sellerOrderId: string;
  totalCents: number;
  currency: string;
  deliveryEta: string | null;
  placedAt: string;
}

export type Role = 'user' | 'admin';

/** Who is calling: resolved from the bearer token by the transport, checked by the engine. */
export interface Viewer {
  id: string;
  role: Role;
}

/**
 * An order attempt's progress. Live states each name the next step to take:
 * authorizing → ordering → capturing → succeeded, with unknown (order outcome not known:
 * retry with the same key or ask the seller) and voiding → failed on a definite rejection.
 */
export const ATTEMPT_STATES = ['authorizing', 'ordering', 'unknown', 'capturing', 'voiding', 'succeeded', 'failed'] as const;
export type AttemptState = (typeof ATTEMPT_STATES)[number];
export type PaymentState = 'none' | 'authorized' | 'captured' | 'voided' | 'declined';
