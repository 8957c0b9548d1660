import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { type DeadLetterRow, deadLetters } from '../schema.js';

export type NewDeadLetter = Pick<DeadLetterRow, 'id' | 'kind' | 'ref' | 'payload' | 'lastError' | 'createdAt'>;

export async function insertDeadLetter(ex: Executor, row: NewDeadLetter): Promise<DeadLetterRow> {
  const [inserted] = await ex
    .insert(deadLetters)
    .values({ ...row, updatedAt: row.createdAt })
    .returning();
  return inserted!;
}

/** The open dead letter for a piece of work, if any (one per attempt at a time). */
export async function findOpenDeadLetter(ex: Executor, kind: DeadLetterRow['kind'], ref: string): Promise<DeadLetterRow | null> {
  const [row] = await ex
    .select()
    .from(deadLetters)
    .where(and(eq(deadLetters.kind, kind), eq(deadLetters.ref, ref), isNull(deadLetters.resolvedAt)));
  return row ?? null;
}

export async function findDeadLetter(ex: Executor, id: string): Promise<DeadLetterRow | null> {
  const [row] = await ex.select().from(deadLetters).where(eq(deadLetters.id, id));
  return row ?? null;
}

export async function listDeadLetters(ex: Executor, q: { includeResolved: boolean; limit: number }): Promise<DeadLetterRow[]> {
  return ex
    .select()
    .from(deadLetters)
    .where(q.includeResolved ? undefined : isNull(deadLetters.resolvedAt))
    .orderBy(desc(deadLetters.createdAt))
    .limit(q.limit);
}

export async function recordDeadLetterFailure(ex: Executor, id: string, error: string, at: Date): Promise<void> {
  await ex
    .update(deadLetters)
    .set({ lastError: error, failures: sql`${deadLetters.failures} + 1`, updatedAt: at })
    .where(eq(deadLetters.id, id));
}

export async function resolveDeadLetter(ex: Executor, id: string, at: Date): Promise<DeadLetterRow | null> {
  const [row] = await ex
    .update(deadLetters)
    .set({ resolvedAt: at, updatedAt: at })
    .where(and(eq(deadLetters.id, id), isNull(deadLetters.resolvedAt)))
    .returning();
  return row ?? null;
}

/** Open (unresolved) dead letters by kind, every kind present (0 when none), for metrics. */
export async function countOpenDeadLetters(ex: Executor): Promise<Array<[DeadLetterRow['kind'], number]>> {
  const rows = await ex
    .select({ kind: deadLetters.kind, n: sql<number>`count(*)::int` })
    .from(deadLetters)
    .where(isNull(deadLetters.resolvedAt))
    .groupBy(deadLetters.kind);
  const kinds: Array<DeadLetterRow['kind']> = ['attempt', 'callback', 'webhook'];
  return kinds.map((kind) => [kind, Number(rows.find((r) => r.kind === kind)?.n ?? 0)]);
}
