import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase, rowsOf } from '../../src/db/client.js';
import { freshDatabase } from '../support/server.js';

/**
 * Every statement the broker sends to a Postgres server is a named prepared statement, parsed and
 * planned once per connection (drizzle alone sends them unnamed: a plan and an extra round trip
 * each time). Seen from the server: `pg_prepared_statements` lists what this session has prepared.
 */
describe('statements on a Postgres server', () => {
  let fresh: Awaited<ReturnType<typeof freshDatabase>>;
  const opened: Database[] = [];

  beforeAll(async () => {
    fresh = await freshDatabase();
    if (!fresh.env.DATABASE_URL) throw new Error('this suite needs Postgres (TEST_DATABASE_URL)');
  });

  afterAll(async () => {
    await Promise.all(opened.map((d) => d.close()));
    await fresh?.drop();
  });

  // One connection, so the statements run and the catalogue read share a session.
  const open = async (preparedStatements?: boolean) => {
    const d = await openDatabase({ url: fresh.env.DATABASE_URL, dataDir: '', poolSize: 1, ...(preparedStatements === undefined ? {} : { preparedStatements }) });
    opened.push(d);
    return d;
  };
  const preparedLike = async (d: Database, marker: string) =>
    rowsOf<{ statement: string; calls: number }>(
      await d.db.execute(sql`select statement, (generic_plans + custom_plans)::int as calls from pg_prepared_statements where statement like ${`%${marker}%`} and statement not like '%pg_prepared_statements%'`),
    );

  it('are named and prepared once per connection, in and out of transactions', async () => {
    const d = await open();
    for (let i = 0; i < 3; i++) await d.db.execute(sql`select ${i}::int as n /* marker-plain */`);
    await d.db.transaction(async (tx) => {
      await tx.execute(sql`select ${1}::int as n /* marker-tx */`);
      await tx.transaction(async (inner) => void (await inner.execute(sql`select ${2}::int as n /* marker-savepoint */`)));
    });
    const plain = await preparedLike(d, 'marker-plain');
    expect(plain).toHaveLength(1);
    expect(plain[0]!.calls).toBe(3);
    expect(await preparedLike(d, 'marker-tx')).toHaveLength(1);
    expect(await preparedLike(d, 'marker-savepoint')).toHaveLength(1);
  });

  it('are sent unnamed when built from a long list (one text per length) or when turned off', async () => {
    const d = await open();
    const many = Array.from({ length: 100 }, (_, i) => sql`${i}::int`);
    await d.db.execute(sql`select array[${sql.join(many, sql`, `)}] as xs /* marker-long */`);
    expect(await preparedLike(d, 'marker-long')).toHaveLength(0);

    const off = await open(false);
    await off.db.execute(sql`select ${1}::int as n /* marker-off */`);
    expect(await preparedLike(off, 'marker-off')).toHaveLength(0);
  });

  it('carry the planner cost the broker asks for on every connection, the server its own when unset, a URL parameter over both', async () => {
    const url = fresh.env.DATABASE_URL!;
    const setting = async (d: Database) => rowsOf<{ v: string }>(await d.db.execute(sql`select current_setting('random_page_cost') as v`))[0]!.v;
    const plain = postgres(url, { max: 1, onnotice: () => {} });
    const [server] = await plain<Array<{ v: string }>>`select current_setting('random_page_cost') as v`;
    await plain.end({ timeout: 5 });

    const set = await openDatabase({ url, dataDir: '', poolSize: 2, randomPageCost: 1.1 });
    const unset = await openDatabase({ url, dataDir: '', poolSize: 1 });
    const withUrl = new URL(url);
    withUrl.searchParams.set('random_page_cost', '2');
    const fromUrl = await openDatabase({ url: withUrl.toString(), dataDir: '', poolSize: 1, randomPageCost: 1.1 });
    opened.push(set, unset, fromUrl);
    // In and out of a transaction.
    const both = await Promise.all([setting(set), set.db.transaction(async (tx) => rowsOf<{ v: string }>(await tx.execute(sql`select current_setting('random_page_cost') as v`))[0]!.v)]);
    expect(both).toEqual(['1.1', '1.1']);
    expect(await setting(unset)).toBe(server!.v);
    expect(await setting(fromUrl)).toBe('2');
  });
});

