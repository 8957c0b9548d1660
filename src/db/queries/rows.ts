import { type Column, type Table, getTableColumns } from 'drizzle-orm';

/**
 * Maps raw rows of `table` (snake_case names, driver values, as raw SQL returns them on either
 * driver) to the shape drizzle's own selects give: property names, Dates, parsed JSON, numbers.
 * Statements drizzle's builder cannot express (data-modifying CTEs over a batch) read their
 * RETURNING rows through it.
 */
export function rowMapper<T>(table: Table): (raw: Record<string, unknown>) => T {
  const columns = Object.entries(getTableColumns(table)) as [string, Column][];
  return (raw) => {
    const row: Record<string, unknown> = {};
    for (const [key, column] of columns) {
      const value = raw[column.name];
      row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
    }
    return row as T;
  };
}

/** The JSON field names a batched write reads a column's change from, by property: built once each. */
const changeFields = new Map<string, { set: string; value: string }>();

/**
 * Writes `changes` into a batched write's JSON row for the columns in `keys` that it names:
 * `set_<key>` true and `v_<key>` the value (a Date as ISO text, undefined as null), which the
 * statement reads as the record type it declares for them.
 */
export function putChanges(row: Record<string, unknown>, changes: object, keys: readonly string[]): void {
  for (const k of keys) {
    if (!(k in changes)) continue;
    let field = changeFields.get(k);
    if (!field) changeFields.set(k, (field = { set: `set_${k}`, value: `v_${k}` }));
    const v = (changes as Record<string, unknown>)[k];
    row[field.set] = true;
    row[field.value] = v instanceof Date ? v.toISOString() : v === undefined ? null : v;
  }
}
