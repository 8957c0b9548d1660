/**
 * The payment provider, as the engine sees it. Every call carries the attempt's idempotency
 * key, so repeating one (after a timeout, a crash, a retry) never charges twice. A call that
 * throws failed in transit: its effect is unknown, and the caller repeats it with the same key —
 * except a `PaymentConflictError`, which is the provider's definitive answer (a 409: the key is
 * taken by another amount, the payment is in a state that forbids the call) and is never repeated.
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

/**
 * A refusal that repeating will not change — the same key with a different amount, capturing a
 * voided payment: a bug or a conflict, never transient. Callers treat it as a definitive outcome.
 */
export class PaymentConflictError extends Error {
  override name = 'PaymentConflictError';
}
