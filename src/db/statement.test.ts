import { sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/support/database.js';
import { rowsOf } from './client.js';
import { purchaseRequests } from './schema.js';
import { statement } from './statement.js';

const test = useTestDatabase();
const dialect = new PgDialect();

/** One template, written as a function of its two values, the way a query module writes it. */
const template = (name: unknown, limit: unknown) =>
  sql`select ${purchaseRequests.id}, ${name}::text as a, ${'fixed'}::text as b, ${name}::text as c
    from ${purchaseRequests} where ${purchaseRequests.status} = ${name}::text limit ${limit}::int`;

describe('statement', () => {
  it('renders the text drizzle renders for the same template, with each value in its places', () => {
    const run = statement(['name', 'limit'], (p) => template(p.name, p.limit));
    const expected = dialect.sqlToQuery(template('SEARCHING', 5));
    expect(dialect.sqlToQuery(run({ name: 'SEARCHING', limit: 5 }))).toEqual({ sql: expected.sql, params: expected.params });
    // Rendered once, bound afresh each time.
    expect(dialect.sqlToQuery(run({ name: 'QUOTED', limit: 7 })).params).toEqual(['QUOTED', 'fixed', 'QUOTED', 'QUOTED', 7]);
  });

  it('runs on the database like the template it renders', async () => {
    const run = statement(['a', 'b'], (p) => sql`select ${p.a}::int + ${p.b}::int as sum, ${p.a}::text as a, ${'x'}::text as fixed`);
    const rows = rowsOf<{ sum: number; a: string; fixed: string }>(await test.current.db.execute(run({ a: 2, b: 40 })));
    expect(rows).toEqual([{ sum: 42, a: '2', fixed: 'x' }]);
    const again = rowsOf<{ sum: number }>(await test.current.db.execute(run({ a: -1, b: 1 })));
    expect(again[0]!.sum).toBe(0);
  });

  it('refuses a template naming a parameter it was not given', () => {
    const run = statement(['a'], () => sql`select ${sql.placeholder('b')}::int`);
    expect(() => run({ a: 1 })).toThrow(/unknown parameter b/);
  });
});
