import { and, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import { QueryBuilder } from 'drizzle-orm/pg-core';
import { type Executor, rowsOf } from '../client.js';
import { statement } from '../statement.js';
import { rowMapper } from './rows.js';
import { uuidArray } from './ids.js';
import { purchaseRequests, type RequestRow } from '../schema.js';
import type { RequestStatus } from '../../domain/types.js';

export type NewRequestRow = Omit<typeof purchaseRequests.$inferInsert, 'seq'>;
/** Columns a guarded write may change; revision and updatedAt are set by the write itself. */
export type RequestChanges = Partial<Omit<RequestRow, 'id' | 'seq' | 'userId' | 'revision' | 'createdAt'>>;

export async function insertRequest(ex: Executor, row: NewRequestRow): Promise<RequestRow> {
  const [inserted] = await ex.insert(purchaseRequests).values(row).returning();
  return inserted!;
}

export async function findRequestById(ex: Executor, id: string): Promise<RequestRow | null> {
  const [row] = await ex.select().from(purchaseRequests).where(eq(purchaseRequests.id, id));
  return row ?? null;
}

export async function findRequestsByIds(ex: Executor, ids: readonly string[]): Promise<RequestRow[]> {
  if (ids.length === 0) return [];
  return rowsOf<Record<string, unknown>>(await ex.execute(byIdsStatement({ ids: uuidArray(ids) }))).map(toRequestRow);
}

/** The engine's batched reads (a tick's reloads, a subscription's first state), rendered once. */
const byIdsStatement = statement(['ids'], (p) => new QueryBuilder().select().from(purchaseRequests).where(sql`${purchaseRequests.id} = any(${p.ids}::uuid[])`).getSQL());
/** A request row as raw SQL returns it (RETURNING, `execute`), in the shape drizzle's selects give. */
export const toRequestRow = rowMapper<RequestRow>(purchaseRequests);

/** A user's requests, newest first, strictly older than `beforeSeq` when given. */
export async function listRequestsForUser(
  ex: Executor,
  q: { userId: string; statuses: readonly RequestStatus[] | null; beforeSeq: number | null; limit: number },
): Promise<RequestRow[]> {
  const where = and(
    eq(purchaseRequests.userId, q.userId),
    q.statuses && q.statuses.length > 0 ? inArray(purchaseRequests.status, [...q.statuses]) : undefined,
    q.beforeSeq !== null ? lt(purchaseRequests.seq, q.beforeSeq) : undefined,
  );
  return ex.select().from(purchaseRequests).where(where).orderBy(desc(purchaseRequests.seq)).limit(q.limit);
}

/**
 * The guarded write: applies `changes` only if the row is still at `expectedRevision`, bumping
 * the revision by one. Returns null when someone else changed the row first.
 */
export async function updateRequestAtRevision(
  ex: Executor,
  id: string,
  expectedRevision: number,
  changes: RequestChanges & { updatedAt: Date },
): Promise<RequestRow | null> {
  const [row] = await ex
    .update(purchaseRequests)
    .set({ ...changes, revision: expectedRevision + 1 })
    .where(and(eq(purchaseRequests.id, id), eq(purchaseRequests.revision, expectedRevision)))
    .returning();
  return row ?? null;
}
