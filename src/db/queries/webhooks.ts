import { and, asc, eq, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { rowsOf } from '../client.js';
import { rowMapper } from './rows.js';
import { type WebhookDeliveryRow, webhookDeliveries, type WebhookEndpointRow, webhookEndpoints, type WebhookOutboxRow, webhookOutbox } from '../schema.js';

export type NewWebhookEndpoint = Pick<WebhookEndpointRow, 'id' | 'userId' | 'url' | 'events' | 'secret' | 'createdAt'>;

export async function insertWebhookEndpoint(ex: Executor, row: NewWebhookEndpoint): Promise<WebhookEndpointRow> {
  const [inserted] = await ex
    .insert(webhookEndpoints)
    .values({ ...row, enabled: true, updatedAt: row.createdAt })
    .returning();
  return inserted!;
}

export function listWebhookEndpoints(ex: Executor, userId: string): Promise<WebhookEndpointRow[]> {
  return ex.select().from(webhookEndpoints).where(eq(webhookEndpoints.userId, userId)).orderBy(asc(webhookEndpoints.createdAt), asc(webhookEndpoints.id));
}

/** Deletes the endpoint if it is the user's; its undelivered events go with it. */
export async function deleteWebhookEndpoint(ex: Executor, userId: string, id: string): Promise<WebhookEndpointRow | null> {
  const [row] = await ex
    .delete(webhookEndpoints)
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.userId, userId)))
    .returning();
  return row ?? null;
}

/** A claimed delivery with what it needs to be sent. */
export interface Delivery {
  row: WebhookOutboxRow;
  url: string;
  secret: string;
}

/**
 * The terms on which a status change's own statement leases the outbox rows it writes to the
 * writing instance (direct dispatch, src/db/queries/transitions.ts): the claim's lease, its
 * per-endpoint cap, and at most `room` rows.
 */
export interface DirectLease {
  owner: string;
  now: Date;
  until: Date;
  perEndpoint: number;
  room: number;
  /** This instance's deliveries being sent, per endpoint (see `inFlightTo`). */
  sending: Readonly<Record<string, number>>;
}

/** A delivery from an outbox row as SQL returned it, with its endpoint's URL and secret. */
export function toDelivery(raw: Record<string, unknown>, url: string, secret: string): Delivery {
  return { row: toOutboxRow(raw), url, secret };
}

/**
 * Revision order per request and endpoint, as SQL: whether an earlier revision of the request is
 * still pending for the endpoint. It reads the request's own rows for the endpoint (a handful, by
 * the order index), then their states: OFFSET 0 keeps the state test out of that scan, so the
 * planner cannot answer it from the pending rows' index instead and walk a failing endpoint's
 * whole backlog for every row it checks.
 */
export function earlierRevisionPending(endpointId: SQL, requestId: SQL, revision: SQL): SQL {
  return sql`exists (
    select 1 from (
      select p.state from webhook_outbox p
      where p.endpoint_id = ${endpointId} and p.request_id = ${requestId} and p.revision < ${revision}
      offset 0
    ) earlier where earlier.state = 'pending'
  )`;
}

/**
 * Deliveries to an endpoint in flight across the fleet at `now`, as SQL: its cap's count. Other
 * instances' are their rows under a live lease. This instance's own are the ones it is sending
 * (`sending`, a JSON object of counts by endpoint id), which it knows exactly: a row it has sent
 * stays leased until its outcome is written, and writing waits its turn behind the engine's
 * statements, so under load its leased rows would count sends long finished.
 */
export function inFlightTo(endpointId: SQL, now: SQL, owner: SQL, sending: SQL): SQL {
  return sql`((select count(*)::int from webhook_outbox b
    where b.endpoint_id = ${endpointId} and b.state = 'pending' and b.lease_owner is not null and b.lease_expires_at >= ${now}
      and b.lease_owner <> ${owner}) + coalesce((${sending} ->> ${endpointId}::text)::int, 0))`;
}

