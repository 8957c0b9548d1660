import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Auth } from '../../src/http/auth.js';
import { JWT_SECRET, type GqlResult, gqlOver } from './server.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const READY_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 5_000;

/**
 * The broker as its own process (its source, `node --import tsx src/main.ts`, unless a built entry is
 * given), for tests that kill it
 * outright — SIGKILL, no shutdown hooks — and start it again on the same storage.
 */
export interface BrokerProcess {
  url: string;
  pid: number;
  tokens: { alice: string; admin: string };
  gql<T = any>(query: string, variables?: Record<string, unknown>, token?: string | null): Promise<GqlResult<T>>;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after a grace period; waits for exit. */
  stop(): Promise<void>;
  /**
   * Sends `signal` and waits up to `waitMs` for the process to exit by itself (then SIGKILL),
   * returning how it ended and the tail of its output (stdout and stderr).
   */
  terminate(signal?: 'SIGTERM' | 'SIGINT', waitMs?: number): Promise<Exit>;
  /** The last 8,000 characters the process wrote (stdout and stderr). */
  output(): string;
}

/** How a broker process ended. `signal` is set when a signal ended it (SIGKILL after the wait). */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** A port nobody listens on now: bind port 0, read it, let it go. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not read a free port');
  return address.port;
}

/**
 * Starts the broker with `env` on top of a quiet, test-sized baseline, and waits for GET /readyz 200.
 * `entry` is the module run, relative to the repository: the source under tsx by default, or a
 * built `…/main.js` (`npm start`'s), run by plain Node.
 */
export async function startBrokerProcess(env: Record<string, string>, entry = 'src/main.ts'): Promise<BrokerProcess> {
  const port = await freePort();
  // A built entry runs as `npm start` runs it.
  const child = spawn(process.execPath, [...(entry.endsWith('.ts') ? ['--import', 'tsx'] : []), entry], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      JWT_SECRET,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      SANDBOX: 'off',
      ...(process.env.TEST_REDIS_URL ? { REDIS_URL: process.env.TEST_REDIS_URL } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A test runner that dies must not leave a broker behind holding the database.
  const orphanGuard = () => child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.off('exit', orphanGuard);
      resolve();
    }),
  );
  // 'close' comes after the last output has been read from the pipes.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-8_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);

  const url = `http://127.0.0.1:${port}`;
  try {
    await ready(url, child, exited, () => output);
  } catch (e) {
    await kill(child, exited, 'SIGKILL');
    throw e;
  }

  const auth = new Auth(JWT_SECRET);
  const [alice, admin] = await Promise.all([auth.issue('alice', 'user'), auth.issue('root', 'admin')]);
  return {
    url,
    pid: child.pid!,
    tokens: { alice, admin },
    gql: gqlOver(url, alice),
    kill: () => kill(child, exited, 'SIGKILL'),
    stop: () => kill(child, exited, 'SIGTERM'),
    output: () => output,
    terminate: async (signal = 'SIGTERM', waitMs = 30_000) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), waitMs);
        await exited;
        clearTimeout(timer);
      }
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1_000))]);
      return { code: child.exitCode, signal: child.signalCode, output };
    },
  };
}

async function ready(url: string, child: ChildProcess, exited: Promise<void>, output: () => string): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`broker exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready\n${output()}`);
    try {
      const res = await fetch(`${url}/readyz`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`broker was not ready within ${READY_TIMEOUT_MS} ms\n${output()}`);
}

async function kill(child: ChildProcess, exited: Promise<void>, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const timer = signal === 'SIGKILL' ? null : setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  if (timer) clearTimeout(timer);
}
