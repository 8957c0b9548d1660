import { type Column, getTableColumns, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { rowsOf } from '../client.js';
import { putChanges, rowMapper } from './rows.js';
import { statement } from '../statement.js';
import { type AttemptRow, orderAttempts, purchaseRequests, type RequestRow } from '../schema.js';
import { type Delivery, type DirectLease, earlierRevisionPending, inFlightTo, toDelivery } from './webhooks.js';
import type { AttemptState, OfferSnapshot } from '../../domain/types.js';
import { type RequestChanges, toRequestRow } from './requests.js';
import { WEBHOOK_STATUSES } from '../../domain/statuses.js';

const WEBHOOK_STATUSES_SQL = sql.raw(WEBHOOK_STATUSES.map((s) => `'${s}'`).join(','));

/**
 * An order attempt written with a request's transition, all or nothing: `start` inserts the
 * request's next attempt (numbered after its last one, keyed `<request>:<n>`, authorizing);
 * `complete` marks a captured attempt succeeded — only if it is still in `from`, else the
 * transition does not apply either.
 */
export type AttemptWrite =
  | {
      start: {
        id: string;
        sellerId: string;
        offer: OfferSnapshot;
        leaseOwner: string;
        leaseExpiresAt: Date;
        nextCheckAt: Date;
      };
    }
  | { complete: { id: string; from: AttemptState } };

/** One guarded write of a batch: the change to apply if the row is still at `expectedRevision`, and its event. */
export interface Transition {
  id: string;
  expectedRevision: number;
  changes: RequestChanges & { updatedAt: Date };
  event: { type: string; message: string | null; data: Record<string, unknown> | null };
  attempt?: AttemptWrite;
}

/**
 * What a transition wrote: the request's new row, the attempt written with it, if any, and the
 * webhook outbox rows it reported the change in — those leased to the writing instance on the
 * spot (`direct`, to send now) and how many were left for any instance's claim (`queued`).
 */
export interface Written {
  row: RequestRow;
  attempt: AttemptRow | null;
  outbox: { direct: Delivery[]; queued: number };
}

/**
 * Columns a transition may set, by property, with the SQL type they are read as from the batch's
 * JSON. Each is written only when the transition names it (a `set_<column>` flag), so one
 * statement serves transitions that change different columns.
 */
const SETTABLE = {
  status: 'text',
  bestOffer: 'jsonb',
  orderDetails: 'jsonb',
  failureReason: 'text',
  nextRunAt: 'timestamptz',
  leaseOwner: 'text',
  leaseExpiresAt: 'timestamptz',
  watchCount: 'int',
  maxTotalCents: 'int',
  expiresAt: 'timestamptz',
  updatedAt: 'timestamptz',
} as const satisfies Partial<Record<keyof RequestRow, string>>;
type Settable = keyof typeof SETTABLE;
const SETTABLE_KEYS = Object.keys(SETTABLE) as Settable[];

const COLUMNS = getTableColumns(purchaseRequests) as Record<keyof RequestRow, Column>;

/**
 * The guarded write for many requests in one statement (group commit): each transition applies
 * only if its row is still at the expected revision, bumping the revision by one, and its event
 * is appended with the revision it produced — all or nothing, as one statement is. Returns the
 * rows written, by id; a transition whose row had moved on is simply absent (the caller reloads
 * and decides again). At most one transition per request in a batch.
 *
 * With `direct`, the outbox rows the statement writes are leased to the writing instance as they
 * are inserted, under the claim's rules (claimDeliveries): the endpoint enabled and unpaused, no
 * earlier revision of the request pending for it, its fleet-wide cap and the instance's room
 * respected. The writer sends them at once: an event's first try needs no claim and no second
 * write of its row. Rows not leased wait for a claim, as all do without `direct`.
 */
export async function applyTransitions(ex: Executor, batch: readonly Transition[], direct: DirectLease | null = null): Promise<Map<string, Written>> {
  if (batch.length === 0) return new Map();
  const input = batch.map((t) => {
    const row: Record<string, unknown> = { id: t.id, rev: t.expectedRevision, type: t.event.type, message: t.event.message, data: t.event.data };
    const a = t.attempt;
    if (a && 'start' in a) {
      Object.assign(row, {
        start_id: a.start.id,
        start_seller: a.start.sellerId,
        start_offer: a.start.offer,
        start_lease_owner: a.start.leaseOwner,
        start_lease_until: a.start.leaseExpiresAt.toISOString(),
        start_check_at: a.start.nextCheckAt.toISOString(),
      });
    } else if (a) {
      Object.assign(row, { complete_id: a.complete.id, complete_from: a.complete.from });
    }
    putChanges(row, t.changes, SETTABLE_KEYS);
    return row;
  });
  // Without a lease the outbox rows are only queued: no owner, so none may be leased.
  const result = await ex.execute(
    transitionsStatement({
      input: JSON.stringify(input),
      owner: direct?.owner ?? null,
      now: (direct?.now ?? new Date(0)).toISOString(),
      until: (direct?.until ?? new Date(0)).toISOString(),
      perEndpoint: direct?.perEndpoint ?? 0,
      room: direct?.room ?? 0,
      sending: JSON.stringify(direct?.sending ?? {}),
    }),
  );
  const rows = new Map<string, Written>();
  for (const raw of rowsOf<Record<string, unknown>>(result)) {
    const row = toRequestRow(raw);
    const attempt = (raw.completed_attempt ?? raw.started_attempt ?? null) as Record<string, unknown> | string | null;
    const direct = parsed(raw.outbox_direct) as Array<{ row: Record<string, unknown>; url: string; secret: string }> | null;
    rows.set(row.id, {
      row,
      attempt: attempt === null ? null : toAttemptRow(parsed(attempt) as Record<string, unknown>),
      outbox: { direct: (direct ?? []).map((d) => toDelivery(d.row, d.url, d.secret)), queued: Number(raw.outbox_queued ?? 0) },
    });
  }
  return rows;
}

/** The statement applyTransitions runs, rendered once (its text is the same for every batch). */
const transitionsStatement = statement(['input', 'owner', 'now', 'until', 'perEndpoint', 'room', 'sending'], (p) => {
  const recordType = sql.raw(
    [
      'id uuid',
      'rev int',
      'type text',
      'message text',
      'data jsonb',
      'start_id uuid',
      'start_seller uuid',
      'start_offer jsonb',
      'start_lease_owner text',
      'start_lease_until timestamptz',
      'start_check_at timestamptz',
      'complete_id uuid',
      'complete_from text',
      ...SETTABLE_KEYS.flatMap((k) => [`"set_${k}" boolean`, `"v_${k}" ${SETTABLE[k]}`]),
    ].join(', '),
  );
  const assignments = sql.raw(
    SETTABLE_KEYS
      .map((k) => {
        const col = COLUMNS[k].name;
        // A JSON null read into a jsonb field is the JSON value null: store SQL NULL instead.
        const value = SETTABLE[k] === 'jsonb' ? `nullif(x."v_${k}", 'null'::jsonb)` : `x."v_${k}"`;
        return `"${col}" = case when coalesce(x."set_${k}", false) then ${value} else p."${col}" end`;
      })
      .join(',\n      '),
  );
  const now = sql`${p.now}::timestamptz`;
  const until = sql`${p.until}::timestamptz`;
  const sending = sql`${p.sending}::jsonb`;
  return sql`
    with input as (
      select * from jsonb_to_recordset(${p.input}::jsonb) as x(${recordType})
    ),
    -- Attempts to complete, locked and still in the state they were seen in: a transition
    -- whose attempt another driver moved first does not apply at all.
    held as (
      select a.id, x.id as request_id
      from order_attempts a join input x on a.id = x.complete_id and a.state = x.complete_from
      where a.id = any(array(select complete_id from input where complete_id is not null))
      for update of a
    ),
    -- Rows are locked in id order before any is written, so two batches touching the same
    -- requests wait for each other instead of deadlocking. What they were is kept for the outbox.
    locked as (
      select p.id, p.status as old_status, (p.best_offer ->> 'totalCents')::int as old_total
      from purchase_requests p where p.id = any(array(select id from input)) order by p.id for update of p
    ),
    written as (
      update purchase_requests p set
      ${assignments},
      revision = p.revision + 1
      from input x
      where p.id = x.id and p.revision = x.rev and p.id = any(array(select id from locked))
        and (x.complete_id is null or exists (select 1 from held h where h.request_id = x.id))
      returning p.*
    ),
    completed as (
      update order_attempts a set
        state = 'succeeded', payment_state = 'captured', next_check_at = null,
        lease_owner = null, lease_expires_at = null, updated_at = w.updated_at
      from written w join input x on x.id = w.id
      where a.id = x.complete_id and a.id = any(array(select id from held))
      returning a.*
    ),
    started as (
      insert into order_attempts
        (id, request_id, attempt_no, seller_id, offer, idempotency_key, state, payment_state,
         lease_owner, lease_expires_at, next_check_at, created_at, updated_at)
      select x.start_id, w.id, n.no, x.start_seller, x.start_offer, w.id::text || ':' || n.no,
        'authorizing', 'none', x.start_lease_owner, x.start_lease_until, x.start_check_at,
        w.updated_at, w.updated_at
      from written w join input x on x.id = w.id
      cross join lateral (
        select coalesce(max(o.attempt_no), 0) + 1 as no from order_attempts o where o.request_id = w.id
      ) n
      where x.start_id is not null
      returning *
    ),
    logged as (
      insert into request_events (request_id, revision, at, type, status, message, data)
      select w.id, w.revision, w.updated_at, x.type, w.status, x.message, nullif(x.data, 'null'::jsonb)
      from written w join input x on x.id = w.id
    ),
    -- The webhook outbox, in the same statement as the change it reports (API.md "Webhooks"): one
    -- row per outcome and endpoint of the request's user that asked for it. An outcome is a new
    -- status, or QUOTED again with a lower best total; the request as written is the payload.
    outbound as (
      select w.id as request_id, w.revision, w.updated_at, e.id as endpoint_id,
        jsonb_build_object('id', w.id, 'status', w.status, 'revision', w.revision, 'bestOffer', w.best_offer,
          'order', w.order_details, 'failureReason', w.failure_reason, 'at', w.updated_at) as payload,
        ${p.owner}::text is not null and (e.paused_until is null or e.paused_until <= ${now})
          and not ${earlierRevisionPending(sql`e.id`, sql`w.id`, sql`w.revision`)} as may_lease
      from written w
      join locked l on l.id = w.id
      join webhook_endpoints e on e.user_id = w.user_id and e.enabled and e.events @> jsonb_build_array(w.status)
      where w.status in (${WEBHOOK_STATUSES_SQL})
        and (w.status <> l.old_status or (w.status = 'QUOTED' and (w.best_offer ->> 'totalCents')::int < l.old_total))
    ),
    -- Direct dispatch: which of them this instance takes, within each endpoint's free slots.
    fitting as (
      select o.*, o.may_lease and busy.n + row_number() over (partition by o.endpoint_id, o.may_lease order by o.request_id) <= ${p.perEndpoint}::int as fits
      from outbound o
      cross join lateral (select case when o.may_lease then ${inFlightTo(sql`o.endpoint_id`, now, sql`${p.owner}::text`, sending)} else 0 end as n) busy
    ),
    chosen as (
      select f.*, f.fits and row_number() over (partition by f.fits order by f.endpoint_id, f.request_id) <= ${p.room}::int as leased
      from fitting f
    ),
    notified as (
      insert into webhook_outbox
        (webhook_id, endpoint_id, request_id, revision, payload, state, next_attempt_at, created_at,
         attempts, retry_since, lease_owner, lease_expires_at)
      select 'msg_' || replace(gen_random_uuid()::text, '-', ''), c.endpoint_id, c.request_id, c.revision, c.payload,
        'pending', c.updated_at, c.updated_at,
        case when c.leased then 1 else 0 end, case when c.leased then ${now} end,
        case when c.leased then ${p.owner}::text end, case when c.leased then ${until} end
      from chosen c
      returning *
    )
    select w.*, to_jsonb(c) as completed_attempt, to_jsonb(s) as started_attempt,
      (select jsonb_agg(jsonb_build_object('row', to_jsonb(n), 'url', e.url, 'secret', e.secret))
       from notified n join webhook_endpoints e on e.id = n.endpoint_id
       where n.request_id = w.id and n.lease_owner is not null) as outbox_direct,
      (select count(*)::int from notified n where n.request_id = w.id and n.lease_owner is null) as outbox_queued
    from written w
    left join completed c on c.request_id = w.id
    left join started s on s.request_id = w.id`;
});

/** A JSON column as either driver hands it back: parsed already, or as text. */
const parsed = (value: unknown): unknown => (typeof value === 'string' ? JSON.parse(value) : value);

const toAttemptRow = rowMapper<AttemptRow>(orderAttempts);
