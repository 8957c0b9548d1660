import { createHash } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { batchLoader, inLayers } from '../db/batch-loader.js';
import { type Db, rowsOf } from '../db/client.js';
import { retryLockRaces } from '../db/errors.js';
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

  // The calls of one turn, from every attempt being driven, are one statement per operation
  // (group commit): data-modifying CTEs write the payment rows and the call log together, all or
  // nothing, without a transaction's extra round trips.

  async authorize(req: AuthorizeRequest): Promise<AuthorizeResult> {
    const r = await this.authorizations.load(req);
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
    const result = await this.transition({ key: req.key, operation: 'capture', amountCents: req.amountCents, to: 'captured' });
    if (result.done || result.state === 'captured') return { status: 'captured' };
    throw new PaymentConflictError(result.state === null ? `capture of unknown payment ${req.key}` : `cannot capture a ${result.state} payment for ${req.amountCents}`);
  }

  async void(req: { key: string }): Promise<{ status: 'voided' }> {
    const result = await this.transition({ key: req.key, operation: 'void', amountCents: null, to: 'voided' });
    if (result.state === 'captured') throw new PaymentConflictError('cannot void a captured payment');
    return { status: 'voided' };
  }

  /** Moves a payment from authorized to `to` (for a capture, only up to the authorised amount), logging the call either way. */
  private async transition(call: Transition): Promise<{ done: boolean; state: string | null }> {
    const r = (await this.transitions.load(call)) ?? { done: false, state: null };
    if (r.done || r.state !== 'authorized') return r;
    // Another call moved it while this statement waited for the row: read what it became.
    const after = await this.lookup(call.key);
    return { done: false, state: after?.state ?? null };
  }

  private readonly authorizations = batchLoader<AuthorizeRequest, AuthorizeRow | null>(
    async (batch) => (await inLayers(batch, (c) => c.key, (layer) => retryLockRaces(() => this.authorizeAll(layer)))).map((r) => r ?? null),
    { maxBatchSize: BATCH },
  );

  private readonly transitions = batchLoader<Transition, { done: boolean; state: string | null } | null>(
    async (batch) => (await inLayers(batch, (c) => c.key, (layer) => retryLockRaces(() => this.transitionAll(layer)))).map((r) => r ?? null),
    { maxBatchSize: BATCH },
  );

  private async authorizeAll(calls: readonly AuthorizeRequest[]): Promise<Map<string, AuthorizeRow>> {
    const now = this.clock.now().toISOString();
    const input = calls.map((c) => {
      const declined = c.token === 'tok_declined';
      return {
        key: c.key,
        authorization_id: `auth_${createHash('sha256').update(c.key).digest('hex').slice(0, 20)}`,
        amount_cents: c.amountCents,
        currency: c.currency,
        state: declined ? 'declined' : 'authorized',
        decline_reason: declined ? 'card declined' : null,
      };
    });
    // Rows are inserted in key order, so two batches wait on each other's keys in one order.
    const rows = rowsOf<AuthorizeRow>(
      await this.db.execute(sql`
        with input as (
          select * from jsonb_to_recordset(${JSON.stringify(input)}::text::jsonb) as x(
            key text, authorization_id text, amount_cents int, currency text, state text, decline_reason text)
        ), ins as (
          insert into sandbox_payments (key, authorization_id, amount_cents, currency, state, decline_reason, created_at, updated_at)
          select key, authorization_id, amount_cents, currency, state, decline_reason, ${now}::timestamptz, ${now}::timestamptz
          from input order by key
          on conflict (key) do nothing
          returning key, state, authorization_id, decline_reason, amount_cents, currency
        ), res as (
          select i.key, r.state, r.authorization_id, r.decline_reason, r.amount_cents, r.currency, r.fresh,
            (r.amount_cents <> i.amount_cents or r.currency <> i.currency) as conflict, i.amount_cents as asked_cents
          from input i
          join lateral (
            select n.state, n.authorization_id, n.decline_reason, n.amount_cents, n.currency, true as fresh from ins n where n.key = i.key
            union all
            select p.state, p.authorization_id, p.decline_reason, p.amount_cents, p.currency, false
            from sandbox_payments p where p.key = i.key and not exists (select 1 from ins n where n.key = i.key)
          ) r on true
        ), log as (
          insert into sandbox_payment_calls (key, operation, amount_cents, result, effective, at)
          select key, 'authorize', asked_cents, case when conflict then 'conflict' else state end, fresh, ${now}::timestamptz from res
        )
        select key, state, authorization_id, decline_reason, conflict, amount_cents, currency from res`),
    );
    return new Map(rows.map((r) => [r.key, r]));
  }

  private async transitionAll(calls: readonly Transition[]): Promise<Map<string, { done: boolean; state: string | null }>> {
    const now = this.clock.now().toISOString();
    const input = calls.map((c) => ({ key: c.key, operation: c.operation, amount_cents: c.amountCents, to_state: c.to }));
    const rows = rowsOf<{ key: string; done: boolean; state: string | null }>(
      await this.db.execute(sql`
        with input as (
          select * from jsonb_to_recordset(${JSON.stringify(input)}::text::jsonb) as x(key text, operation text, amount_cents int, to_state text)
        ), upd as (
          update sandbox_payments p set state = i.to_state, updated_at = ${now}::timestamptz
          from input i
          -- By key from an array: a join with the input may be planned as a hash over the table.
          where p.key = any(array(select key from input)) and p.key = i.key
            and p.state = 'authorized' and (i.amount_cents is null or p.amount_cents >= i.amount_cents)
          returning p.key, p.state
        ), res as (
          select i.key, i.operation, i.amount_cents, u.key is not null as done,
            coalesce(u.state, (select c.state from sandbox_payments c where c.key = i.key)) as state
          from input i left join upd u on u.key = i.key
        ), log as (
          insert into sandbox_payment_calls (key, operation, amount_cents, result, effective, at)
          select key, operation, amount_cents, coalesce(state, 'none'), done, ${now}::timestamptz from res
        )
        select key, done, state from res`),
    );
    return new Map(rows.map((r) => [r.key, { done: Boolean(r.done), state: r.state }]));
  }

  async lookup(key: string): Promise<PaymentRecord | null> {
    const [p] = await this.db.select().from(sandboxPayments).where(eq(sandboxPayments.key, key));
    return p ? { key: p.key, authorizationId: p.authorizationId, amountCents: p.amountCents, currency: p.currency, state: p.state } : null;
  }
}

/** Most calls written by one statement. */
const BATCH = 200;

interface Transition {
  key: string;
  operation: 'capture' | 'void';
  amountCents: number | null;
  to: 'captured' | 'voided';
}

interface AuthorizeRow {
  key: string;
  state: string;
  authorization_id: string;
  decline_reason: string | null;
  conflict: boolean;
  amount_cents: number;
  currency: string;
}
