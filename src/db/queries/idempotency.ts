import { and, eq } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { idempotencyKeys, purchaseRequests, type RequestRow } from '../schema.js';

export type IdempotencyRow = typeof idempotencyKeys.$inferSelect;

export async function findIdempotencyKey(ex: Executor, userId: string, key: string): Promise<IdempotencyRow | null> {
  const [row] = await ex
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)));
  return row ?? null;
}

/** The request a user's key names, with the hash of the input it was made with: one read for a replay. */
export async function findIdempotentRequest(
  ex: Executor,
  userId: string,
  key: string,
): Promise<{ requestHash: string; request: RequestRow } | null> {
  const [row] = await ex
    .select({ requestHash: idempotencyKeys.requestHash, request: purchaseRequests })
    .from(idempotencyKeys)
    .innerJoin(purchaseRequests, eq(purchaseRequests.id, idempotencyKeys.requestId))
    .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)));
  return row ?? null;
}
