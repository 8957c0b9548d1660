import { asc, eq } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { isAnyOf } from './ids.js';
import { sellers, type SellerRow } from '../schema.js';

export type NewSellerRow = typeof sellers.$inferInsert;

export async function insertSeller(ex: Executor, row: NewSellerRow): Promise<SellerRow> {
  const [inserted] = await ex.insert(sellers).values(row).returning();
  return inserted!;
}

export async function updateSeller(
  ex: Executor,
  id: string,
  changes: Partial<Omit<NewSellerRow, 'id' | 'createdAt'>>,
): Promise<SellerRow | null> {
  const [row] = await ex.update(sellers).set(changes).where(eq(sellers.id, id)).returning();
  return row ?? null;
}

export async function findSellersByIds(ex: Executor, ids: readonly string[]): Promise<SellerRow[]> {
  if (ids.length === 0) return [];
  return ex.select().from(sellers).where(isAnyOf(sellers.id, ids));
}

export async function listSellers(ex: Executor): Promise<SellerRow[]> {
  return ex.select().from(sellers).orderBy(asc(sellers.tier), asc(sellers.name), asc(sellers.id));
}
