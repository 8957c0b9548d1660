import { and, asc, eq, gt, inArray, isNull, lte, notExists, notInArray, or, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { type AttemptRow, orderAttempts, purchaseRequests } from '../schema.js';
import type { AttemptState } from '../../domain/types.js';

export type NewAttemptRow = typeof orderAttempts.$inferInsert;
export type AttemptChanges = Partial<Omit<AttemptRow, 'id' | 'requestId' | 'attemptNo' | 'sellerId' | 'idempotencyKey' | 'createdAt'>>;

const FINISHED: AttemptState[] = ['succeeded', 'failed'];

export async function insertAttempt(ex: Executor, row: NewAttemptRow): Promise<AttemptRow> {
  const [inserted] = await ex.insert(orderAttempts).values(row).returning();
  return inserted!;
}

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
    .where(inArray(orderAttempts.requestId, [...requestIds]))
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
  const due = ex
    .select({ id: orderAttempts.id })
    .from(orderAttempts)
    .where(
      and(
        notInArray(orderAttempts.state, FINISHED),
        lte(orderAttempts.nextCheckAt, q.now),
        or(isNull(orderAttempts.leaseExpiresAt), lte(orderAttempts.leaseExpiresAt, q.now)),
      ),
    )
    .orderBy(asc(orderAttempts.nextCheckAt))
    .limit(q.limit)
    .for('update', { skipLocked: true });
  return ex
    .update(orderAttempts)
    .set({ leaseOwner: q.owner, leaseExpiresAt: q.leaseUntil })
    .where(inArray(orderAttempts.id, due))
    .returning();
}

/**
 * Requests left in ORDERING with no unfinished attempt and none finished since `quietSince`
 * (a crash between a refusal and the next step); recent ones are still being handled.
 */
export async function orphanedOrdering(ex: Executor, now: Date, quietSince: Date, limit: number): Promise<string[]> {
  const rows = await ex
    .select({ id: purchaseRequests.id })
    .from(purchaseRequests)
    .where(
      and(
        sql`${purchaseRequests.status} = 'ORDERING'`,
        or(isNull(purchaseRequests.leaseExpiresAt), lte(purchaseRequests.leaseExpiresAt, now)),
        notExists(
          ex
            .select({ one: sql`1` })
            .from(orderAttempts)
            .where(
              and(
                eq(orderAttempts.requestId, purchaseRequests.id),
                or(notInArray(orderAttempts.state, FINISHED), gt(orderAttempts.updatedAt, quietSince)),
              ),
            ),
        ),
      ),
    )
    .limit(limit);
  return rows.map((r) => r.id);
}

export async function attemptsNeedingAttention(ex: Executor): Promise<AttemptRow[]> {
  return ex
    .select()
    .from(orderAttempts)
    .where(and(eq(orderAttempts.needsAttention, true), notInArray(orderAttempts.state, FINISHED)))
    .orderBy(asc(orderAttempts.createdAt));
}

export async function findAttemptByKey(ex: Executor, idempotencyKey: string): Promise<AttemptRow | null> {
  const [row] = await ex.select().from(orderAttempts).where(eq(orderAttempts.idempotencyKey, idempotencyKey));
  return row ?? null;
}
