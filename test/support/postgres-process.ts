import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './broker-process.js';

const START_TIMEOUT_S = 30;

/**
 * A Postgres cluster of a test's own (initdb into a temp dir, pg_ctl on a free port, 127.0.0.1
 * only, trust auth), that the test may stop the way a crash does (`-m immediate`: no checkpoint,
 * crash recovery on the next start) and start again on the same port and data — never the shared
 * server other suites use. Fails loudly, with the tool's own output, when it cannot start.
 */
export interface PostgresProcess {
  /** The cluster's `postgres` database, as the superuser `postgres`. */
  url: string;
  port: number;
  /** `pg_ctl stop`; `immediate` aborts every backend at once, as a crash would. */
  stop(options?: { mode?: 'smart' | 'fast' | 'immediate' }): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it (immediately) if running and removes its directory. */
  cleanup(): Promise<void>;
}

/** The newest installed server's bin directory (Debian layout: /usr/lib/postgresql/<version>/bin). */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
    : [];
  if (versions.length === 0) throw new Error(`no Postgres server binaries under ${root}/<version>/bin (initdb, pg_ctl, postgres)`);
  return join(root, versions[0]!, 'bin');
}

/** initdb and postgres refuse to run as root: as root, they run as the `postgres` OS user. */
const asRoot = process.getuid?.() === 0;

function command(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

/** Runs a Postgres tool to completion; rejects with its exit status and output. */
function run(bin: string, args: string[]): Promise<string> {
  const [file, argv] = command(bin, args);
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-8_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (e) => reject(new Error(`${file} ${argv.join(' ')} could not run: ${e.message}`, { cause: e })));
    child.once('close', (code, signal) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${file} ${argv.join(' ')} failed (code ${code}, signal ${signal})\n${output}`));
    });
  });
}

export async function startPostgresProcess(): Promise<PostgresProcess> {
  const bin = binDir();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'broker-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const pgCtl = join(bin, 'pg_ctl');
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    // Speed where it costs nothing here: without fsync only an OS crash loses data, and the
    // cluster does not outlive the test; a server crash (what the tests do) loses nothing.
    // synchronous_commit stays on: off, a crash may lose commits already acknowledged.
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c max_connections=100',
  ].join(' ');
  const withLog = async (what: string, work: () => Promise<unknown>) => {
    try {
      await work();
    } catch (e) {
      let log = '';
      try {
        log = execFileSync('tail', ['-n', '40', logFile], { encoding: 'utf8' });
      } catch {
        // No log yet.
      }
      throw new Error(`${what} failed: ${(e as Error).message}\n--- ${logFile} ---\n${log}`, { cause: e });
    }
  };
  const start = async () => {
    await withLog('starting the private Postgres', () =>
      run(pgCtl, ['start', '-D', data, '-l', logFile, '-w', '-t', String(START_TIMEOUT_S), '-o', options]),
    );
  };
  // Stops the server if one runs on the data directory (whatever the test did to it), and
  // removes the directory. Also on exit: a test runner that dies leaves nothing behind.
  const release = () => {
    if (existsSync(join(data, 'postmaster.pid'))) {
      const [file, argv] = command(pgCtl, ['stop', '-D', data, '-m', 'immediate']);
      try {
        execFileSync(file, argv, { stdio: 'ignore' });
      } catch {
        // Already gone (a stale pid file).
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', release);

  try {
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    await start();
  } catch (e) {
    release();
    process.off('exit', release);
    throw e;
  }

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop({ mode = 'fast' } = {}) {
      await withLog(`stopping the private Postgres (-m ${mode})`, () => run(pgCtl, ['stop', '-D', data, '-m', mode, '-w']));
    },
    start,
    async cleanup() {
      release();
      process.off('exit', release);
    },
  };
}
