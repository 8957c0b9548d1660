import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { EndpointConfig } from '../partners/seller-config.js';
import type {
  Address,
  AttemptState,
  BookCondition,
  OfferSnapshot,
  OrderDetails,
  PaymentState,
  RequestStatus,
} from '../domain/types.js';

const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * One user's purchase request. The row is the truth: status and revision change only through
 * guarded writes (src/db/queries/requests.ts), each with an event in the same transaction.
 * Statuses are text with a CHECK rather than a Postgres enum so migrations stay schema-agnostic.
 */
export const purchaseRequests = pgTable(
  'purchase_requests',
  {
    id: uuid('id').primaryKey(),
    /** Insertion order, for newest-first pagination with stable cursors. */
    seq: bigint('seq', { mode: 'number' }).generatedAlwaysAsIdentity().notNull(),
    userId: text('user_id').notNull(),
    status: text('status').$type<RequestStatus>().notNull(),
    revision: integer('revision').notNull(),
    isbn: text('isbn'),
    title: text('title'),
    author: text('author'),
    /** Normalised book identity (ISBN-13, or folded title+author) that rounds coalesce on. */
    bookKey: text('book_key').notNull(),
    conditions: jsonb('conditions').$type<BookCondition[]>().notNull(),
    maxTotalCents: integer('max_total_cents').notNull(),
    currency: text('currency').notNull(),
    expiresAt: tstz('expires_at').notNull(),
    shippingAddress: jsonb('shipping_address').$type<Address>().notNull(),
    paymentToken: text('payment_token').notNull(),
    bestOffer: jsonb('best_offer').$type<OfferSnapshot>(),
    orderDetails: jsonb('order_details').$type<OrderDetails>(),
    failureReason: text('failure_reason'),
    /** When the engine should next look at this request; null when nothing is due. */
    nextRunAt: tstz('next_run_at'),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: tstz('lease_expires_at'),
    /** Rechecks since the last change, for the watching backoff. */
    watchCount: integer('watch_count').notNull().default(0),
    createdAt: tstz('created_at').notNull(),
    updatedAt: tstz('updated_at').notNull(),
  },
  (t) => [
    uniqueIndex('purchase_requests_seq_idx').on(t.seq),
    index('purchase_requests_active_expiry_idx')
      .on(t.expiresAt)
      .where(sql`${t.status} in ('PENDING','SEARCHING','QUOTED','OUT_OF_STOCK')`),
    index('purchase_requests_user_seq_idx').on(t.userId, t.seq.desc()),
    // Due work nobody holds, by due time. Requests in a round keep their (past) due time while
    // leased, so an index over every active request would make each claim walk over all of them.
    index('purchase_requests_unleased_due_idx')
      .on(t.nextRunAt)
      .where(sql`${t.status} in ('PENDING','SEARCHING','QUOTED','OUT_OF_STOCK') and ${t.leaseExpiresAt} is null`),
    // Leased work by lease expiry: a claim finds lapsed leases (a crashed instance's) in a range
    // that is empty while every instance is alive.
    index('purchase_requests_lease_expiry_idx')
      .on(t.leaseExpiresAt)
      .where(sql`${t.status} in ('PENDING','SEARCHING','QUOTED','OUT_OF_STOCK') and ${t.leaseExpiresAt} is not null`),
    // Waking the requests that watch a book reads only those not already due, not every request
    // ever made for it.
    index('purchase_requests_watching_idx')
      .on(t.bookKey, t.nextRunAt)
      .where(sql`${t.status} in ('QUOTED','OUT_OF_STOCK')`),
    // The reconciler's look for requests left in ORDERING.
    index('purchase_requests_ordering_idx').on(t.id).where(sql`${t.status} = 'ORDERING'`),
    // The backlog count (admission control) and queue positions read only PENDING rows.
    index('purchase_requests_pending_idx').on(t.seq).where(sql`${t.status} = 'PENDING'`),
    check(
      'purchase_requests_status_check',
      sql`${t.status} in ('PENDING','SEARCHING','QUOTED','ORDERING','ORDERED','EXPIRED','OUT_OF_STOCK','FAILED','CANCELED')`,
    ),
    check('purchase_requests_max_total_check', sql`${t.maxTotalCents} > 0`),
  ],
);

