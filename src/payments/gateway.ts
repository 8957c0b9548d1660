/**
 * The payment provider, as the engine sees it. Every call carries the attempt's idempotency
 * key, so repeating one (after a timeout, a crash, a retry) never charges twice. A call that
 * throws failed in transit: its effect is unknown, and the caller repeats it with the same key.
 */
export interface PaymentGateway {
  authorize(req: AuthorizeRequest): Promise<AuthorizeResult>;
  capture(req: { key: string; amountCents: number }): Promise<{ status: 'captured' }>;
  void(req: { key: string }): Promise<{ status: 'voided' }>;
  lookup(key: string): Promise<PaymentRecord | null>;
}

export interface AuthorizeRequest {
  key: string;
  amountCents: number;
  currency: string;
  token: string;
}

export type AuthorizeResult = { status: 'authorized'; authorizationId: string } | { status: 'declined'; reason: string };

export interface PaymentRecord {
  key: string;
  authorizationId: string;
  amountCents: number;
  currency: string;
  state: 'authorized' | 'captured' | 'voided' | 'declined';
}

/** A refusal that repeating will not change (capturing a voided payment, say): a bug or a conflict, never transient. */
export class PaymentConflictError extends Error {
  override name = 'PaymentConflictError';
}
