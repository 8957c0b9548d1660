import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STOP_GRACE_MS = 5_000;

/** One process the benchmark started: every one is registered with the supervisor, which stops them all. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  /** The last few KB of its stdout and stderr, for error messages. */
  output(): string;
  /** SIGTERM, SIGKILL after a grace period; resolves once it is gone. */
  stop(): Promise<void>;
}

/**
 * Owns every process the benchmark starts. `stopAll` is called from `finally`, from SIGINT/SIGTERM,
 * and (synchronously, SIGKILL) from `exit`; each child also watches its stdin pipe, so even a bench
 * killed outright leaves nothing behind.
 */
export class Supervisor {
  private readonly children = new Set<Child>();

  constructor() {
    process.once('exit', () => {
      for (const c of this.children) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL');
    });
  }

  /** Spawns `node [--import tsx] <script> …args` from the repository root with stdin piped (closed = exit). */
  spawnNode(name: string, script: string, args: string[], env: Record<string, string>, nodeArgs: string[] = []): Child {
    // TypeScript runs under tsx; a plain module (the built broker's wrapper) under Node alone.
    const proc = spawn(process.execPath, [...nodeArgs, ...(script.endsWith('.ts') ? ['--import', 'tsx'] : []), script, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    const keep = (chunk: Buffer) => {
      out = (out + chunk.toString('utf8')).slice(-16_000);
    };
    proc.stderr!.on('data', keep);
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const child: Child = {
      name,
      pid: proc.pid ?? -1,
      process: proc,
      exited,
      output: () => out,
      stop: async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      },
    };
    if (child.pid < 0) throw new Error(`could not start ${name}`);
    this.children.add(child);
    void exited.then(() => this.children.delete(child));
    // stdout is read by firstJsonLine (children that announce themselves) or merely kept.
    proc.stdout!.on('data', keep);
    return child;
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.children].reverse().map((c) => c.stop()));
  }
}

/** Waits for a child's first stdout line that parses as a JSON object. */
export function firstJsonLine<T>(child: Child, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.process.stdout! });
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(
      () => finish(() => reject(new Error(`${child.name} did not announce itself within ${timeoutMs} ms\n${child.output()}`))),
      timeoutMs,
    );
    void child.exited.then(() =>
      finish(() => reject(new Error(`${child.name} exited (code ${child.process.exitCode}) before it started\n${child.output()}`))),
    );
    lines.on('line', (line) => {
      if (settled || !line.startsWith('{')) return;
      try {
        const parsed = JSON.parse(line) as T;
        finish(() => resolve(parsed));
      } catch {
        // Not our line; keep reading.
      }
    });
  });
}

/** A port nobody listens on now (bind port 0 on loopback, read it, let it go). */
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

let clockTicks: number | null = null;
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; null when unreadable. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
    return (utime + stime) / ticksPerSecond();
  } catch {
    return null;
  }
}

/** VmRSS and VmHWM (peak) of a process in MB, from /proc/<pid>/status; null when unreadable. */
export function processMemoryMb(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const rss = kb('VmRSS');
    const hwm = kb('VmHWM');
    if (!Number.isFinite(rss)) return null;
    return { rss: rss / 1024, hwm: (Number.isFinite(hwm) ? hwm : rss) / 1024 };
  } catch {
    return null;
  }
}

/** Samples a process's RSS every `everyMs`, keeping the largest value seen. */
export class RssSampler {
  peakMb = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number, everyMs = 250) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  sample(): void {
    const m = processMemoryMb(this.pid);
    if (m) this.peakMb = Math.max(this.peakMb, m.rss);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Machine-wide CPU jiffies (busy and total, all CPUs) from /proc/stat; null when unreadable. */
export function machineCpu(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Summed CPU seconds of several processes, by pid (those that cannot be read are left out). */
export function cpuByPid(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const s = processCpuSeconds(pid);
    if (s !== null) out.set(pid, s);
  }
  return out;
}
