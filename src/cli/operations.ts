import type { BookCondition, RequestStatus } from '../domain/types.js';

/** The operations the CLI sends, and the shapes it reads back (the served schema's names). */

const TRACKED = `
  id status revision createdAt updatedAt expiresAt failureReason
  book { isbn title author }
  maxTotalPrice { cents currency }
  bestOffer { condition total { cents currency } seller { id name } }
  order { sellerOrderId total { cents currency } deliveryEta placedAt seller { id name } }
  events { id at type status message revision }
`;

export const CREATE = `mutation BuyCreate($input: CreatePurchaseRequestInput!) {
  createPurchaseRequest(input: $input) {
    purchaseRequest { ${TRACKED} }
    userErrors { field message code }
  }
}`;

export const GET = `query BuyGet($id: ID!) { purchaseRequest(id: $id) { ${TRACKED} } }`;

/** afterRevision: a reconnect resumes after the last state seen, so nothing is missed or repeated. */
export const WATCH = `subscription BuyWatch($id: ID!, $after: Int) {
  purchaseRequestUpdated(id: $id, afterRevision: $after) { ${TRACKED} }
}`;

export interface Money {
  cents: number;
  currency: string;
}

export interface TrackedEvent {
  id: string;
  at: string;
  type: string;
  status: RequestStatus;
  message: string | null;
  revision: number;
}

export interface TrackedRequest {
  id: string;
  status: RequestStatus;
  revision: number;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  failureReason: string | null;
  book: { isbn: string | null; title: string | null; author: string | null };
  maxTotalPrice: Money;
  bestOffer: { condition: BookCondition; total: Money; seller: { id: string; name: string } } | null;
  order: { sellerOrderId: string; total: Money; deliveryEta: string | null; placedAt: string; seller: { id: string; name: string } } | null;
  events: TrackedEvent[];
}

export interface UserError {
  field: string[] | null;
  message: string;
  code: string;
}
