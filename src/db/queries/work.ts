import { type SQL, and, asc, eq, lte, sql } from 'drizzle-orm';
import { type Executor, rowsOf } from '../client.js';
import { statement } from '../statement.js';
import { toRequestRow } from './requests.js';
import { isAnyOf } from './ids.js';
import { purchaseRequests, type RequestRow } from '../schema.js';
import type { RequestStatus } from '../../domain/types.js';
import { SEARCHABLE } from '../../domain/statuses.js';

/**
 * The same set written as literals, exactly as in the partial indexes' predicates: a bound
 * parameter list would keep the planner from proving a query matches those indexes (generic
 * prepared plans), and these queries run on every engine tick.
 */
const isSearchable = sql`${purchaseRequests.status} in ('PENDING','SEARCHING','QUOTED','OUT_OF_STOCK')`;
/** Searchable and not leased: the predicate of purchase_requests_unleased_due_idx. */
const isUnleased = sql`${isSearchable} and ${purchaseRequests.leaseExpiresAt} is null`;
const t = purchaseRequests;

/**
 * Claims up to `limit` requests whose work is due and whose lease is free or expired, leasing
 * them to `owner`. SKIP LOCKED lets several instances claim side by side without waiting.
 *
 * Free work and lapsed leases are read from two indexes, each range locked as it is read: an
 * index over every active request would make each claim walk over the requests being worked on
 * (their due time is past while they are leased), and the lapsed range is empty unless an
 * instance died. Together they are exactly `lease_expires_at is null or lease_expires_at <= now`;
 * rows of the two ranges beyond `limit` stay locked only until this statement ends.
 */
export async function claimDueRequests(
  ex: Executor,
  q: { owner: string; now: Date; leaseUntil: Date; limit: number },
): Promise<RequestRow[]> {
  if (q.limit <= 0) return [];
  const rows = rowsOf<Record<string, unknown>>(
    await ex.execute(claimStatement({ owner: q.owner, now: q.now.toISOString(), until: q.leaseUntil.toISOString(), limit: q.limit })),
  );
  return rows.map(toRequestRow);
}

/** The claim, rendered once: it runs on every engine tick. */
const claimStatement = statement(['owner', 'now', 'until', 'limit'], (p) => {
  const now = sql`${p.now}::timestamptz`;
  const limit = sql`${p.limit}::int`;
  const due = sql`select id from (
      select id, next_run_at from (
        select ${t.id}, ${t.nextRunAt} from ${t}
        where ${isUnleased} and ${t.nextRunAt} <= ${now}
        order by ${t.nextRunAt} limit ${limit}
        for update skip locked
      ) free
      union all
      select id, next_run_at from (
        select ${t.id}, ${t.nextRunAt} from ${t}
        where ${isLapsed(now)} and ${t.nextRunAt} <= ${now}
        order by ${t.nextRunAt} limit ${limit}
        for update skip locked
      ) lapsed
    ) claimable
    order by next_run_at limit ${limit}`;
  // By id from an array, not `in (subquery)`: a semi-join may be planned as a hash over the table.
  return sql`update ${t} set lease_owner = ${p.owner}::text, lease_expires_at = ${p.until}::timestamptz
    where ${t.id} = any(array(${due}))
    returning *`;
});

/**
 * Extends the leases this owner holds on the given requests. The rows are locked in id order
 * first, as every batch that writes many requests locks them (transitions, releases): two such
 * statements over the same requests wait for each other instead of deadlocking, which under load
 * failed whole heartbeats.
 */
export async function extendLeases(ex: Executor, owner: string, ids: readonly string[], until: Date): Promise<void> {
  if (ids.length === 0) return;
  await ex.execute(sql`
    with locked as (
      select id from purchase_requests
      where ${isAnyOf(purchaseRequests.id, ids)} and lease_owner = ${owner}::text
      order by id for update
    )
    update purchase_requests set lease_expires_at = ${until.toISOString()}::timestamptz
    where id = any(array(select id from locked)) and lease_owner = ${owner}::text`);
}

/**
 * Ends this owner's lease on a request and sets when it is next due. If the request changed since
 * `seenRevision` (the user updated it), its own due time stands: the change asked for prompt work
 * — unless `force` (after a failure, the backoff must hold whatever happened meanwhile).
 */
