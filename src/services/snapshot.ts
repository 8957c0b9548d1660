import type { RequestRow } from '../db/schema.js';

/**
 * What clients may see of a request, and what change notifications carry between instances:
 * the row without the payment token, the address or the engine's scheduling columns.
 */
export type RequestSnapshot = Omit<
  RequestRow,
  'paymentToken' | 'shippingAddress' | 'nextRunAt' | 'leaseOwner' | 'leaseExpiresAt' | 'watchCount'
>;

/** A snapshot as JSON-safe data, the form it travels in over pub/sub. */
export type SnapshotMessage = Omit<RequestSnapshot, 'expiresAt' | 'createdAt' | 'updatedAt'> & {
  expiresAt: string;
  createdAt: string;
  updatedAt: string;
};

export function toSnapshotMessage(row: RequestRow | RequestSnapshot): SnapshotMessage {
  return {
    id: row.id,
    seq: row.seq,
    userId: row.userId,
    status: row.status,
    revision: row.revision,
    isbn: row.isbn,
    title: row.title,
    author: row.author,
    bookKey: row.bookKey,
    conditions: row.conditions,
    maxTotalCents: row.maxTotalCents,
    currency: row.currency,
    expiresAt: row.expiresAt.toISOString(),
    bestOffer: row.bestOffer,
    orderDetails: row.orderDetails,
    failureReason: row.failureReason,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function fromSnapshotMessage(m: SnapshotMessage): RequestSnapshot {
  return { ...m, expiresAt: new Date(m.expiresAt), createdAt: new Date(m.createdAt), updatedAt: new Date(m.updatedAt) };
}
