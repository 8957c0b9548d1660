import postgres from 'postgres';
import { unixSocket } from '../../src/db/client.js';

/**
 * The tables the broker updates on every request: their dead row versions pile up fastest. The
 * webhook outbox is one while endpoints are registered (each event's row is deleted once
 * delivered); without them nothing is written to it, and it is left alone.
 */
const HOT_TABLES = ['purchase_requests', 'order_attempts', 'sandbox_payments', 'webhook_outbox'];

/** A one-connection client for the bench's own statements, over TCP or a Unix socket (`?host=/dir`) as the broker connects. */
export function connectPostgres(url: string): postgres.Sql {
  const { url: plain, socket } = unixSocket(url);
  return postgres(plain, { max: 1, onnotice: () => {}, ...socket });
}

export interface Autovacuum {
  /** VACUUM runs made, and whether the server's own autovacuum was found off (so this stood in). */
  readonly runs: number;
  readonly standingIn: boolean;
  stop(): Promise<void>;
}

/**
 * A stand-in for autovacuum when the Postgres server runs with it off (as the bench machine's
 * does; a production server does not): every `everyMs` it vacuums the hot tables of the bench
 * database that were written since their last vacuum, from a backend of that database, so its CPU
 * and reads are counted with the broker's. Without it, dead index entries of the queue's partial
 * indexes are walked by every claim until the end of the run, which no production database does.
 * Like autovacuum, it leaves a table nobody wrote alone: vacuuming a table that never held a row
 * records it as empty, which the planner trusts over its rule for tables never vacuumed. When the
 * server's autovacuum is on, nothing is done.
 */
export async function standInForAutovacuum(url: string, everyMs = 10_000): Promise<Autovacuum> {
  const sql = connectPostgres(url);
  const [setting] = await sql<Array<{ autovacuum: string }>>`show autovacuum`;
  const standingIn = setting?.autovacuum === 'off';
  let runs = 0;
  let running: Promise<void> = Promise.resolve();
  const timer = standingIn
    ? setInterval(() => {
        running = running.then(async () => {
          const written = await sql<Array<{ name: string }>>`
            select relname as name from pg_stat_user_tables
            where relname = any(${HOT_TABLES}) and (n_dead_tup > 0 or n_ins_since_vacuum > 0)`.catch(() => []);
          if (written.length > 0) await sql.unsafe(`vacuum ${written.map((t) => t.name).join(', ')}`).catch(() => {});
          runs += 1;
        });
      }, everyMs)
    : null;
  return {
    get runs() {
      return runs;
    },
    standingIn,
    async stop() {
      if (timer) clearInterval(timer);
      await running;
      await sql.end({ timeout: 5 });
    },
  };
}
