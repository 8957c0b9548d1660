/**
 * What a partner's HTTP status means, per endpoint (API.md "Quote response mapping" and "Order
 * response mapping and outcomes"). The connector and the order-callback path read the same sets,
 * so a synchronous answer and the same answer posted later by callback mean the same thing.
 */

/** Any endpoint of an asynchronous partner: accepted now, the result comes by callback. */
export const PENDING_STATUS = 202;

/** Quote: the seller does not carry the book. */
export const QUOTE_NOT_CARRIED_STATUS = 404;

/**
 * Quote: the seller cannot answer this query (a title search it does not support, an identifier
 * it rejects). An answer to what the user asked, not a fault of the seller.
 */
export const QUOTE_UNANSWERABLE_STATUSES: ReadonlySet<number> = new Set([400, 422]);

/** Order: definitely not placed (out of stock, price changed…). */
export const ORDER_REJECTED_STATUSES: ReadonlySet<number> = new Set([409, 410, 422]);

/** Order status: the seller has no such order. */
export const ORDER_NOT_PLACED_STATUS = 404;

export function isSuccess(status: number): boolean {
  return status >= 200 && status <= 299;
}

export function isQuoteUnanswerable(status: number): boolean {
  return QUOTE_UNANSWERABLE_STATUSES.has(status);
}

export function isOrderRejected(status: number): boolean {
  return ORDER_REJECTED_STATUSES.has(status);
}