/** Append-only history of a request: one row per change, numbered by the revision it produced. */
export const requestEvents = pgTable(
  'request_events',
  {
    id: bigint('id', { mode: 'number' }).generatedAlwaysAsIdentity().primaryKey(),
    requestId: uuid('request_id')
      .notNull()
      .references(() => purchaseRequests.id, { onDelete: 'cascade' }),
    revision: integer('revision').notNull(),
    at: tstz('at').notNull(),
    type: text('type').notNull(),
    status: text('status').$type<RequestStatus>().notNull(),
    message: text('message'),
    data: jsonb('data').$type<Record<string, unknown>>(),
  },
  (t) => [uniqueIndex('request_events_request_revision_idx').on(t.requestId, t.revision)],
);

/** Client idempotency keys, scoped to the user; the hash is of the normalised input. */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    userId: text('user_id').notNull(),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    requestId: uuid('request_id')
      .notNull()
      .references(() => purchaseRequests.id, { onDelete: 'cascade' }),
    createdAt: tstz('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.key] })],
);

/** Partner bookstores, configured as data. `headers` and `callbackSecret` are write-only. */
export const sellers = pgTable('sellers', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull(),
  tier: integer('tier').notNull(),
  enabled: boolean('enabled').notNull(),
  baseUrl: text('base_url').notNull(),
  headers: jsonb('headers').$type<Record<string, string>>().notNull(),
  timeoutMs: integer('timeout_ms').notNull(),
  maxConcurrency: integer('max_concurrency').notNull(),
  /** Calls that may start in any one-second window across every instance; null = no limit. */
  maxCallsPerSecond: integer('max_calls_per_second'),
  offerTtlSeconds: integer('offer_ttl_seconds').notNull(),
  /** The order endpoint refuses a total that is not the current price: cached prices are ordered on without a fresh quote. */
  orderChecksPrice: boolean('order_checks_price').notNull().default(false),
  callbackSecret: text('callback_secret'),
  quote: jsonb('quote').$type<EndpointConfig>().notNull(),
  order: jsonb('order_endpoint').$type<EndpointConfig>().notNull(),
  orderStatus: jsonb('order_status_endpoint').$type<EndpointConfig>(),
  createdAt: tstz('created_at').notNull(),
  updatedAt: tstz('updated_at').notNull(),
});

/**
 * One try at placing an order with one seller for one request (SPEC §4). Every step — payment
 * authorised, order sent, order confirmed, payment captured or voided — is written here before
 * the next external call, so a crash at any point leaves a state the reconciler can finish.
 */
export const orderAttempts = pgTable(
  'order_attempts',
  {
    id: uuid('id').primaryKey(),
    requestId: uuid('request_id')
      .notNull()
      .references(() => purchaseRequests.id, { onDelete: 'cascade' }),
    attemptNo: integer('attempt_no').notNull(),
    sellerId: uuid('seller_id')
      .notNull()
      .references(() => sellers.id),
    offer: jsonb('offer').$type<OfferSnapshot>().notNull(),
    /** Sent to the payment gateway and the seller on every try of this attempt. */
    idempotencyKey: text('idempotency_key').notNull(),
    state: text('state').$type<AttemptState>().notNull(),
    paymentState: text('payment_state').$type<PaymentState>().notNull(),
    authorizationId: text('authorization_id'),
    sellerOrderId: text('seller_order_id'),
    orderTotalCents: integer('order_total_cents'),
    deliveryEta: tstz('delivery_eta'),
    failure: text('failure'),
    /** External calls made while the outcome was unknown. */
    tries: integer('tries').notNull().default(0),
    /** Set when the reconciler could not resolve the attempt after many tries: an operator should look. */
    needsAttention: boolean('needs_attention').notNull().default(false),
    lastError: text('last_error'),
    nextCheckAt: tstz('next_check_at'),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: tstz('lease_expires_at'),
    createdAt: tstz('created_at').notNull(),
    updatedAt: tstz('updated_at').notNull(),
  },
  (t) => [
    uniqueIndex('order_attempts_key_idx').on(t.idempotencyKey),
    uniqueIndex('order_attempts_request_no_idx').on(t.requestId, t.attemptNo),
    // The exactly-once guard: at most one attempt per request that has not failed — so never a
    // second one while one is live, nor any after one succeeded.
    uniqueIndex('order_attempts_one_live_idx').on(t.requestId).where(sql`${t.state} <> 'failed'`),
    index('order_attempts_due_idx').on(t.nextCheckAt).where(sql`${t.state} not in ('succeeded','failed')`),
    // Operators' list (and the metrics gauge) of unfinished attempts flagged for attention.
    index('order_attempts_attention_idx')
      .on(t.createdAt)
      .where(sql`${t.needsAttention} and ${t.state} not in ('succeeded','failed')`),
    check(
      'order_attempts_state_check',
      sql`${t.state} in ('authorizing','ordering','unknown','capturing','voiding','succeeded','failed')`,
    ),
  ],
);