export async function releaseRequest(
  ex: Executor,
  q: { id: string; owner: string; seenRevision: number; nextRunAt: Date | null; watchCount?: number; force?: boolean },
): Promise<void> {
  // Dates go in as ISO text with a cast: postgres.js does not encode a Date inside a raw fragment.
  const next = sql`${q.nextRunAt ? q.nextRunAt.toISOString() : null}::timestamptz`;
  const unchanged = q.force ? sql`true` : sql`${purchaseRequests.revision} = ${q.seenRevision}`;
  await ex
    .update(purchaseRequests)
    .set({
      leaseOwner: null,
      leaseExpiresAt: null,
      nextRunAt: sql`case when ${unchanged} then ${next} else ${purchaseRequests.nextRunAt} end`,
      ...(q.watchCount !== undefined ? { watchCount: sql`case when ${unchanged} then ${q.watchCount}::int else 0 end` } : {}),
    })
    .where(and(eq(purchaseRequests.id, q.id), eq(purchaseRequests.leaseOwner, q.owner)));
}

/** Requests still waiting for an outcome whose deadline has passed. */
export async function findExpiredActive(ex: Executor, now: Date, limit: number): Promise<string[]> {
  const rows = await ex
    .select({ id: purchaseRequests.id })
    .from(purchaseRequests)
    .where(and(isSearchable, lte(purchaseRequests.expiresAt, now)))
    .orderBy(asc(purchaseRequests.expiresAt))
    .limit(limit);
  return rows.map((r) => r.id);
}

/**
 * The next moment anything is due: the earliest unleased work (or work whose lease lapsed), or
 * the earliest deadline of an active request. One statement of three ORDER BY … LIMIT 1 reads
 * that the partial indexes answer directly.
 */
export async function nextDueAt(ex: Executor, now: Date): Promise<Date | null> {
  const { work, expiry } = await nextDue(ex, now);
  if (!work || !expiry) return work ?? expiry;
  return work <= expiry ? work : expiry;
}

/** `nextDueAt` in its two parts: the earliest due work, and the earliest deadline of an active request. */
export async function nextDue(ex: Executor, now: Date): Promise<{ work: Date | null; expiry: Date | null }> {
  const row = rowsOf<{ work: unknown; expiry: unknown }>(await ex.execute(nextDueStatement({ now: now.toISOString() })))[0];
  return { work: dateOf(row?.work), expiry: dateOf(row?.expiry) };
}

/** Rendered once: every engine tick asks it. */
const nextDueStatement = statement(['now'], (p) => sql`select least(
      (select ${t.nextRunAt} from ${t} where ${isUnleased} and ${t.nextRunAt} is not null order by ${t.nextRunAt} limit 1),
      (select ${t.nextRunAt} from ${t} where ${isLapsed(sql`${p.now}::timestamptz`)} and ${t.nextRunAt} is not null order by ${t.nextRunAt} limit 1)
    ) as work,
    (select ${t.expiresAt} from ${t} where ${isSearchable} order by ${t.expiresAt} limit 1) as expiry`);

/**
 * Makes watching requests due now, for each book whose offers changed `at` a moment: one
 * statement for the changes of many rounds. A request written since (`updated_at` at or after its
 * book's `at`) was decided with those offers already — the members of the very round that found
 * them settle just after it ends — and is left alone: waking it would search again at once for
 * nothing. Returns how many were woken.
 */
export async function wakeWatchers(ex: Executor, changes: readonly { bookKey: string; at: Date }[]): Promise<number> {
  // A book changed twice: its latest change covers the earlier (those due by then are due now).
  const latest = new Map<string, number>();
  for (const c of changes) latest.set(c.bookKey, Math.max(latest.get(c.bookKey) ?? 0, c.at.getTime()));
  if (latest.size === 0) return 0;
  const input = [...latest].map(([book_key, at]) => ({ book_key, at: new Date(at).toISOString() }));
  const rows = rowsOf<{ id: string }>(
    await ex.execute(sql`
      with input as (
        select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb) as x(book_key text, at timestamptz)
      ), woken as (
        -- Book by book, each a range of purchase_requests_watching_idx: only watchers not yet due.
        select w.id, i.at from input i
        cross join lateral (
          select p.id from purchase_requests p
          where p.book_key = i.book_key and p.status in ('QUOTED','OUT_OF_STOCK') and p.next_run_at > i.at and p.updated_at < i.at
          -- Kept a subquery (not flattened into a hash join over every watcher), so it runs per book.
          offset 0
        ) w
      )
      update purchase_requests p set next_run_at = w.at
      from woken w
      -- By id from an array: a join with the list may be planned as a hash over the table.
      where p.id = any(array(select id from woken)) and p.id = w.id
      returning p.id`),
  );
  return rows.length;
}

