import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { openPgliteClient } from './pglite.js';
import * as schema from './schema.js';

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** Query modules take either the database or an open transaction. */
export type Executor = Db | Tx;

export const MIGRATIONS_FOLDER = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

export interface DatabaseOptions {
  /** `postgres://…` for a server; unset for embedded PGlite. */
  url?: string | undefined;
  /** PGlite's data directory; `memory://` keeps everything in memory (tests). */
  dataDir: string;
  /** Connection pool size for a server. */
  poolSize?: number;
  /** Named prepared statements on a server (default on; off behind a pooler that cannot keep them). */
  preparedStatements?: boolean;
  /**
   * The planner's `random_page_cost`, sent when each connection opens (a parameter of the same
   * name in the URL wins); unset leaves the server's own.
   */
  randomPageCost?: number | null;
  /** Sees every SQL statement the application runs (debug logging, query-count checks). */
  onQuery?: (sql: string) => void;
}

export interface Database {
  readonly db: Db;
  readonly kind: 'pglite' | 'postgres';
  /** Applies pending migrations; safe to call from several instances at once. */
  migrate(): Promise<void>;
  /** Readiness: the database answers and every migration shipped with this build is applied. */
  ready(): Promise<{ ok: true } | { ok: false; reason: string }>;
  close(): Promise<void>;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const logger = options.onQuery ? { logQuery: (query: string) => options.onQuery!(query) } : undefined;
  if (!options.url) return openPglite(options.dataDir, logger);
  const settings: Record<string, string> = options.randomPageCost == null ? {} : { random_page_cost: String(options.randomPageCost) };
  return openPostgres(options.url, options.poolSize ?? 10, options.preparedStatements ?? true, settings, logger);
}

type QueryLogger = { logQuery(query: string, params: unknown[]): void } | undefined;

async function openPglite(dataDir: string, logger: QueryLogger): Promise<Database> {
  const client = await openPgliteClient(dataDir);
  const db = drizzlePglite({ client, schema, ...(logger ? { logger } : {}) });
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    migrate: () => migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER }),
    ready: () => readiness(db as unknown as Db),
    close: () => client.close(),
  };
}

/**
 * Seconds postgres.js waits before its next connection attempt after `failures` failed ones:
 * 50 ms doubling up to 1 s, with jitter, so the pool is back within a second of a restart.
 * Its default grows to 20 s (3^failures / 100, counted across the pool): after an outage of a
 * minute the pool came back up to 20 s late, and every query meanwhile waited that long to fail.
 */
export function reconnectBackoff(failures: number): number {
  return Math.min(0.05 * 2 ** Math.max(failures - 1, 0), 1) * (0.5 + Math.random() / 2);
}

async function openPostgres(rawUrl: string, max: number, prepared: boolean, settings: Record<string, string>, logger: QueryLogger): Promise<Database> {
  const { url, socket } = unixSocket(rawUrl);
  const client = postgres(url, { max, onnotice: () => {}, backoff: reconnectBackoff, connection: settings, ...socket });
  const db = drizzlePostgres(prepared ? preparing(client) : client, { schema, ...(logger ? { logger } : {}) });
  return {
    db: db as unknown as Db,
    kind: 'postgres',
    async migrate() {
      // Instances starting together would race to apply the same migration: serialise them on
      // a session advisory lock, over a one-connection pool so the lock and the migration share it.
      const single = postgres(url, { max: 1, onnotice: () => {}, ...socket });
      try {
        await single`select pg_advisory_lock(${MIGRATION_LOCK})`;
        await migratePostgres(drizzlePostgres(single, { schema }), { migrationsFolder: MIGRATIONS_FOLDER });
      } finally {
        await single.end({ timeout: 5 });
      }
    },
    ready: () => readiness(db as unknown as Db),
    close: () => client.end({ timeout: 5 }),
  };
}

const MIGRATION_LOCK = 7_301_946_221;

/**
 * Statements with more parameters than this are sent unnamed: such a text is built from a list
 * (a multi-row insert), a new one for each length, and naming each would grow every connection's
 * statements without bound. The hot statements take their lists as one array or JSON parameter.
 */
const MAX_PREPARED_PARAMETERS = 64;

/**
 * The client as drizzle should see it: every statement named, so each connection parses a
 * statement text once and then only binds and executes it (Postgres plans it again per execution
 * until a generic plan is as good, then keeps that). drizzle sends unnamed statements unless a
 * query is prepared by name, and postgres.js sends an unnamed one with parameters as Parse +
 * Describe, waits for the parameter types, then Bind + Execute: two round trips, two socket
 * writes, a parse and a plan per statement. Transactions and savepoints hand drizzle a client of
 * their own, wrapped the same way. A statement whose table changed under it (a migration by a
 * newer instance) is prepared again by postgres.js; inside a transaction that fails the
 * transaction once, which the engine retries as after any database error (a mutation's caller
 * retries with its idempotency key).
 */
export function preparing(sql: postgres.Sql): postgres.Sql {
  type Unsafe = postgres.Sql['unsafe'];
  type WithClient = (...args: unknown[]) => unknown;
  const scoped = (method: WithClient): WithClient => (...args) => {
    const body = args.pop() as (inner: postgres.Sql) => unknown;
    return method(...args, (inner: postgres.Sql) => body(preparing(inner)));
  };
  return new Proxy(sql, {
    get(target, prop, receiver) {
      if (prop === 'unsafe') {
        const unsafe: Unsafe = (query, parameters, options) =>
          target.unsafe(query, parameters, { ...options, prepare: (parameters?.length ?? 0) <= MAX_PREPARED_PARAMETERS });
        return unsafe;
      }
      if (prop === 'begin' || prop === 'savepoint') return scoped(Reflect.get(target, prop, receiver) as WithClient);
      return Reflect.get(target, prop, receiver);
    },
  });
}

/**
 * libpq's way to name a Unix socket in a URL, `?host=/var/run/postgresql` (a directory), which
 * postgres.js would otherwise send to the server as a setting: the socket path goes to its `path`
 * option instead. A Postgres (or PgBouncer) on the same host is reached without TCP.
 */
export function unixSocket(raw: string): { url: string; socket: { path?: string } } {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return { url: raw, socket: {} };
  }
  const dir = parsed.searchParams.get('host');
  if (!dir?.startsWith('/')) return { url: raw, socket: {} };
  parsed.searchParams.delete('host');
  return { url: parsed.toString(), socket: { path: `${dir.replace(/\/$/, '')}/.s.PGSQL.${parsed.port || '5432'}` } };
}

let shippedCount: number | undefined;

/** Migrations this build ships, read once: the files may be replaced under a running server (a rebuild). */
function shippedMigrations(): number {
  shippedCount ??= (JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }).entries.length;
  return shippedCount;
}

async function readiness(db: Db): Promise<{ ok: true } | { ok: false; reason: string }> {
  let applied: number;
  try {
    const res = await db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
    applied = Number(rowsOf<{ n: number }>(res)[0]?.n ?? 0);
  } catch {
    return { ok: false, reason: 'database unreachable or not migrated' };
  }
  const shipped = shippedMigrations();
  return applied >= shipped ? { ok: true } : { ok: false, reason: `migrations applied ${applied}/${shipped}` };
}

/** `execute` returns rows directly on postgres.js and under `.rows` on PGlite. */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}
