import { type Column, type SQL, sql } from 'drizzle-orm';

/**
 * `column = any($1::uuid[])`: one parameter however many ids, so the statement's text is the
 * same for every batch size and the driver's prepared statement is reused (`in ($1, …, $n)`
 * is a new statement, parsed and planned again, for each n).
 */
export function isAnyOf(column: Column, ids: readonly string[]): SQL {
  return sql`${column} = any(${uuidArray(ids)}::uuid[])`;
}

/** Ids as one Postgres array literal, the parameter `isAnyOf` binds. */
export function uuidArray(ids: readonly string[]): string {
  return `{${ids.join(',')}}`;
}