/**
 * An upper bound on the requests waiting for the engine, from two index look-ups: every PENDING
 * request's seq lies between the lowest and the highest waiting (0 when none waits).
 */
export async function pendingSpan(ex: Executor): Promise<number> {
  const result = await ex.execute(sql`select coalesce(
      (select ${t.seq} from ${t} where ${t.status} = 'PENDING' order by ${t.seq} desc limit 1)
      - (select ${t.seq} from ${t} where ${t.status} = 'PENDING' order by ${t.seq} limit 1) + 1, 0)::int as n`);
  return Number(rowsOf<{ n: number }>(result)[0]?.n ?? 0);
}

/**
 * Requests waiting for the engine, counted up to `atMost`: the caller only needs to know whether
 * the backlog is full, and a full backlog must not cost a read of every waiting request.
 */
export async function countPending(ex: Executor, atMost: number): Promise<number> {
  const result = await ex.execute(
    sql`select count(*)::int as n from (select 1 from ${t} where ${t.status} = 'PENDING' limit ${Math.max(0, Math.floor(atMost))}) waiting`,
  );
  return Number(rowsOf<{ n: number }>(result)[0]?.n ?? 0);
}

/**
 * For PENDING requests: how many PENDING requests are ahead of each (0 = next), exactly. One
 * pass over the PENDING index up to the last request asked about: it reads one index entry per
 * request ahead of that one (bounded by the backlog limit), never the table.
 */
export async function queuePositions(ex: Executor, ids: readonly string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const result = await ex.execute(sql`
    with asked as (
      select ${t.id}, ${t.seq} from ${t} where ${isAnyOf(t.id, ids)} and ${t.status} = 'PENDING'
    ), ranked as (
      select ${t.seq}, (row_number() over (order by ${t.seq}) - 1)::int as ahead from ${t}
      where ${t.status} = 'PENDING' and ${t.seq} <= (select max(seq) from asked)
    )
    select asked.id, ranked.ahead from asked join ranked on ranked.seq = asked.seq`);
  return new Map(rowsOf<{ id: string; ahead: number }>(result).map((r) => [r.id, Number(r.ahead)]));
}

/** The oldest work that is due and not being worked on (queue lag), or null when nothing waits. */
export async function oldestDue(ex: Executor, now: Date): Promise<Date | null> {
  const result = await ex.execute(sql`select least(
      (select ${t.nextRunAt} from ${t} where ${isUnleased} and ${t.nextRunAt} <= ${at(now)} order by ${t.nextRunAt} limit 1),
      (select ${t.nextRunAt} from ${t} where ${isLapsed(at(now))} and ${t.nextRunAt} <= ${at(now)} order by ${t.nextRunAt} limit 1)
    ) as at`);
  return dateOf(rowsOf<{ at: unknown }>(result)[0]?.at);
}

/**
 * Searchable with a lease that lapsed by `now`, behind a probe. Every lease taken, extended or
 * handed back leaves a dead entry in purchase_requests_lease_expiry_idx with a time soon past,
 * and only a plain index scan marks such entries dead for later scans: a bitmap scan (what the
 * planner picks for a range it expects to be small) visits them all, every time, until a VACUUM.
 * The probe — the first entry of the range, a plain index scan that stops at the first live one
 * — gates the read, which therefore runs only when some lease has lapsed.
 */
function isLapsed(now: SQL): SQL {
  const first = sql`select ${t.leaseExpiresAt} from ${t} where ${isSearchable} and ${t.leaseExpiresAt} <= ${now} order by ${t.leaseExpiresAt} limit 1`;
  return sql`${isSearchable} and ${t.leaseExpiresAt} <= ${now} and (${first}) is not null`;
}

/** A time as a query parameter: postgres.js does not encode a Date inside a raw fragment. */
function at(d: Date): SQL {
  return sql`${d.toISOString()}::timestamptz`;
}

/** A timestamptz read by a raw statement: text on postgres.js, a Date on PGlite, or null. */
function dateOf(v: unknown): Date | null {
  return v === null || v === undefined ? null : (t.nextRunAt.mapFromDriverValue(v as string) as Date);
}
