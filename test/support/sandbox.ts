import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Condition, LedgerEntry, SandboxSellerSpec, SellerKnobs, SellerStats } from '../../src/partners/sandbox/fleet.js';
import type { SellerInputShape } from '../../src/partners/seller-config.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STARTUP_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

/** A sandbox fleet in its own process, driven through its admin endpoints. */
export interface SandboxProcess {
  url: string;
  sellers: SellerInputShape[];
  pid: number;
  stats(): Promise<Record<string, SellerStats>>;
  ledger(sellerKey?: string): Promise<LedgerEntry[]>;
  reset(): Promise<void>;
  configure(sellerKey: string, patch: Partial<SellerKnobs>): Promise<void>;
  setInventory(sellerKey: string, isbn: string, qty: number, condition?: Condition): Promise<void>;
  setPrice(sellerKey: string, isbn: string, itemCents: number, condition?: Condition): Promise<void>;
  /** Each seller's spec as seeded (shipping, tax, fees…), by key. */
  specs(): Promise<Record<string, SandboxSellerSpec>>;
  /** Kills the process and waits for it to exit. */
  stop(): Promise<void>;
}

/** Spawns `src/partners/sandbox/main.ts` on a free port and waits for its JSON start-up line. */
export async function startSandboxProcess(opts: { seed?: number; latencyScale?: number } = {}): Promise<SandboxProcess> {
  const args = ['--import', 'tsx', 'src/partners/sandbox/main.ts', '--port', '0', '--exit-on-stdin-close'];
  if (opts.seed !== undefined) args.push('--seed', String(opts.seed));
  if (opts.latencyScale !== undefined) args.push('--latency-scale', String(opts.latencyScale));
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8_000);
  });

  let started: { url: string; sellers: SellerInputShape[] };
  try {
    started = await firstLine(child, exited, () => stderr);
  } catch (e) {
    await kill(child, exited);
    throw e;
  }
  const { url, sellers } = started;

  const admin = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${url}/_admin/${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`sandbox admin ${method} ${path} answered ${res.status}: ${text}`);
    return JSON.parse(text) as unknown;
  };

  return {
    url,
    sellers,
    pid: child.pid!,
    stats: async () => (await admin('GET', 'stats')) as Record<string, SellerStats>,
    ledger: async (sellerKey) =>
      (await admin('GET', sellerKey === undefined ? 'ledger' : `ledger?seller=${encodeURIComponent(sellerKey)}`)) as LedgerEntry[],
    reset: async () => void (await admin('POST', 'reset', {})),
    configure: async (sellerKey, patch) => void (await admin('POST', `sellers/${encodeURIComponent(sellerKey)}`, patch)),
    setInventory: async (seller, isbn, qty, condition) =>
      void (await admin('POST', 'inventory', { seller, isbn, qty, ...(condition ? { condition } : {}) })),
    setPrice: async (seller, isbn, itemCents, condition) =>
      void (await admin('POST', 'price', { seller, isbn, itemCents, ...(condition ? { condition } : {}) })),
    specs: async () => Object.fromEntries(((await admin('GET', 'specs')) as SandboxSellerSpec[]).map((s) => [s.key, s])),
    stop: () => kill(child, exited),
  };
}

function firstLine(
  child: ChildProcess,
  exited: Promise<void>,
  stderr: () => string,
): Promise<{ url: string; sellers: SellerInputShape[] }> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => fail(new Error(`sandbox process did not start within ${STARTUP_TIMEOUT_MS} ms\n${stderr()}`)), STARTUP_TIMEOUT_MS);
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      lines.close();
      reject(e);
    };
    void exited.then(() => fail(new Error(`sandbox process exited with code ${child.exitCode} before it listened\n${stderr()}`)));
    lines.once('line', (line) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Keep draining stdout so the child never blocks on a full pipe.
      lines.on('line', () => {});
      try {
        const parsed = JSON.parse(line) as { url: string; sellers: SellerInputShape[] };
        resolve(parsed);
      } catch (e) {
        reject(new Error(`sandbox process printed something other than its JSON start-up line: ${line}`, { cause: e }));
      }
    });
  });
}

async function kill(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** The landed total a sandbox seller charges for a copy at `itemCents`: its shipping, tax and fees added. */
export function landedTotal(spec: SandboxSellerSpec, itemCents: number): number {
  return itemCents + spec.shippingCents + Math.round(itemCents * spec.taxRate) + spec.feeCents;
}