/**
 * Claims due deliveries under a lease, on any instance (SKIP LOCKED), fairly between endpoints:
 * the endpoints with rows waiting (under no lease) are walked one index probe each (a loose index
 * scan), and each enabled, unpaused one gives at most its free slots — `perEndpoint` less what is
 * in flight to it across the fleet — of its earliest due rows, so a receiver with a backlog never
 * crowds out the others. A row waits while an earlier revision of its request is pending for the
 * same endpoint: revision order per request. Rows whose lease lapsed wait again once
 * `releaseLapsed` has handed them back.
 */
export async function claimDeliveries(
  ex: Executor,
  q: { owner: string; now: Date; leaseMs: number; perEndpoint: number; limit: number; sending: Readonly<Record<string, number>> },
): Promise<Delivery[]> {
  const now = sql`${q.now.toISOString()}::timestamptz`;
  const until = new Date(q.now.getTime() + q.leaseMs).toISOString();
  const result = await ex.execute(sql`
    with recursive waiting_endpoints as (
      (select o.endpoint_id from webhook_outbox o where o.state = 'pending' and o.lease_owner is null order by o.endpoint_id limit 1)
      union all
      select (
        select o.endpoint_id from webhook_outbox o
        where o.state = 'pending' and o.lease_owner is null and o.endpoint_id > we.endpoint_id order by o.endpoint_id limit 1
      )
      from waiting_endpoints we where we.endpoint_id is not null
    ),
    ready as (
      select e.id from webhook_endpoints e
      where e.id = any(array(select endpoint_id from waiting_endpoints where endpoint_id is not null))
        and e.enabled and (e.paused_until is null or e.paused_until <= ${now})
    ),
    due as (
      select d.id, d.next_attempt_at
      from ready e
      cross join lateral (select ${inFlightTo(sql`e.id`, now, sql`${q.owner}::text`, sql`${JSON.stringify(q.sending)}::jsonb`)} as n) busy
      cross join lateral (
        select o.id, o.next_attempt_at from webhook_outbox o
        where o.endpoint_id = e.id and o.state = 'pending' and o.lease_owner is null and o.next_attempt_at <= ${now}
          and not ${earlierRevisionPending(sql`o.endpoint_id`, sql`o.request_id`, sql`o.revision`)}
        order by o.next_attempt_at
        limit greatest(${q.perEndpoint}::int - busy.n, 0)
      ) d
    ),
    -- Each chosen row locked by its key alone, one probe apiece, and checked once locked (another
    -- instance may have taken it meanwhile). Its state in the probe would let the planner answer
    -- it from the waiting rows' index instead, reading them all for every row; OFFSET 0 keeps the
    -- check out of the probe.
    picked as (
      select o.id
      from unnest(array(select id from due order by next_attempt_at limit ${q.limit}::int)) as chosen(id)
      cross join lateral (
        select o.id, o.state, o.lease_owner from webhook_outbox o
        where o.id = chosen.id
        offset 0
        for update skip locked
      ) o
      where o.state = 'pending' and o.lease_owner is null
    ),
    claimed as (
      update webhook_outbox o set lease_owner = ${q.owner}::text, lease_expires_at = ${until}::timestamptz,
        attempts = o.attempts + 1, retry_since = coalesce(o.retry_since, ${now})
      from picked where o.id = picked.id
      returning o.*
    )
    select c.*, e.url as endpoint_url, e.secret as endpoint_secret
    from claimed c join webhook_endpoints e on e.id = c.endpoint_id`);
  return rowsOf<Record<string, unknown>>(result).map((raw) => toDelivery(raw, raw.endpoint_url as string, raw.endpoint_secret as string));
}

