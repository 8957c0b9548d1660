import { createHash } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { Db, Executor } from '../db/client.js';
import { sandboxPaymentCalls, sandboxPayments } from '../db/schema.js';
import type { Clock } from '../engine/clock.js';
import { type AuthorizeRequest, type AuthorizeResult, type PaymentGateway, type PaymentRecord, PaymentConflictError } from './gateway.js';

/**
 * The built-in payment provider for the embedded default and tests (API.md): `tok_declined` is
 * declined, any other `tok_…` authorises. Deterministic, idempotent per key, and it keeps its
 * books in the database — one row per key plus a log of every call — so "exactly one capture"
 * can be checked after crashes and restarts.
 */
export class SandboxPaymentGateway implements PaymentGateway {
  constructor(private readonly db: Db, private readonly clock: Clock) {}

  async authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
    return this.db.transaction(async (tx) => {
      const existing = await lockPayment(tx, req.key);
      if (existing) {
        await this.log(tx, req.key, 'authorize', req.amountCents, existing.state, false);
        return existing.state === 'declined'
          ? { status: 'declined', reason: existing.declineReason ?? 'declined' }
          : { status: 'authorized', authorizationId: existing.authorizationId };
      }
      const now = this.clock.now();
      const declined = req.token === 'tok_declined';
      const authorizationId = `auth_${createHash('sha256').update(req.key).digest('hex').slice(0, 20)}`;
      await tx.insert(sandboxPayments).values({
        key: req.key,
        authorizationId,
        amountCents: req.amountCents,
        currency: req.currency,
        state: declined ? 'declined' : 'authorized',
        declineReason: declined ? 'card declined' : null,
        createdAt: now,
        updatedAt: now,
      });
      await this.log(tx, req.key, 'authorize', req.amountCents, declined ? 'declined' : 'authorized', true);
      return declined ? { status: 'declined', reason: 'card declined' } : { status: 'authorized', authorizationId };
    });
  }

  async capture(req: { key: string; amountCents: number }): Promise<{ status: 'captured' }> {
    return this.db.transaction(async (tx) => {
      const p = await lockPayment(tx, req.key);
      if (!p) throw new PaymentConflictError(`capture of unknown payment ${req.key}`);
      if (p.state === 'captured') {
        await this.log(tx, req.key, 'capture', req.amountCents, 'captured', false);
        return { status: 'captured' as const };
      }
      if (p.state !== 'authorized') throw new PaymentConflictError(`cannot capture a ${p.state} payment`);
      if (req.amountCents > p.amountCents) throw new PaymentConflictError('capture exceeds the authorised amount');
      await tx.update(sandboxPayments).set({ state: 'captured', updatedAt: this.clock.now() }).where(eq(sandboxPayments.key, req.key));
      await this.log(tx, req.key, 'capture', req.amountCents, 'captured', true);
      return { status: 'captured' as const };
    });
  }

  async void(req: { key: string }): Promise<{ status: 'voided' }> {
    return this.db.transaction(async (tx) => {
      const p = await lockPayment(tx, req.key);
      if (!p || p.state === 'voided' || p.state === 'declined') {
        await this.log(tx, req.key, 'void', null, p ? p.state : 'none', false);
        return { status: 'voided' as const };
      }
      if (p.state === 'captured') throw new PaymentConflictError('cannot void a captured payment');
      await tx.update(sandboxPayments).set({ state: 'voided', updatedAt: this.clock.now() }).where(eq(sandboxPayments.key, req.key));
      await this.log(tx, req.key, 'void', null, 'voided', true);
      return { status: 'voided' as const };
    });
  }

  async lookup(key: string): Promise<PaymentRecord | null> {
    const [p] = await this.db.select().from(sandboxPayments).where(eq(sandboxPayments.key, key));
    return p ? { key: p.key, authorizationId: p.authorizationId, amountCents: p.amountCents, currency: p.currency, state: p.state } : null;
  }

  private async log(
    ex: Executor,
    key: string,
    operation: 'authorize' | 'capture' | 'void',
    amountCents: number | null,
    result: string,
    effective: boolean,
  ): Promise<void> {
    await ex.insert(sandboxPaymentCalls).values({ key, operation, amountCents, result, effective, at: this.clock.now() });
  }
}

async function lockPayment(tx: Executor, key: string) {
  const [p] = await tx.select().from(sandboxPayments).where(eq(sandboxPayments.key, key)).for('update');
  return p ?? null;
}
