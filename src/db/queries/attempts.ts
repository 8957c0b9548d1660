import { and, asc, eq, gt, isNull, lte, or, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { isAnyOf } from './ids.js';
import { type AttemptRow, orderAttempts, purchaseRequests } from '../schema.js';
import type { AttemptState } from '../../domain/types.js';

export type AttemptChanges = Partial<Omit<AttemptRow, 'id' | 'requestId' | 'attemptNo' | 'sellerId' | 'idempotencyKey' | 'createdAt'>>;

/**
 * Unfinished, written as literals exactly as in the partial indexes' predicates
 * (order_attempts_due_idx, order_attempts_attention_idx), so the planner can always prove a query
 * matches them: a bound parameter list would not, in a generic plan.
 */
const isUnfinished = sql`${orderAttempts.state} not in ('succeeded','failed')`;

export async function nextAttemptNo(ex: Executor, requestId: string): Promise<number> {
  const [row] = await ex
    .select({ n: sql<number>`coalesce(max(${orderAttempts.attemptNo}), 0)::int` })
    .from(orderAttempts)
    .where(eq(orderAttempts.requestId, requestId));
  return (row?.n ?? 0) + 1;
}

export async function findAttempt(ex: Executor, id: string): Promise<AttemptRow | null> {
  const [row] = await ex.select().from(orderAttempts).where(eq(orderAttempts.id, id));
  return row ?? null;
}

/** Moves an attempt on from the state it was seen in; null when it had already moved. */
export async function advanceAttempt(ex: Executor, id: string, from: AttemptState, changes: AttemptChanges & { updatedAt: Date }): Promise<AttemptRow | null> {
  const [row] = await ex
    .update(orderAttempts)
    .set(changes)
    .where(and(eq(orderAttempts.id, id), eq(orderAttempts.state, from)))
    .returning();
  return row ?? null;
}

export async function attemptsForRequests(ex: Executor, requestIds: readonly string[]): Promise<AttemptRow[]> {
  if (requestIds.length === 0) return [];
  return ex
    .select()
    .from(orderAttempts)
    .where(isAnyOf(orderAttempts.requestId, requestIds))
    .orderBy(asc(orderAttempts.requestId), asc(orderAttempts.attemptNo));
}

/**
 * Claims unfinished attempts that are due for a check and not leased by a live instance: the
 * reconciler's work after a crash, a timeout, or an unknown outcome.
 */
export async function claimDueAttempts(
  ex: Executor,
  q: { owner: string; now: Date; leaseUntil: Date; limit: number },
): Promise<AttemptRow[]> {
  // Every step of an attempt leaves a dead entry in order_attempts_due_idx, and a bitmap scan
  // (what the planner picks for a range it expects to be small) visits them all, every pass,
  // until a VACUUM. A probe — the first due entry, by a plain index scan that marks dead entries
  // as it passes them — gates the claim, which therefore runs only when something is due.
  const firstDue = ex
    .select({ at: orderAttempts.nextCheckAt })
    .from(orderAttempts)
    .where(and(isUnfinished, lte(orderAttempts.nextCheckAt, q.now)))
    .orderBy(asc(orderAttempts.nextCheckAt))
    .limit(1);
  const due = ex
    .select({ id: orderAttempts.id })
    .from(orderAttempts)
    .where(
      and(
        isUnfinished,
        lte(orderAttempts.nextCheckAt, q.now),
        or(isNull(orderAttempts.leaseExpiresAt), lte(orderAttempts.leaseExpiresAt, q.now)),
        sql`(${firstDue}) is not null`,
      ),
    )
    .orderBy(asc(orderAttempts.nextCheckAt))
    .limit(q.limit)
    .for('update', { skipLocked: true });
  return ex
    .update(orderAttempts)
    .set({ leaseOwner: q.owner, leaseExpiresAt: q.leaseUntil })
    // By id from an array, not `in (subquery)`: a semi-join may be planned as a hash over every attempt.
    .where(sql`${orderAttempts.id} = any(array(${due}))`)
    .returning();
}

/**
 * Requests left in ORDERING with no unfinished attempt and none finished since `quietSince`
 * (a crash between a refusal and the next step); recent ones are still being handled.
 *
 * The attempts are looked up per ORDERING request by a correlated subquery with LIMIT rather
 * than NOT EXISTS: the planner may turn an anti-join into a hash of every attempt ever made
 * (it does on a database never analysed), and this runs every reconciliation pass.
 */
export async function orphanedOrdering(ex: Executor, now: Date, quietSince: Date, limit: number): Promise<string[]> {
  const busy = ex
    .select({ one: sql`1` })
    .from(orderAttempts)
    .where(and(eq(orderAttempts.requestId, purchaseRequests.id), or(isUnfinished, gt(orderAttempts.updatedAt, quietSince))))
    .limit(1);
  const rows = await ex
    .select({ id: purchaseRequests.id })
    .from(purchaseRequests)
    .where(
      and(
        sql`${purchaseRequests.status} = 'ORDERING'`,
        or(isNull(purchaseRequests.leaseExpiresAt), lte(purchaseRequests.leaseExpiresAt, now)),
        sql`(${busy}) is null`,
      ),
    )
    .limit(limit);
  return rows.map((r) => r.id);
}

export async function attemptsNeedingAttention(ex: Executor): Promise<AttemptRow[]> {
  return ex
    .select()
    .from(orderAttempts)
    .where(and(sql`${orderAttempts.needsAttention}`, isUnfinished))
    .orderBy(asc(orderAttempts.createdAt));
}

export async function findAttemptByKey(ex: Executor, idempotencyKey: string): Promise<AttemptRow | null> {
  const [row] = await ex.select().from(orderAttempts).where(eq(orderAttempts.idempotencyKey, idempotencyKey));
  return row ?? null;
}