/**
 * Hands back up to `limit` rows whose lease lapsed before `now` (their instance died, or stalled
 * past it): they wait for a claim again, due as they were. Reads only the index of leased rows,
 * which holds what is in flight across the fleet; rows another instance is handing back are
 * skipped. The number handed back.
 */
export async function releaseLapsed(ex: Executor, q: { now: Date; limit: number }): Promise<number> {
  const result = await ex.execute(sql`
    with lapsed as (
      select o.id from webhook_outbox o
      where o.state = 'pending' and o.lease_owner is not null and o.lease_expires_at < ${q.now.toISOString()}::timestamptz
      limit ${q.limit}::int
      for update skip locked
    ),
    released as (
      update webhook_outbox set lease_owner = null, lease_expires_at = null
      where id = any(array(select id from lapsed))
      returning 1
    )
    select count(*)::int as n from released`);
  return Number(rowsOf<{ n: unknown }>(result)[0]?.n ?? 0);
}

/** Delivered: the row is done, and the endpoint's breaker closes. Guarded by the lease. */
export async function markDelivered(ex: Executor, d: { id: number; endpointId: string; owner: string; now: Date }): Promise<void> {
  await markDeliveredMany(ex, d.owner, [d]);
}

/**
 * Many deliveries done in one statement (the relay's group commit): each row, if this owner's lease
 * still holds it, leaves the outbox for `webhook_deliveries` at its own delivery time, and the
 * breakers of their endpoints close.
 */
export async function markDeliveredMany(ex: Executor, owner: string, rows: ReadonlyArray<{ id: number; now: Date }>): Promise<void> {
  if (rows.length === 0) return;
  const input = JSON.stringify(rows.map((r) => ({ id: r.id, at: r.now.toISOString() })));
  await ex.execute(sql`
    with input as (
      select * from jsonb_to_recordset(${input}::jsonb) as x(id bigint, at timestamptz)
    ),
    done as (
      delete from webhook_outbox o
      using input x
      where o.id = x.id and o.id = any(array(select id from input)) and o.lease_owner = ${owner}::text and o.state = 'pending'
      returning o.id, o.webhook_id, o.endpoint_id, o.request_id, o.revision, o.attempts, o.created_at, x.at
    ),
    kept as (
      insert into webhook_deliveries (id, webhook_id, endpoint_id, request_id, revision, attempts, created_at, delivered_at)
      select id, webhook_id, endpoint_id, request_id, revision, attempts, created_at, at from done
    )
    update webhook_endpoints set failures = 0, paused_until = null
    where id = any(array(select endpoint_id from done)) and (failures <> 0 or paused_until is not null)`);
}

/**
 * A failed try: the row is due again at `retryAt`, or, past its retry window, dead-lettered (the
 * dead letter written with it); the endpoint counts a failure and pauses from `breakerAfter`
 * consecutive ones until `pauseUntil`.
 */
export async function markFailed(
  ex: Executor,
  d: {
    id: number;
    endpointId: string;
    owner: string;
    now: Date;
    error: string;
    retryAt: Date | null;
    deadLetterId: string;
    breakerAfter: number;
    pauseUntil: Date;
  },
): Promise<'retry' | 'dead' | 'lost'> {
  const now = d.now.toISOString();
  const result = await ex.execute(sql`
    with failed as (
      update webhook_outbox set
        state = case when ${d.retryAt === null}::boolean then 'dead' else 'pending' end,
        next_attempt_at = coalesce(${d.retryAt?.toISOString() ?? null}::timestamptz, next_attempt_at),
        lease_owner = null, lease_expires_at = null, last_error = ${d.error}::text
      where id = ${d.id}::bigint and lease_owner = ${d.owner}::text and state = 'pending'
      returning *
    ),
    lettered as (
      insert into dead_letters (id, kind, ref, payload, last_error, failures, created_at, updated_at)
      select ${d.deadLetterId}::uuid, 'webhook', f.id::text,
        jsonb_build_object('webhookId', f.webhook_id, 'endpointId', f.endpoint_id, 'requestId', f.request_id,
          'revision', f.revision, 'attempts', f.attempts),
        f.last_error, f.attempts, ${now}::timestamptz, ${now}::timestamptz
      from failed f where f.state = 'dead'
    ),
    counted as (
      update webhook_endpoints e set failures = e.failures + 1,
        paused_until = case when e.failures + 1 >= ${d.breakerAfter}::int then ${d.pauseUntil.toISOString()}::timestamptz else e.paused_until end
      where e.id = ${d.endpointId}::uuid and exists (select 1 from failed)
    )
    select state from failed`);
  const [row] = rowsOf<{ state: string }>(result);
  return row === undefined ? 'lost' : row.state === 'dead' ? 'dead' : 'retry';
}

