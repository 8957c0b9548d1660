import { createHash } from 'node:crypto';
import { type SQL, eq, sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../db/client.js';
import { sandboxPayments } from '../db/schema.js';
import type { Clock } from '../domain/clock.js';
import { type AuthorizeRequest, type AuthorizeResult, type PaymentGateway, type PaymentRecord, PaymentConflictError } from './gateway.js';

/**
 * The built-in payment provider for the embedded default and tests (API.md): `tok_declined` is
 * declined, any other `tok_…` authorises. Deterministic, idempotent per key, and it keeps its
 * books in the database — one row per key plus a log of every call — so "exactly one capture"
 * can be checked after crashes and restarts.
 */
export class SandboxPaymentGateway implements PaymentGateway {
  constructor(private readonly db: Db, private readonly clock: Clock) {}

  // Each operation is one statement (data-modifying CTEs): the payment row and the call log are
  // written atomically without a transaction's extra round trips.

  async authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
    const now = this.clock.now().toISOString();
    const declined = req.token === 'tok_declined';
    const authorizationId = `auth_${createHash('sha256').update(req.key).digest('hex').slice(0, 20)}`;
    const state = declined ? 'declined' : 'authorized';
    const reason = declined ? 'card declined' : null;
    const rows = rowsOf<{ state: string; authorization_id: string; decline_reason: string | null; conflict: boolean; amount_cents: number; currency: string }>(
      await this.db.execute(sql`
        with ins as (
          insert into sandbox_payments (key, authorization_id, amount_cents, currency, state, decline_reason, created_at, updated_at)
          values (${req.key}, ${authorizationId}, ${req.amountCents}, ${req.currency}, ${state}, ${reason}, ${now}::timestamptz, ${now}::timestamptz)
          on conflict (key) do nothing
          returning state, authorization_id, decline_reason, amount_cents, currency, true as fresh
        ), cur as (
          select state, authorization_id, decline_reason, amount_cents, currency, false as fresh from sandbox_payments where key = ${req.key}
        ), res as (
          select *, (amount_cents <> ${req.amountCents}::int or currency <> ${req.currency}) as conflict
          from (select * from ins union all select * from cur where not exists (select 1 from ins)) r
        ), log as (
          insert into sandbox_payment_calls (key, operation, amount_cents, result, effective, at)
          select ${req.key}, 'authorize', ${req.amountCents}, case when conflict then 'conflict' else state end, fresh, ${now}::timestamptz from res
        )
        select state, authorization_id, decline_reason, conflict, amount_cents, currency from res`),
    );
    const r = rows[0];
    // A concurrent first authorisation with the same key is not visible to this statement yet.
    if (!r) throw new Error('payment is being authorised concurrently; retry');
    // The same key for another amount is a different payment: repeating will never make it this one.
    if (r.conflict) {
      throw new PaymentConflictError(`key ${req.key} already authorised ${r.amount_cents} ${r.currency}, not ${req.amountCents} ${req.currency}`);
    }
    return r.state === 'declined'
      ? { status: 'declined', reason: r.decline_reason ?? 'declined' }
      : { status: 'authorized', authorizationId: r.authorization_id };
  }

  async capture(req: { key: string; amountCents: number }): Promise<{ status: 'captured' }> {
    const result = await this.transition(req.key, 'capture', req.amountCents, 'captured', sql`state = 'authorized' and amount_cents >= ${req.amountCents}`);
    if (result.done || result.state === 'captured') return { status: 'captured' };
    throw new PaymentConflictError(result.state === null ? `capture of unknown payment ${req.key}` : `cannot capture a ${result.state} payment for ${req.amountCents}`);
  }

  async void(req: { key: string }): Promise<{ status: 'voided' }> {
    const result = await this.transition(req.key, 'void', null, 'voided', sql`state = 'authorized'`);
    if (result.state === 'captured') throw new PaymentConflictError('cannot void a captured payment');
    return { status: 'voided' };
  }

  /** Moves a payment to `to` when `allowed` holds, logging the call either way. */
  private async transition(
    key: string,
    operation: 'capture' | 'void',
    amountCents: number | null,
    to: 'captured' | 'voided',
    allowed: SQL,
  ): Promise<{ done: boolean; state: string | null }> {
    const now = this.clock.now().toISOString();
    const rows = rowsOf<{ done: boolean; state: string | null }>(
      await this.db.execute(sql`
        with upd as (
          update sandbox_payments set state = ${to}, updated_at = ${now}::timestamptz where key = ${key} and ${allowed} returning state
        ), cur as (
          select state from sandbox_payments where key = ${key}
        ), log as (
          insert into sandbox_payment_calls (key, operation, amount_cents, result, effective, at)
          select ${key}, ${operation}, ${amountCents}::int,
            coalesce((select state from upd), (select state from cur), 'none'), exists (select 1 from upd), ${now}::timestamptz
        )
        select exists (select 1 from upd) as done, coalesce((select state from upd), (select state from cur)) as state`),
    );
    const r = rows[0] ?? { done: false, state: null };
    if (r.done || r.state !== 'authorized') return { done: Boolean(r.done), state: r.state };
    // Another call moved it while this statement waited for the row: read what it became.
    const after = await this.lookup(key);
    return { done: false, state: after?.state ?? null };
  }

  async lookup(key: string): Promise<PaymentRecord | null> {
    const [p] = await this.db.select().from(sandboxPayments).where(eq(sandboxPayments.key, key));
    return p ? { key: p.key, authorizationId: p.authorizationId, amountCents: p.amountCents, currency: p.currency, state: p.state } : null;
  }
}
