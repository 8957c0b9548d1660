// Repairs two defects of postgres.js 3.4.9 (the latest release, no upstream fix yet) that a
// Postgres restart under load sets off (test/services/postgres-restart.test.ts). Run by
// `postinstall`; idempotent; fails loudly if 3.4.9's code is not as expected.
//
// 1. Poisoned connections (LanternOps/breeze#3225). Small writes wait behind a setImmediate that
//    is scheduled only while `nextWriteTimer` is null; the teardown paths (closed(), terminate())
//    cancel the immediate without resetting it or the buffered bytes. A connection whose socket
//    closed with a write buffered then never sends anything again — the StartupMessage of every
//    reconnect first: queries routed to it hang until connect_timeout, for the life of the
//    process. The repair drops the dead socket's bytes with the timer (their queries are
//    rejected by the same teardown).
// 2. A crash on reconnect (porsager/postgres#1192, #1205, #1223). The array-types query a new
//    connection runs first is awaited in an async function whose promise is discarded: when the
//    connection is lost under it, that rejection is unhandled and Node ends the process. The
//    same failure has already rejected the query waiting for the connection (errored() rejects
//    `query` and `initial` together), so the repair only marks the discarded promise handled.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = '3.4.9';
const FILES = ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'];
/** Each repair: the code as shipped, as repaired, and how often it occurs in each file. */
const REPAIRS = [
  { from: '    clearImmediate(nextWriteTimer)\n', to: '    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n', count: 2 },
  { from: '        return fetchArrayTypes()\n', to: '        return fetchArrayTypes().catch(() => {})\n', count: 1 },
];

const root = fileURLToPath(new URL('../node_modules/postgres/', import.meta.url));
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
if (version !== VERSION) {
  console.warn(`patch-postgres: postgres ${version} is installed and the repairs target ${VERSION}: check whether they are still needed`);
  process.exit(0);
}
for (const file of FILES) {
  const path = join(root, file);
  const shipped = readFileSync(path, 'utf8');
  let text = shipped;
  for (const { from, to, count } of REPAIRS) {
    const done = text.split(to).length - 1;
    if (done === count) continue;
    const found = text.split(from).length - 1;
    if (done !== 0 || found !== count) {
      throw new Error(`patch-postgres: ${path} does not read as postgres ${VERSION}'s (${JSON.stringify(from.trim())}: ${found} found, ${done} repaired, ${count} expected)`);
    }
    text = text.split(from).join(to);
  }
  if (text !== shipped) {
    writeFileSync(path, text);
    console.log(`patch-postgres: repaired ${file}`);
  }
}