/** 410 Gone: the receiver asked to be forgotten. The endpoint is disabled; this event is not retried. */
export async function markGone(ex: Executor, d: { id: number; endpointId: string; owner: string; now: Date }): Promise<void> {
  await ex.execute(sql`
    with gone as (
      update webhook_outbox set state = 'gone', lease_owner = null, lease_expires_at = null, last_error = '410 Gone'
      where id = ${d.id}::bigint and lease_owner = ${d.owner}::text and state = 'pending'
      returning id
    )
    update webhook_endpoints set enabled = false, updated_at = ${d.now.toISOString()}::timestamptz
    where id = ${d.endpointId}::uuid and exists (select 1 from gone)`);
}

/** Hands back the rows this instance holds (shutdown): due now, for any instance. */
export async function releaseDeliveries(ex: Executor, owner: string): Promise<void> {
  await ex.update(webhookOutbox).set({ leaseOwner: null, leaseExpiresAt: null }).where(and(eq(webhookOutbox.leaseOwner, owner), eq(webhookOutbox.state, 'pending')));
}

/** A dead-lettered delivery made due again with a fresh retry window. False if it is not dead (or no longer exists). */
export async function redriveDelivery(ex: Executor, id: number, now: Date): Promise<boolean> {
  const rows = await ex
    .update(webhookOutbox)
    .set({ state: 'pending', attempts: 0, retrySince: null, nextAttemptAt: now, leaseOwner: null, leaseExpiresAt: null })
    .where(and(eq(webhookOutbox.id, id), eq(webhookOutbox.state, 'dead')))
    .returning({ id: webhookOutbox.id });
  return rows.length > 0;
}

/**
 * Retention: deletes up to `limit` deliveries made before `before`, oldest first, through the
 * delivery-time index (never a scan of the rest); the number deleted. Rows another instance's
 * sweep holds are skipped, not waited for. Dead-lettered rows stay in the outbox for admins to
 * re-drive.
 */
export async function sweepDelivered(ex: Executor, q: { before: Date; limit: number }): Promise<number> {
  const result = await ex.execute(sql`
    with old as (
      select id from webhook_deliveries
      where delivered_at < ${q.before.toISOString()}::timestamptz
      order by delivered_at
      limit ${q.limit}::int
      for update skip locked
    ),
    gone as (delete from webhook_deliveries d using old where d.id = old.id returning 1)
    select count(*)::int as n from gone`);
  return Number(rowsOf<{ n: unknown }>(result)[0]?.n ?? 0);
}

/** An outbox row (still to send, or given up on), or null if there is none by that id. */
export async function findDelivery(ex: Executor, id: number): Promise<WebhookOutboxRow | null> {
  const [row] = await ex.select().from(webhookOutbox).where(eq(webhookOutbox.id, id));
  return row ?? null;
}

/** The record of a delivery made, or null: none was, or it is past retention. */
export async function findDelivered(ex: Executor, id: number): Promise<WebhookDeliveryRow | null> {
  const [row] = await ex.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
  return row ?? null;
}

const toOutboxRow = rowMapper<WebhookOutboxRow>(webhookOutbox);
