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
