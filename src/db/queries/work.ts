import { and, asc, eq, gt, inArray, isNull, lte, or, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { purchaseRequests, type RequestRow } from '../schema.js';
import type { RequestStatus } from '../../domain/types.js';
import { SEARCHABLE } from '../../domain/statuses.js';

/**
 * The same set written as literals, exactly as in the partial indexes' predicates: a bound
 * parameter list would keep the planner from proving a query matches those indexes (generic
 * prepared plans), and these queries run on every engine tick.
 */
const isSearchable = sql`${purchaseRequests.status} in ('PENDING','SEARCHING','QUOTED','OUT_OF_STOCK')`;

/**
 * Claims up to `limit` requests whose work is due and whose lease is free or expired, leasing
 * them to `owner`. SKIP LOCKED lets several instances claim side by side without waiting.
 */
export async function claimDueRequests(
  ex: Executor,
  q: { owner: string; now: Date; leaseUntil: Date; limit: number },
): Promise<RequestRow[]> {
  if (q.limit <= 0) return [];
  const due = ex
    .select({ id: purchaseRequests.id })
    .from(purchaseRequests)
    .where(
      and(
        lte(purchaseRequests.nextRunAt, q.now),
        isSearchable,
        or(isNull(purchaseRequests.leaseExpiresAt), lte(purchaseRequests.leaseExpiresAt, q.now)),
      ),
    )
    .orderBy(asc(purchaseRequests.nextRunAt))
    .limit(q.limit)
    .for('update', { skipLocked: true });
  return ex
    .update(purchaseRequests)
    .set({ leaseOwner: q.owner, leaseExpiresAt: q.leaseUntil })
    .where(inArray(purchaseRequests.id, due))
    .returning();
}

/** Extends the leases this owner holds on the given requests. */
export async function extendLeases(ex: Executor, owner: string, ids: readonly string[], until: Date): Promise<void> {
  if (ids.length === 0) return;
  await ex
    .update(purchaseRequests)
    .set({ leaseExpiresAt: until })
    .where(and(eq(purchaseRequests.leaseOwner, owner), inArray(purchaseRequests.id, [...ids])));
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
 * The next moment anything is due: the earliest unleased work, or the earliest deadline of an
 * active request. Two ORDER BY … LIMIT 1 reads that the partial indexes answer directly; an
 * expired lease is found by the regular poll.
 */
export async function nextDueAt(ex: Executor, now: Date): Promise<Date | null> {
  const [work] = await ex
    .select({ at: purchaseRequests.nextRunAt })
    .from(purchaseRequests)
    .where(
      and(
        sql`${purchaseRequests.nextRunAt} is not null`,
        isSearchable,
        or(isNull(purchaseRequests.leaseExpiresAt), lte(purchaseRequests.leaseExpiresAt, now)),
      ),
    )
    .orderBy(asc(purchaseRequests.nextRunAt))
    .limit(1);
  const [deadline] = await ex
    .select({ at: purchaseRequests.expiresAt })
    .from(purchaseRequests)
    .where(isSearchable)
    .orderBy(asc(purchaseRequests.expiresAt))
    .limit(1);
  const times = [work?.at, deadline?.at].filter((d): d is Date => d instanceof Date);
  return times.length ? new Date(Math.min(...times.map((d) => d.getTime()))) : null;
}

/** Makes watching requests for a book due now, because offers for it changed. */
export async function wakeWatchers(ex: Executor, bookKey: string, now: Date): Promise<number> {
  const rows = await ex
    .update(purchaseRequests)
    .set({ nextRunAt: now })
    .where(
      and(
        eq(purchaseRequests.bookKey, bookKey),
        sql`${purchaseRequests.status} in ('QUOTED','OUT_OF_STOCK')`,
        gt(purchaseRequests.nextRunAt, now),
      ),
    )
    .returning({ id: purchaseRequests.id });
  return rows.length;
}

/** Requests waiting for the engine. */
export async function countPending(ex: Executor): Promise<number> {
  const [row] = await ex.select({ n: sql<number>`count(*)::int` }).from(purchaseRequests).where(sql`${purchaseRequests.status} = 'PENDING'`);
  return row?.n ?? 0;
}

/** For PENDING requests: how many PENDING requests are ahead of each (0 = next). */
export async function queuePositions(ex: Executor, ids: readonly string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  // The outer column is named in full: inside the subquery a bare "seq" would mean ahead.seq.
  const ahead = sql<number>`(select count(*)::int from ${purchaseRequests} as ahead where ahead.status = 'PENDING' and ahead.seq < ${sql.raw('"purchase_requests"."seq"')})`;
  const rows = await ex
    .select({ id: purchaseRequests.id, ahead })
    .from(purchaseRequests)
    .where(and(inArray(purchaseRequests.id, [...ids]), sql`${purchaseRequests.status} = 'PENDING'`));
  return new Map(rows.map((r) => [r.id, Number(r.ahead)]));
}

/** The oldest work that is due and not being worked on (queue lag), or null when nothing waits. */
export async function oldestDue(ex: Executor, now: Date): Promise<Date | null> {
  const [row] = await ex
    .select({ at: purchaseRequests.nextRunAt })
    .from(purchaseRequests)
    .where(
      and(
        lte(purchaseRequests.nextRunAt, now),
        isSearchable,
        or(isNull(purchaseRequests.leaseExpiresAt), lte(purchaseRequests.leaseExpiresAt, now)),
      ),
    )
    .orderBy(asc(purchaseRequests.nextRunAt))
    .limit(1);
  return row?.at ?? null;
}
