import { sql } from 'drizzle-orm';
import { type Executor, rowsOf } from '../client.js';
import type { RequestRow } from '../schema.js';
import { toRequestRow } from './requests.js';

/** The columns a new request is written with; the rest take their defaults (null, 0). */
export type NewRequestColumns = Pick<
  RequestRow,
  | 'id'
  | 'userId'
  | 'status'
  | 'revision'
  | 'isbn'
  | 'title'
  | 'author'
  | 'bookKey'
  | 'conditions'
  | 'maxTotalCents'
  | 'currency'
  | 'expiresAt'
  | 'shippingAddress'
  | 'paymentToken'
  | 'nextRunAt'
  | 'leaseOwner'
  | 'leaseExpiresAt'
  | 'createdAt'
  | 'updatedAt'
>;

/** One request to create: its row, the user's idempotency key it claims, and its first event. */
export interface RequestToCreate {
  request: NewRequestColumns;
  idempotencyKey: string;
  requestHash: string;
  event: { type: string; message: string | null; data: Record<string, unknown> | null };
}

/** Per input: the row as written, or `key_taken` when the user's key already names another request. */
export type CreateResult = { kind: 'created'; row: RequestRow } | { kind: 'key_taken' };

/**
 * Creates many requests in one statement (group commit): claims each idempotency key, inserts
 * the requests whose key it claimed, and their first event at their first revision — all or
 * nothing, as one statement is. Results come back in input order. Of several inputs with the same
 * user and key, the earliest claims it and the others find it taken; a key claimed by a
 * concurrent transaction is waited for, and found taken if that transaction commits.
 */
export async function createRequests(ex: Executor, batch: readonly RequestToCreate[]): Promise<CreateResult[]> {
  if (batch.length === 0) return [];
  const input = batch.map(({ request: r, idempotencyKey, requestHash, event }, ord) => ({
    ord,
    id: r.id,
    user_id: r.userId,
    key: idempotencyKey,
    request_hash: requestHash,
    status: r.status,
    revision: r.revision,
    isbn: r.isbn,
    title: r.title,
    author: r.author,
    book_key: r.bookKey,
    conditions: r.conditions,
    max_total_cents: r.maxTotalCents,
    currency: r.currency,
    expires_at: r.expiresAt,
    shipping_address: r.shippingAddress,
    payment_token: r.paymentToken,
    next_run_at: r.nextRunAt,
    lease_owner: r.leaseOwner,
    lease_expires_at: r.leaseExpiresAt,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
    event_type: event.type,
    event_message: event.message,
    event_data: event.data,
  }));
  // Keys are claimed in (user, key) order so concurrent batches wait on each other's keys in one
  // order and cannot deadlock. The foreign keys of the claim and the event on the request are
  // checked at the end of the statement, when the request row is there.
  const result = await ex.execute(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::text::jsonb) as x(
        ord int, id uuid, user_id text, key text, request_hash text, status text, revision int,
        isbn text, title text, author text, book_key text, conditions jsonb, max_total_cents int,
        currency text, expires_at timestamptz, shipping_address jsonb, payment_token text,
        next_run_at timestamptz, lease_owner text, lease_expires_at timestamptz, created_at timestamptz, updated_at timestamptz,
        event_type text, event_message text, event_data jsonb)
    ),
    claimed as (
      insert into idempotency_keys (user_id, key, request_hash, request_id, created_at)
      select distinct on (user_id, key) user_id, key, request_hash, id, created_at
      from input
      order by user_id, key, ord
      on conflict (user_id, key) do nothing
      returning request_id
    ),
    created as (
      insert into purchase_requests (
        id, user_id, status, revision, isbn, title, author, book_key, conditions, max_total_cents,
        currency, expires_at, shipping_address, payment_token, next_run_at, lease_owner, lease_expires_at,
        created_at, updated_at)
      select x.id, x.user_id, x.status, x.revision, x.isbn, x.title, x.author, x.book_key, x.conditions,
        x.max_total_cents, x.currency, x.expires_at, x.shipping_address, x.payment_token, x.next_run_at,
        x.lease_owner, x.lease_expires_at, x.created_at, x.updated_at
      from input x join claimed c on c.request_id = x.id
      order by x.ord
      returning *
    ),
    logged as (
      insert into request_events (request_id, revision, at, type, status, message, data)
      select r.id, r.revision, r.created_at, x.event_type, r.status, x.event_message, nullif(x.event_data, 'null'::jsonb)
      from created r join input x on x.id = r.id
    )
    select * from created`);
  const byId = new Map<string, RequestRow>();
  for (const raw of rowsOf<Record<string, unknown>>(result)) {
    const row = toRequestRow(raw);
    byId.set(row.id, row);
  }
  return batch.map(({ request }) => {
    const row = byId.get(request.id);
    return row ? { kind: 'created', row } : { kind: 'key_taken' };
  });
}

