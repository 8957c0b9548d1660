import { sql } from 'drizzle-orm';
import { type Executor, rowsOf } from '../client.js';

/** One lease to hand back, as `releaseRequest` takes it. */
export interface Release {
  id: string;
  owner: string;
  seenRevision: number;
  nextRunAt: Date | null;
  watchCount?: number;
  force?: boolean;
}

/**
 * Ends leases on many requests in one statement: each is released only if `owner` still holds
 * it, and its next due time is set — unless the request changed since `seenRevision` (the user
 * updated it: its own due time stands) and the release is not forced. The watch count likewise.
 * The batch form of `releaseRequest`.
 */
export async function releaseRequests(ex: Executor, batch: readonly Release[]): Promise<void> {
  if (batch.length === 0) return;
  const input = batch.map((r) => ({
    id: r.id,
    owner: r.owner,
    rev: r.seenRevision,
    next: r.nextRunAt ? r.nextRunAt.toISOString() : null,
    watch: r.watchCount ?? null,
    force: r.force ?? false,
  }));
  await ex.execute(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb)
        as x(id uuid, owner text, rev int, next timestamptz, watch int, force boolean)
    ),
    -- Locked in id order first, so batches touching the same requests never deadlock.
    locked as (
      select p.id from purchase_requests p where p.id = any(array(select id from input)) order by p.id for update of p
    )
    update purchase_requests p set
      lease_owner = null,
      lease_expires_at = null,
      next_run_at = case when x.force or p.revision = x.rev then x.next else p.next_run_at end,
      watch_count = case
        when x.watch is null then p.watch_count
        when x.force or p.revision = x.rev then x.watch
        else 0 end
    from input x
    where p.id = x.id and p.lease_owner = x.owner and p.id = any(array(select id from locked))`);
}

/**
 * A stopping instance hands back the requests it is still working on: each lease `owner` holds
 * ends now and a request still searchable is due now, so another instance claims it at once
 * instead of waiting for the lease to lapse. A lease another instance holds is never touched.
 * Returns how many were handed back.
 */
export async function handBackRequests(ex: Executor, q: { owner: string; ids: readonly string[]; now: Date }): Promise<number> {
  if (q.ids.length === 0) return 0;
  const now = sql`${q.now.toISOString()}::timestamptz`;
  const result = await ex.execute(sql`
    with input as (
      select x::uuid as id from jsonb_array_elements_text(${JSON.stringify(q.ids)}::jsonb) as x
    ),
    -- Locked in id order first, like every batch of releases, so they never deadlock.
    locked as (
      select p.id from purchase_requests p where p.id = any(array(select id from input)) order by p.id for update of p
    )
    update purchase_requests p set
      lease_owner = null,
      lease_expires_at = null,
      next_run_at = case when p.status in ('PENDING','SEARCHING','QUOTED','OUT_OF_STOCK') then least(coalesce(p.next_run_at, ${now}), ${now}) else p.next_run_at end
    where p.id = any(array(select id from locked)) and p.lease_owner = ${q.owner}
    returning p.id`);
  return rowsOf(result).length;
}

/**
 * Order attempts an instance claimed but has not started driving (it began to stop meanwhile):
 * nothing was sent for them, so they are handed back as they are, due when they were due.
 */
export async function releaseAttempts(ex: Executor, q: { owner: string; ids: readonly string[] }): Promise<void> {
  if (q.ids.length === 0) return;
  await ex.execute(sql`
    update order_attempts a set lease_owner = null, lease_expires_at = null
    where a.id = any(array(select x::uuid from jsonb_array_elements_text(${JSON.stringify(q.ids)}::jsonb) as x))
      and a.lease_owner = ${q.owner}`);
}

/**
 * A stopping instance's hold on the order attempts it is still driving when its grace ends. Such
 * an attempt may have a seller call in flight, and handing it over at once would let a second
 * driver send the same order while the first is still being answered. But no call of this
 * instance outlives its own deadline (sent by `now`, it ends by `now` + the seller's timeout —
 * the point after which the driver itself sends the same key again), so the hold is cut to that
 * instead of running for the whole lease; another instance's reconciler resumes the attempt from
 * its row then. Only attempts `owner` holds are touched; the hold is never lengthened, and an
 * attempt left for an operator (no check due) stays so. Returns how many were cut.
 */
export async function cutAttemptHolds(ex: Executor, q: { owner: string; now: Date }): Promise<number> {
  const now = sql`${q.now.toISOString()}::timestamptz`;
  // The live states written as literals, as in order_attempts_due_idx's predicate: a scan of the
  // unfinished attempts, not of every attempt ever made.
  const result = await ex.execute(sql`
    with held as (
      select a.id, ${now} + s.timeout_ms * interval '1 millisecond' as until
      from order_attempts a join sellers s on s.id = a.seller_id
      where a.state not in ('succeeded','failed') and a.lease_owner = ${q.owner}
      order by a.id
      for update of a
    )
    update order_attempts a set
      lease_expires_at = least(a.lease_expires_at, h.until),
      next_check_at = case when a.next_check_at is null then null else least(a.next_check_at, h.until) end
    from held h
    where a.id = h.id and a.lease_owner = ${q.owner}
    returning a.id`);
  return rowsOf(result).length;
}
