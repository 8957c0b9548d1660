import type { OfferSnapshot } from '../../src/domain/types.js';

/** Inputs and selections shared by the end-to-end suites. */

export const REQUEST_FIELDS = `
  id status revision conditions failureReason createdAt updatedAt expiresAt
  book { isbn title author }
  maxTotalPrice { cents currency }
  bestOffer { total { cents } }
  order { sellerOrderId }
  events { id at type status message revision }
`;

export const CREATE = `mutation Create($input: CreatePurchaseRequestInput!) {
  createPurchaseRequest(input: $input) {
    purchaseRequest { ${REQUEST_FIELDS} }
    userErrors { field message code }
  }
}`;

export const UPDATE = `mutation Update($id: ID!, $input: UpdatePurchaseRequestInput!) {
  updatePurchaseRequest(id: $id, input: $input) {
    purchaseRequest { ${REQUEST_FIELDS} }
    userErrors { field message code }
  }
}`;

export const CANCEL = `mutation Cancel($id: ID!) {
  cancelPurchaseRequest(id: $id) {
    purchaseRequest { ${REQUEST_FIELDS} }
    userErrors { field message code }
  }
}`;

export const GET = `query Get($id: ID!) { purchaseRequest(id: $id) { ${REQUEST_FIELDS} } }`;

export const WATCH = `subscription Watch($id: ID!, $after: Int) {
  purchaseRequestUpdated(id: $id, afterRevision: $after) { id status revision maxTotalPrice { cents } events { type revision } }
}`;

let counter = 0;

/** A valid create input; override any part. Keys are unique per call unless given. */
export function createInput(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  counter += 1;
  return {
    idempotencyKey: `key-${process.pid}-${Date.now()}-${counter}`,
    book: { isbn: '9781449373320' },
    maxTotalPrice: { cents: 4500, currency: 'USD' },
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    shippingAddress: { name: 'Ada Lovelace', line1: '1 Main St', city: 'Springfield', postalCode: '12345', country: 'US' },
    paymentToken: 'tok_visa',
    ...overrides,
  };
}

/** A price in US cents, as the API takes and shows it. */
export const usd = (cents: number) => ({ cents, currency: 'USD' });

/** In-print books the sandbox catalog carries (the first of the chaos and overload suites' lists). */
export const IN_PRINT_BOOKS = [
  '9780141439518',
  '9780451524935',
  '9780061120084',
  '9780743273565',
  '9780142437247',
  '9780316769488',
  '9780060850524',
  '9780547928227',
  '9781451673319',
  '9780141441146',
  '9780679734505',
  '9780307387899',
  '9780441172719',
];

/** An offer as stored on a request or an attempt: a new copy at $10.00, all in, from seller s1. */
export function offerSnapshot(overrides: Partial<OfferSnapshot> = {}): OfferSnapshot {
  return {
    sellerId: 's1',
    offerId: 'o1',
    condition: 'NEW',
    itemCents: 1000,
    shippingCents: 0,
    taxCents: 0,
    feesCents: 0,
    totalCents: 1000,
    currency: 'USD',
    inventory: null,
    quotedAt: '2030-01-01T00:00:00.000Z',
    ...overrides,
  };
}
