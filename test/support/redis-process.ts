import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from './broker-process.js';

const READY_TIMEOUT_MS = 10_000;

/**
 * A redis-server of a test's own, on a free port, that the test may kill outright and start
 * again on the same port — never the shared one other suites use. Nothing is persisted: a
 * restart comes back empty, as a Redis without persistence does after a crash.
 */
export interface RedisProcess {
  url: string;
  port: number;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port; waits until it answers PING. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Whether `redis-server` can be run here (it is on PATH in CI). */
export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function startRedisProcess(): Promise<RedisProcess> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const orphanGuard = () => child?.kill('SIGKILL');
  process.on('exit', orphanGuard);

  const launch = async () => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4_000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    child = proc;
    exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await pong(port))) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with code ${proc.exitCode}\n${output}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer within ${READY_TIMEOUT_MS} ms\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = async (signal: 'SIGKILL' | 'SIGTERM') => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    await exited;
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill: () => kill('SIGKILL'),
    restart: launch,
    stop: async () => {
      await kill('SIGTERM');
      process.off('exit', orphanGuard);
    },
  };
}

/** One PING over a raw socket: true on +PONG. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}
