import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PGlite, types } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteClient, vacuum } from './pglite.js';

let pg: PGlite;

beforeAll(async () => {
  pg = await openPgliteClient('memory://');
  await pg.exec(`create table t (id int primary key, name text not null, tags text[], doc jsonb, at timestamptz, n numeric, big bigint, ok boolean)`);
});
afterAll(async () => {
  await pg.close();
});

/** Drizzle's options: timestamps and dates kept as the strings Postgres sent. */
const drizzleLike = { parsers: { [types.TIMESTAMPTZ]: (v: string) => v, [types.DATE]: (v: string) => v } };

describe('prepared statements', () => {
  it('answer exactly as PGlite does for the same statement (first call unprepared, later ones prepared)', async () => {
    const statements: Array<[string, unknown[], object | undefined]> = [
      [
        `insert into t (id, name, tags, doc, at, n, big, ok) values ($1, $2, $3, $4, $5, $6, $7, $8) returning *`,
        [1, 'a', ['x', 'y'], { k: [1, 2] }, new Date('2026-01-02T03:04:05.678Z'), '1.50', 2n ** 40n, true],
        undefined,
      ],
      [`select * from t where id = $1`, [1], undefined],
      [`select * from t where id = $1`, [1], drizzleLike],
      [`select id, tags, doc, null::text as nothing, array[1, 2] as ints, current_date as d from t where id = $1`, [1], { rowMode: 'array', ...drizzleLike }],
      [`update t set name = $2 where id = $1`, [1, 'b'], undefined],
      [`select count(*)::int as n from t where name = any($1)`, [['a', 'b']], undefined],
    ];
    for (const [text, params, options] of statements) {
      const first = await pg.query(text, params, options);
      if (text.startsWith('insert')) await pg.query('delete from t where id = 1');
      const second = await pg.query(text, params, options);
      if (text.startsWith('insert')) await pg.query('delete from t where id = 1');
      const third = await pg.query(text, params, options);
      expect(second, text).toEqual(first);
      expect(third, text).toEqual(first);
    }
    const { rows } = await pg.query<{ n: number }>(`select count(*)::int as n from pg_prepared_statements`);
    expect(rows[0]!.n).toBeGreaterThan(0);
  });

  it('reports a failed statement with its SQLSTATE, in and out of transactions', async () => {
    await pg.query(`insert into t (id, name) values (10, 'x')`);
    const insert = `insert into t (id, name) values ($1, $2)`;
    for (let i = 0; i < 3; i++) {
      await expect(pg.query(insert, [10, 'dup'])).rejects.toMatchObject({ code: '23505', query: insert });
    }
    await expect(
      pg.transaction(async (tx) => {
        await tx.query(insert, [11, 'kept?']);
        await tx.query(insert, [10, 'dup']);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    const { rows } = await pg.query(`select id from t where id = 11`);
    expect(rows).toEqual([]);
  });

  it('keep a statement outside a transaction out of it until it ends', async () => {
    const count = `select count(*)::int as n from t where id >= $1`;
    await pg.query(count, [100]);
    await pg.query(count, [100]); // prepared from here on
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const didInsert = new Promise<void>((r) => (inserted = r));
    const tx = pg.transaction(async (t) => {
      await t.query(`insert into t (id, name) values ($1, $2)`, [100, 'rolled back']);
      inserted();
      await held;
      await t.rollback();
    });
    await didInsert;
    const outside = pg.query<{ n: number }>(count, [100]);
    // Give the outside statement every chance to run now, were it not waiting for the transaction.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    release();
    await tx;
    expect((await outside).rows).toEqual([{ n: 0 }]);
  });

  it('are prepared afresh after the table under them changes', async () => {
    await pg.exec(`create table shape (a int); insert into shape values (1)`);
    const all = `select * from shape where a = $1`;
    for (let i = 0; i < 3; i++) expect((await pg.query(all, [1])).rows).toEqual([{ a: 1 }]);
    await pg.exec(`alter table shape add column b int default 2`);
    // Postgres refuses a cached plan whose result columns changed (once); the next call re-prepares.
    await pg.query(all, [1]).catch((e: unknown) => expect(e).toMatchObject({ code: '0A000' }));
    expect((await pg.query(all, [1])).rows).toEqual([{ a: 1, b: 2 }]);
  });

  it('keep at most a bounded number prepared', async () => {
    for (let i = 0; i < 130; i++) {
      for (let k = 0; k < 2; k++) await pg.query(`select $1::int + ${i} as v`, [k]);
    }
    const { rows } = await pg.query<{ n: number }>(`select count(*)::int as n from pg_prepared_statements`);
    expect(rows[0]!.n).toBeLessThanOrEqual(100);
    expect((await pg.query<{ v: number }>(`select $1::int + 129 as v`, [1])).rows).toEqual([{ v: 130 }]);
  });
});

describe('maintenance', () => {
  it('vacuums tables with many dead rows', async () => {
    await pg.exec(`create table churn (id int primary key, v int); insert into churn select g, 0 from generate_series(1, 500) g`);
    for (let i = 0; i < 3; i++) await pg.exec(`update churn set v = v + 1`);
    const dead = async () => {
      // Statistics reach the views at most once a second unless a flush is asked for.
      await pg.exec(`select pg_stat_force_next_flush()`);
      return (await pg.query<{ n: number }>(`select n_dead_tup::int as n from pg_stat_user_tables where relname = 'churn'`)).rows[0]!.n;
    };
    expect(await dead()).toBeGreaterThan(1000);
    await vacuum(pg);
    expect(await dead()).toBe(0);
  });
});

describe('a fresh data directory', () => {
  it.each([
    ['absent', false],
    ['present but empty', true],
  ])('(%s) is initialised once, in place, and opens again with its data', async (_, present) => {
    const parent = mkdtempSync(join(tmpdir(), 'pglite-init-'));
    const dir = join(parent, 'data');
    if (present) mkdirSync(dir);
    try {
      const first = await openPgliteClient(dir);
      await first.exec(`create table kept (v int); insert into kept values (42)`);
      await first.close();
      expect(existsSync(join(dir, 'PG_VERSION'))).toBe(true);
      expect(readdirSync(parent)).toEqual(['data']); // no staging directory left behind
      const again = await openPgliteClient(dir);
      expect((await again.query(`select v from kept`)).rows).toEqual([{ v: 42 }]);
      await again.close();
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('starts empty however many came before it (each is its own copy of the empty cluster)', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'pglite-init-'));
    try {
      const first = await openPgliteClient(join(parent, 'one'));
      await first.exec(`create table only_in_one (v int)`);
      await first.close();
      const second = await openPgliteClient(join(parent, 'two'));
      const found = await second.query(`select count(*)::int as n from pg_tables where tablename = 'only_in_one'`);
      expect(found.rows).toEqual([{ n: 0 }]);
      await second.close();
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