/**
 * The sandbox payment provider's own books: one row per idempotency key, and a log of every
 * call. Kept in the same database so they survive a crash of the process like a real
 * provider's would, and so tests and operators can count captures.
 */
export const sandboxPayments = pgTable('sandbox_payments', {
  key: text('key').primaryKey(),
  authorizationId: text('authorization_id').notNull(),
  amountCents: integer('amount_cents').notNull(),
  currency: text('currency').notNull(),
  state: text('state').$type<'authorized' | 'captured' | 'voided' | 'declined'>().notNull(),
  declineReason: text('decline_reason'),
  createdAt: tstz('created_at').notNull(),
  updatedAt: tstz('updated_at').notNull(),
});

export const sandboxPaymentCalls = pgTable(
  'sandbox_payment_calls',
  {
    id: bigint('id', { mode: 'number' }).generatedAlwaysAsIdentity().primaryKey(),
    key: text('key').notNull(),
    operation: text('operation').$type<'authorize' | 'capture' | 'void' | 'lookup'>().notNull(),
    amountCents: integer('amount_cents'),
    result: text('result').notNull(),
    /** Whether this call changed the payment (a repeated call with the same key does not). */
    effective: boolean('effective').notNull(),
    at: tstz('at').notNull(),
  },
  (t) => [index('sandbox_payment_calls_key_idx').on(t.key)],
);

/**
 * Work that kept failing (SPEC §6): an order attempt the reconciler could not resolve, a partner
 * callback that could not be processed. Kept with its last error for admins to see and re-drive.
 */
export const deadLetters = pgTable(
  'dead_letters',
  {
    id: uuid('id').primaryKey(),
    kind: text('kind').$type<'attempt' | 'callback' | 'webhook'>().notNull(),
    /** The attempt id, the seller id a callback came from, or the webhook outbox row's id. */
    ref: text('ref').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    lastError: text('last_error').notNull(),
    failures: integer('failures').notNull().default(1),
    createdAt: tstz('created_at').notNull(),
    updatedAt: tstz('updated_at').notNull(),
    /** When it was re-driven successfully or resolved; null while it waits. */
    resolvedAt: tstz('resolved_at'),
  },
  (t) => [index('dead_letters_open_idx').on(t.createdAt).where(sql`${t.resolvedAt} is null`)],
);

/**
 * A user's own endpoint told about their requests' outcomes (API.md "Webhooks"). The signing
 * secret is stored as given (`whsec_…`): deliveries must sign with it, so it cannot be hashed; it
 * is never returned after creation. `failures`/`pausedUntil` are the endpoint's breaker, shared by
 * every instance: consecutive failed deliveries pause the whole endpoint, not just one event.
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: uuid('id').primaryKey(),
    userId: text('user_id').notNull(),
    url: text('url').notNull(),
    events: jsonb('events').$type<RequestStatus[]>().notNull(),
    secret: text('secret').notNull(),
    enabled: boolean('enabled').notNull(),
    failures: integer('failures').notNull().default(0),
    pausedUntil: tstz('paused_until'),
    createdAt: tstz('created_at').notNull(),
    updatedAt: tstz('updated_at').notNull(),
  },
  // The outbox insert inside every transition batch finds a request's user's endpoints by this.
  (t) => [index('webhook_endpoints_user_idx').on(t.userId, t.createdAt)],
);

/**
 * The transactional outbox of webhook deliveries: one row per (event, endpoint), written by the
 * statement that changes the request's status (src/db/queries/transitions.ts). `payload` is the
 * request as it was written; the body is rendered from it, identically on every retry. It holds
 * only what is still to send (pending) or was given up on (dead, gone): a delivered row moves to
 * `webhook_deliveries`, so the table the claims walk and vacuum cleans stays small. VACUUM keeps its
 * pages when it drains (`vacuum_truncate = false`, migration 0007): statements planned while it is
 * empty stay on its indexes.
 */
