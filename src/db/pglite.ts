import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PGlite, type QueryOptions, type Results, type Transaction, messages, parse, protocol, types } from '@electric-sql/pglite';

const require = createRequire(import.meta.url);

/**
 * Postgres settings for the embedded engine. Everything Postgres allocates lives in the WASM heap,
 * which grows and never shrinks, so the defaults sized for a server (128 MB of shared buffers,
 * 64 MB per VACUUM) would stay resident for the life of the process. The data files sit in the
 * OS page cache behind the buffers anyway (NODEFS reads are plain reads), so a small pool costs little.
 */
const SETTINGS: Record<string, string> = {
  shared_buffers: '32MB',
  maintenance_work_mem: '16MB',
};

/** How often tables are checked for vacuuming (single-user Postgres has no autovacuum). */
const MAINTENANCE_EVERY_MS = 60_000;

/** Statements kept prepared at once (each holds its parse tree and cached plan in the WASM heap). */
const MAX_PREPARED = 100;
/** Statement texts remembered as seen once, so that one-off statements are never prepared. */
const MAX_SEEN = 1_000;

/**
 * Opens the embedded database in `dataDir` (`memory://` for a throwaway one), with bounded memory
 * and a prepared-statement cache in front of `query`.
 */
export async function openPgliteClient(dataDir: string): Promise<PGlite> {
  if (!dataDir.includes('://')) await initialiseDataDir(dataDir);
  const startParams = [...PGlite.defaultStartParams, ...Object.entries(SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const client = await PGlite.create(dataDir, { startParams });
  const maintenance = setInterval(() => void vacuum(client).catch(() => {}), MAINTENANCE_EVERY_MS);
  maintenance.unref();
  return withPreparedStatements(client, () => clearInterval(maintenance));
}

/**
 * The autovacuum PGlite lacks: it runs Postgres in single-user mode, where no autovacuum worker
 * starts. Without it dead row versions pile up (5 per live request row after one benchmark run)
 * and, worse, nothing freezes old rows: after ~2 billion write transactions Postgres would stop
 * accepting writes to avoid wraparound. Same thresholds as autovacuum's defaults; a table past
 * half the freeze age is frozen outright. (A failure is left for the next round.)
 */
export async function vacuum(pg: PGlite): Promise<void> {
  const { rows } = await pg.query<{ name: string; freeze: boolean }>(`
    select s.relid::regclass::text as name, age(c.relfrozenxid) > 100000000 as freeze
    from pg_stat_all_tables s join pg_class c on c.oid = s.relid
    where c.relkind in ('r', 'm') and (
      s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0)
      or s.n_ins_since_vacuum > 1000 + 0.2 * greatest(c.reltuples, 0)
      or s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)
      or age(c.relfrozenxid) > 100000000)`);
  for (const t of rows) await pg.exec(`vacuum (${t.freeze ? 'freeze, ' : ''}analyze) ${t.name}`);
}

/**
 * The empty cluster a fresh data directory is copied from, one per PGlite version (made by
 * `postinstall`, scripts/pglite-template.mjs, or by the first initdb here): initdb costs 5–7 s of
 * CPU, a copy a tenth of a second.
 */
const TEMPLATE_DIR = (() => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const pkg = join(root, 'node_modules', '@electric-sql', 'pglite', 'package.json');
  const version = existsSync(pkg) ? (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version : 'unknown';
  return join(root, 'node_modules', '.cache', 'book-purchase-broker', `pglite-${version}`);
})();

/**
 * A fresh data directory is copied from the template, or else initialised in a short-lived child
 * process (and saved as the template). In-process, PGlite runs initdb in a second WASM instance
 * and copies the result through a third: ~430 MB of WASM memory that stays resident until a full
 * GC happens to collect it, which made the process's peak RSS. Written beside the target and moved
 * in with PG_VERSION last, so a directory is only ever seen as initialised once it is complete.
 */
async function initialiseDataDir(dataDir: string): Promise<void> {
  const dir = resolve(dataDir);
  if (existsSync(join(dir, 'PG_VERSION'))) return;
  if (existsSync(dir) && readdirSync(dir).length > 0) return; // not ours to fill: PGlite decides
  mkdirSync(dir, { recursive: true });
  const staging = join(dirname(dir), `.${basename(dir)}.initdb-${process.pid}-${Date.now()}`);
  try {
    if (existsSync(join(TEMPLATE_DIR, 'PG_VERSION'))) {
      cpSync(TEMPLATE_DIR, staging, { recursive: true });
    } else {
      await promisify(execFile)(process.execPath, ['-e', INITDB_SCRIPT, require.resolve('@electric-sql/pglite'), staging], { timeout: 120_000 });
      saveTemplate(staging);
    }
    const entries = readdirSync(staging).filter((e) => e !== 'PG_VERSION');
    for (const e of [...entries, 'PG_VERSION']) renameSync(join(staging, e), join(dir, e));
  } catch (e) {
    throw new Error(`could not initialise the embedded database in ${dir}`, { cause: e });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Keeps a just-initialised cluster as the template, if none is there yet; best effort. */
function saveTemplate(initialised: string): void {
  const copy = `${TEMPLATE_DIR}.${process.pid}-${Date.now()}`;
  try {
    cpSync(initialised, copy, { recursive: true });
    // Fails when another process saved one first: theirs is as good.
    if (!existsSync(TEMPLATE_DIR)) renameSync(copy, TEMPLATE_DIR);
  } catch {
    // node_modules is read-only, or the disk full: the next fresh start runs initdb again.
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

const INITDB_SCRIPT = `
const [pglite, dir] = process.argv.slice(1);
require(pglite).PGlite.create(dir).then((pg) => pg.close()).catch((e) => { console.error(e); process.exit(1); });
`;

/**
 * PGlite's `query` parses, describes and plans every statement on every call (six round trips
 * into the engine on an unnamed statement). The statements that run often here are large CTEs,
 * whose parse analysis and planning took over half of the engine's time. A statement seen a second
 * time is kept as a named prepared statement (Postgres caches its plan) and each later call is
 * one Bind/Execute/Sync. Everything else goes to PGlite unchanged.
 */
function withPreparedStatements(pg: PGlite, onClose: () => void): PGlite {
  const cache = new StatementCache(pg);
  const wrapTx = (tx: Transaction): Transaction =>
    Object.create(tx, {
      query: {
        value: <T>(text: string, params?: unknown[], options?: QueryOptions) => {
          if (!cache.admits(text, options)) return tx.query<T>(text, params, options);
          if (tx.closed) throw new Error('Transaction is closed');
          // Inside a transaction only the query lock is free to take: the transaction holds the other.
          return pg._runExclusiveQuery(() => cache.run<T>(text, params ?? [], options, true));
        },
      },
    }) as Transaction;
  return new Proxy(pg, {
    get(target, prop) {
      if (prop === 'query') {
        return async <T>(text: string, params?: unknown[], options?: QueryOptions): Promise<Results<T>> => {
          if (!cache.admits(text, options)) return target.query<T>(text, params, options);
          await target._checkReady();
          // The same locks as PGlite's own query: never inside another caller's transaction.
          return target._runExclusiveTransaction(() => target._runExclusiveQuery(() => cache.run<T>(text, params ?? [], options, false)));
        };
      }
      if (prop === 'close') {
        return () => {
          onClose();
          return target.close();
        };
      }
      if (prop === 'transaction') {
        return <T>(callback: (tx: Transaction) => Promise<T>) => target.transaction((tx) => callback(wrapTx(tx)));
      }
      const value: unknown = Reflect.get(target, prop, target);
      // PGlite keeps its state in private fields: its methods must run on the instance itself.
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

interface Prepared {
  name: string;
  paramTypes: number[];
  /** The columns it returns (none for statements that return no rows). */
  fields: Array<{ name: string; dataTypeID: number }>;
}

class StatementCache {
  readonly #pg: PGlite;
  /** Most recently used last. */
  readonly #prepared = new Map<string, Prepared>();
  readonly #seen = new Set<string>();
  #next = 0;

  constructor(pg: PGlite) {
    this.#pg = pg;
  }

  /** Whether this call goes through a prepared statement (the text's second sighting on). */
  admits(text: string, options: QueryOptions | undefined): boolean {
    if (options?.blob || options?.paramTypes) return false;
    if (this.#prepared.has(text)) return true;
    if (this.#seen.delete(text)) return true;
    this.#seen.add(text);
    if (this.#seen.size > MAX_SEEN) this.#seen.delete(this.#seen.values().next().value!);
    return false;
  }

  /** Runs `text` as a prepared statement; the caller holds PGlite's query lock. */
  async run<T>(text: string, params: unknown[], options: QueryOptions | undefined, inTransaction: boolean): Promise<Results<T>> {
    try {
      const stmt = this.#prepared.get(text) ?? (await this.#prepare(text));
      this.#prepared.delete(text);
      this.#prepared.set(text, stmt);
      const values = params.map((v, i) => {
        if (v === null || v === undefined) return null;
        const type = stmt.paramTypes[i]!;
        const serialize = options?.serializers?.[type] ?? this.#pg.serializers[type];
        return serialize ? serialize(v) : String(v);
      });
      const message = concat([protocol.serialize.bind({ statement: stmt.name, values }), protocol.serialize.execute({}), protocol.serialize.sync()]);
      const result = await this.#pg.execProtocol(message, { syncToFs: false, ...(options?.onNotice ? { onNotice: options.onNotice } : {}) });
      const results = this.#results<T>(stmt, result.messages, options);
      // As PGlite's own query: written through to the filesystem after each statement outside a
      // transaction (after its COMMIT inside one).
      if (!inTransaction) await this.#pg.syncToFs();
      return results;
    } catch (e) {
      if (e instanceof messages.DatabaseError) {
        // As PGlite's own query does: the error names the statement that failed.
        Object.assign(e, { query: text, params, queryOptions: options });
        // A table changed under a cached plan (DDL at run time): prepare it afresh next time.
        if (e.code === '0A000' || e.code === '26000') await this.#forget(text);
      }
      throw e;
    }
  }

  /**
   * PGlite's parseResults for one statement, minus its per-call cost: it copies every parser it
   * knows (hundreds, with the array types) into a new object on each call that passes any parser,
   * and drizzle passes some on every query. Here each column's parser is looked up once.
   */
  #results<T>(stmt: Prepared, backend: messages.BackendMessage[], options: QueryOptions | undefined): Results<T> {
    const fields = stmt.fields;
    const parsers = fields.map((f) => options?.parsers?.[f.dataTypeID] ?? this.#pg.parsers[f.dataTypeID] ?? types.parsers[f.dataTypeID]);
    const asArray = options?.rowMode === 'array';
    const rows: unknown[] = [];
    let result: Results<T> = { rows: rows as T[], fields, affectedRows: 0 };
    for (const m of backend) {
      if (m.name === 'dataRow') {
        const values = (m as messages.DataRowMessage).fields.map((v, i) => (v === null ? null : parsers[i] ? parsers[i](v, fields[i]!.dataTypeID) : v));
        if (asArray) rows.push(values);
        else {
          const row: Record<string, unknown> = {};
          for (let i = 0; i < fields.length; i++) row[fields[i]!.name] = values[i];
          rows.push(row);
        }
      } else if (m.name === 'commandComplete') {
        const words = (m as messages.CommandCompleteMessage).text.split(' ');
        const command = words[0]!;
        const count = Number.parseInt(words[words.length - 1]!, 10);
        const affectedRows = ['INSERT', 'UPDATE', 'DELETE', 'COPY', 'MERGE'].includes(command) ? count : 0;
        result = { rows: rows as T[], fields, command, affectedRows, ...(Number.isNaN(count) ? {} : { rowCount: count }) } as Results<T>;
      }
    }
    return result;
  }

  async #prepare(text: string): Promise<Prepared> {
    await this.#evict();
    const name = `pglite_stmt_${this.#next++}`;
    const message = concat([
      protocol.serialize.parse({ name, text }),
      protocol.serialize.describe({ type: 'S', name }),
      protocol.serialize.sync(),
    ]);
    const { messages: described } = await this.#pg.execProtocol(message, { syncToFs: false });
    const stmt: Prepared = {
      name,
      paramTypes: parse.parseDescribeStatementResults(described),
      fields: described.flatMap((m) => (m.name === 'rowDescription' ? (m as messages.RowDescriptionMessage).fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })) : [])),
    };
    this.#prepared.set(text, stmt);
    return stmt;
  }

  /**
   * Makes room for one more by closing the least recently used (Close is accepted even in a failed
   * transaction; should it fail anyway, one statement stays open on the server).
   */
  async #evict(): Promise<void> {
    while (this.#prepared.size >= MAX_PREPARED) await this.#forget(this.#prepared.keys().next().value!);
  }

  async #forget(text: string): Promise<void> {
    const stmt = this.#prepared.get(text);
    if (!stmt) return;
    this.#prepared.delete(text);
    const close = concat([protocol.serialize.close({ type: 'S', name: stmt.name }), protocol.serialize.sync()]);
    await this.#pg.execProtocol(close, { syncToFs: false, throwOnError: false });
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
