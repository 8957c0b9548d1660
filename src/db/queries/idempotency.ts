import { and, eq } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { idempotencyKeys } from '../schema.js';

export type IdempotencyRow = typeof idempotencyKeys.$inferSelect;

/**
 * Claims a user's idempotency key for a request. Returns false when the key is already taken;
 * on Postgres a concurrent claim of the same key waits for the first to commit or roll back.
 */
export async function claimIdempotencyKey(ex: Executor, row: IdempotencyRow): Promise<boolean> {
  const inserted = await ex
    .insert(idempotencyKeys)
    .values(row)
    .onConflictDoNothing({ target: [idempotencyKeys.userId, idempotencyKeys.key] })
    .returning({ key: idempotencyKeys.key });
  return inserted.length === 1;
}

export async function findIdempotencyKey(ex: Executor, userId: string, key: string): Promise<IdempotencyRow | null> {
  const [row] = await ex
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)));
  return row ?? null;
}