export const webhookOutbox = pgTable(
  'webhook_outbox',
  {
    id: bigint('id', { mode: 'number' }).generatedAlwaysAsIdentity().primaryKey(),
    /**
     * The `webhook-id` header: unique per event and endpoint (`msg_` and a random UUID), the same
     * on every retry. Nothing looks rows up by it, so it has no index: each write of a row would
     * pay for one.
     */
    webhookId: text('webhook_id').notNull(),
    endpointId: uuid('endpoint_id')
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
    requestId: uuid('request_id')
      .notNull()
      .references(() => purchaseRequests.id, { onDelete: 'cascade' }),
    revision: integer('revision').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    state: text('state').$type<'pending' | 'dead' | 'gone'>().notNull(),
    attempts: integer('attempts').notNull().default(0),
    /** When the current run of retries began (first claim, or the last re-drive): dead-lettered after the retry window. */
    retrySince: tstz('retry_since'),
    nextAttemptAt: tstz('next_attempt_at').notNull(),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: tstz('lease_expires_at'),
    lastError: text('last_error'),
    createdAt: tstz('created_at').notNull(),
  },
  (t) => [
    // Revision order per request and endpoint: a row waits while an earlier one is pending, which
    // the claim finds among the request's own rows for the endpoint (a handful), never walking
    // the endpoint's backlog. Also the endpoint's rows in every state, for its deletion's cascade.
    uniqueIndex('webhook_outbox_order_idx').on(t.endpointId, t.requestId, t.revision),
    // Rows waiting for a claim: the claim walks the endpoints that have some (a loose index scan)
    // and takes each one's earliest due rows, fair between endpoints. Rows under lease are not
    // here, so deliveries in flight are never walked past, and a row a status change leased to its
    // writer (direct dispatch) never enters it; nor do dead letters.
    index('webhook_outbox_waiting_idx').on(t.endpointId, t.nextAttemptAt).where(sql`${t.state} = 'pending' and ${t.leaseOwner} is null`),
    // Rows under lease, per endpoint by expiry: live leases are the deliveries in flight its
    // concurrency cap counts; lapsed ones (their instance died) are handed back to wait again.
    index('webhook_outbox_leased_idx').on(t.endpointId, t.leaseExpiresAt).where(sql`${t.state} = 'pending' and ${t.leaseOwner} is not null`),
    check('webhook_outbox_state_check', sql`${t.state} in ('pending','dead','gone')`),
  ],
);

/**
 * Webhook deliveries made: an outbox row, less its payload, moved here in the statement that
 * records its delivery, and kept `WEBHOOK_RETENTION_HOURS` for operators. Written once, never
 * updated: no dead row versions for vacuum, one index entry besides the key.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    /** The outbox row's id. */
    id: bigint('id', { mode: 'number' }).primaryKey(),
    webhookId: text('webhook_id').notNull(),
    endpointId: uuid('endpoint_id').notNull(),
    requestId: uuid('request_id').notNull(),
    revision: integer('revision').notNull(),
    attempts: integer('attempts').notNull(),
    createdAt: tstz('created_at').notNull(),
    deliveredAt: tstz('delivered_at').notNull(),
  },
  // The retention sweep takes the oldest by this, a batch at a time, never scanning the rest.
  (t) => [index('webhook_deliveries_delivered_idx').on(t.deliveredAt)],
);

export type RequestRow = typeof purchaseRequests.$inferSelect;
export type DeadLetterRow = typeof deadLetters.$inferSelect;
export type AttemptRow = typeof orderAttempts.$inferSelect;
export type PaymentCallRow = typeof sandboxPaymentCalls.$inferSelect;
export type EventRow = typeof requestEvents.$inferSelect;
export type SellerRow = typeof sellers.$inferSelect;
export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;
export type WebhookOutboxRow = typeof webhookOutbox.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
