import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANCEL, GET, UPDATE, usd } from './support/fixtures.js';
import { JWT_SECRET } from './support/server.js';
import { type World, startWorld } from './support/world.js';

/**
 * `npm run buy` end to end: the CLI in its own process, against a broker with its engine on and
 * the sandbox fleet (instant latency, seed 1) behind the generic connector. Asserted from what a
 * user sees — the lines printed, the exit code — and from the API and the sandbox's order ledger.
 * Each test buys its own book, so one test's cached offers never decide another's outcome.
 */

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const RUN_TIMEOUT_MS = 30_000;

const BOOK = {
  pride: '9780141439518',
  nineteen84: '9780451524935',
  mockingbird: '9780061120084',
  gatsby: '9780743273565',
  catcher: '9780316769488',
  hobbit: '9780547928227',
  dune: '9780441172719',
  /** Out of print: nobody carries it. */
  ulysses: '9780679722762',
};

let w: World;
let tmp: string;
/** Requests left watching (QUOTED, OUT_OF_STOCK): canceled at the end so none keeps the engine busy. */
const leftWatching: string[] = [];

beforeAll(async () => {
  w = await startWorld();
  tmp = mkdtempSync(join(tmpdir(), 'cli-buy-'));
});
afterAll(async () => {
  for (const id of leftWatching) await w?.server.gql(CANCEL, { id });
  await w?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Cli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout matches, failing with what was printed after the deadline. */
  until(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/**
 * Spawns the CLI with a clean environment (no BROKER_*, JWT_SECRET or DATA_DIR leaking in from
 * the test run), stdout and stderr piped: not a TTY, so plain text.
 */
function cli(args: string[], env: Record<string, string> = {}): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/buy.ts', ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmp, TMPDIR: tmpdir(), DATA_DIR: join(tmp, 'no-such-dir'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const killer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => {
      clearTimeout(killer);
      for (const wake of waiters.splice(0)) wake();
      resolve({ code, stdout: out, stderr: err });
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async until(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(out)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`stdout never matched ${pattern}:\n${out}\nstderr:\n${err}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(0, deadline - Date.now()));
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
  };
}

const run = (args: string[], env?: Record<string, string>) => cli(args, env).exited;
const asAlice = () => ['--url', w.server.url, '--token', w.server.tokens.alice];
const requestId = (stdout: string) => /^Request ([0-9a-f-]{36})/m.exec(stdout)?.[1] ?? null;
/** The printed lifecycle: one [status, message] per event line, in order. */
const lifecycle = (stdout: string) =>
  [...stdout.matchAll(/^ {2} *\+[0-9.hms]+ {2}(\S+) +(.*)$/gm)].map((m) => [m[1]!, m[2]!] as const);

describe('a request followed to its outcome', () => {
  it('streams an order as it happens and exits 0', async () => {
    const expires = new Date(Date.now() + 3_600_000).toISOString();
    const args = ['--isbn', BOOK.pride, '--max', '45.00', '--key', `cli-${Date.now()}`, '--expires', expires, ...asAlice()];
    const r = await run(args);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);

    const id = requestId(r.stdout);
    expect(id).not.toBeNull();
    const statuses = lifecycle(r.stdout).map(([s]) => s);
    expect(statuses[0]).toBe('PENDING');
    expect(statuses.at(-1)).toBe('ORDERED');
    // Each status once, in lifecycle order (a refused attempt may add steps, never reorder them).
    const firsts = ['PENDING', 'SEARCHING', 'ORDERING', 'ORDERED'].map((s) => statuses.indexOf(s));
    expect(firsts.every((i) => i >= 0)).toBe(true);
    expect([...firsts].sort((a, b) => a - b)).toEqual(firsts);
    expect(r.stdout).toMatch(/best offer \$\d+\.\d\d from .+ \(new, within budget\)/);

    // What it printed is what the broker did: the same order, placed once with the partner.
    const got = await w.server.gql(
      `query($id: ID!) { purchaseRequest(id: $id) { status order { sellerOrderId total { cents } seller { name } } } }`,
      { id },
    );
    const order = got.data.purchaseRequest.order;
    expect(got.data.purchaseRequest.status).toBe('ORDERED');
    const total = `$${(order.total.cents / 100).toFixed(2)}`;
    expect(r.stdout).toContain(`Ordered from ${order.seller.name} for ${total} (seller order ${order.sellerOrderId}`);
    expect((await w.sandbox.ledger()).filter((e) => e.requestId === id)).toHaveLength(1);

    // The same key and input is the same request: shown again, never bought twice.
    const same = await run(args);
    expect(same.code).toBe(0);
    expect(requestId(same.stdout)).toBe(id);
    expect((await w.sandbox.ledger()).filter((e) => e.requestId === id)).toHaveLength(1);

    // --watch replays the same history for a request that is already decided.
    const again = await run(['--watch', id!, ...asAlice()]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`Watching request ${id}`);
    expect(lifecycle(again.stdout)).toEqual(lifecycle(r.stdout));
  });

  it('stops at QUOTED when every offer is over budget, says the broker keeps watching, exits 10', async () => {
    const r = await run(['--isbn', BOOK.gatsby, '--max', '5.00', ...asAlice()]);
    const id = requestId(r.stdout);
    if (id) leftWatching.push(id);
    expect(r.code).toBe(10);
    expect(lifecycle(r.stdout).at(-1)?.[0]).toBe('QUOTED');
    expect(r.stdout).toMatch(/best offer \$\d+\.\d\d from .+ over budget/);
    expect(r.stdout).toMatch(/^Quoted: the best offer, \$\d+\.\d\d from .+, is over your \$5\.00 budget\.$/m);
    expect(r.stdout).toContain('The broker keeps watching until the deadline');
    expect(r.stdout).toContain(`npm run buy -- --watch ${id} --url ${w.server.url}`);
    expect((await w.server.gql(GET, { id })).data.purchaseRequest.status).toBe('QUOTED');
  });

  it('stops at OUT_OF_STOCK when nobody has the book, exits 11', async () => {
    const r = await run(['--isbn', BOOK.ulysses, '--max', '45', ...asAlice()]);
    const id = requestId(r.stdout);
    if (id) leftWatching.push(id);
    expect(r.code).toBe(11);
    expect(lifecycle(r.stdout).map(([s]) => s)).toEqual(['PENDING', 'SEARCHING', 'OUT_OF_STOCK']);
    expect(r.stdout).toContain('Out of stock: no seller has this book right now.');
  });

  it('ends FAILED with exit 22 when the payment is declined', async () => {
    const r = await run(['--isbn', BOOK.hobbit, '--max', '45', '--payment-token', 'tok_declined', ...asAlice()]);
    expect(r.code).toBe(22);
    expect(lifecycle(r.stdout).at(-1)?.[0]).toBe('FAILED');
    expect(r.stdout).toMatch(/^Failed: .*declined.*\.$/im);
  });

  it('prints one JSON object per line with --json, ending with the outcome', async () => {
    const r = await run(['--isbn', BOOK.nineteen84, '--max', '45.00', '--json', ...asAlice()]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    const objects = lines.map((l) => JSON.parse(l) as Record<string, any>);
    expect(objects[0]).toMatchObject({ type: 'begin', created: true, status: 'PENDING', maxTotalPrice: { cents: 4500, currency: 'USD' } });
    const updates = objects.filter((o) => o.type === 'request');
    expect(updates.at(-1)).toMatchObject({ status: 'ORDERED', order: { sellerOrderId: expect.any(String) } });
    // Every event exactly once across the updates, in revision order.
    const revisions = updates.flatMap((u) => u.events.map((e: { revision: number }) => e.revision));
    expect(revisions).toEqual([...new Set(revisions)].sort((a, b) => a - b));
    expect(objects.at(-1)).toMatchObject({ type: 'outcome', status: 'ORDERED', exitCode: 0, watching: false });
  });

  it('survives a dropped socket: reconnects, resumes after the last revision seen, misses nothing', async () => {
    const proxy = await tcpProxy(Number(new URL(w.server.url).port));
    try {
      const c = cli(['--isbn', BOOK.dune, '--max', '3.00', '--wait', '--url', proxy.url, '--token', w.server.tokens.alice]);
      await c.until(/QUOTED .*\n/);
      const id = requestId(c.stdout())!;
      const quotedAt = (await w.server.gql(GET, { id })).data.purchaseRequest.revision as number;
      proxy.drop();
      await c.until(/connection lost \(.*\); reconnecting…/);
      // What happens while the CLI is away is shown when it is back: the raised budget and the order.
      expect((await w.server.gql(UPDATE, { id, input: { maxTotalPrice: usd(4500) } })).data.updatePurchaseRequest.userErrors).toEqual([]);
      const r = await c.exited;
      expect(r.code).toBe(0);
      // Resumed after the last state it had shown (a scheduled recheck may have added one since).
      const resumedAfter = Number(/reconnected; resuming after revision (\d+)/.exec(r.stdout)?.[1]);
      expect(resumedAfter).toBeGreaterThanOrEqual(quotedAt);
      expect(r.stdout.indexOf('connection lost')).toBeLessThan(r.stdout.indexOf('reconnected;'));
      const printed = lifecycle(r.stdout);
      expect(printed.map(([s]) => s)).toEqual(expect.arrayContaining(['QUOTED', 'ORDERING', 'ORDERED']));
      // Exactly the request's history, each event once: the same lines as a fresh --watch prints.
      const replay = await run(['--watch', id, ...asAlice()]);
      expect(printed).toEqual(lifecycle(replay.stdout));
    } finally {
      await proxy.close();
    }
  });

  it('stops watching on Ctrl-C with exit 130; the request goes on', async () => {
    const c = cli(['--isbn', BOOK.catcher, '--max', '3.00', '--wait', ...asAlice()]);
    await c.until(/QUOTED .*\n/);
    const id = requestId(c.stdout())!;
    leftWatching.push(id);
    c.child.kill('SIGINT');
    const r = await c.exited;
    expect(r.code).toBe(130);
    expect(r.stdout).toContain(`Stopped watching. Request ${id} goes on (now QUOTED).`);
    expect(r.stdout).toContain(`Watch it again: npm run buy -- --watch ${id} --wait --url ${w.server.url}`);
    expect((await w.server.gql(GET, { id })).data.purchaseRequest.status).toBe('QUOTED');
  });
});

describe('failures a user can act on', () => {
  it('shows the broker’s userError code for rejected input and exits 2', async () => {
    const r = await run(['--isbn', '9780141439519', '--max', '45', ...asAlice()]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error: the broker rejected the request (INVALID_ISBN)');
    expect(r.stderr).toMatch(/^ {2}INVALID_ISBN {2}input\.book\.isbn: /m);
  });

  it('reports rejected input as JSON with --json', async () => {
    const r = await run(['--isbn', '9780141439518', '--max', '45', '--currency', 'EUR', '--json', ...asAlice()]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'error', exitCode: 2, userErrors: [{ code: 'UNSUPPORTED_CURRENCY' }] });
  });

  it('refuses bad usage before calling anyone, with exit 2', async () => {
    const r = await run(['--isbn', BOOK.pride, '--max', 'forty-five', '--url', w.server.url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--max must be an amount such as 45 or 45.00');
    expect(r.stderr).toContain('--help');
  });

  it('exits 3 with a readable message when the broker refuses the token', async () => {
    const r = await run(['--isbn', BOOK.pride, '--max', '45', '--url', w.server.url, '--token', 'not-a-jwt']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error: not authenticated');
    expect(r.stderr).toContain('the token from --token is not valid for this broker');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('exits 3 and says how to get a token when there is none', async () => {
    const r = await run(['--isbn', BOOK.pride, '--max', '45', '--url', w.server.url]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no token to call the broker with');
    expect(r.stderr).toContain('BROKER_TOKEN');
  });

  it('exits 4 when the broker is unreachable', async () => {
    const port = await closedPort();
    const r = await run(['--isbn', BOOK.pride, '--max', '45', '--url', `http://127.0.0.1:${port}`, '--token', w.server.tokens.alice]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`cannot reach the broker at http://127.0.0.1:${port}/graphql (ECONNREFUSED)`);
    expect(r.stderr).toContain('npm start');
  });

  it('documents its exit codes in --help', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const line of [/^ {2}0 +ORDERED/m, /^ {2}2 +bad usage/m, /^ {2}3 +not authenticated/m, /^ {2}4 +the broker is unreachable/m, /^ {2}10 +QUOTED/m, /^ {2}11 +OUT_OF_STOCK/m, /^ {2}130 +interrupted/m]) {
      expect(r.stdout).toMatch(line);
    }
  });
});

describe('a token made from the local broker’s secret', () => {
  it('is accepted by a broker started with that secret, as demo-user', async () => {
    const dataDir = join(tmp, 'data');
    writeSecret(dataDir, JWT_SECRET);
    const r = await run(['--isbn', BOOK.mockingbird, '--max', '45.00', '--url', w.server.url], { DATA_DIR: dataDir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // The request is demo-user's, not alice's.
    const id = requestId(r.stdout)!;
    expect((await w.server.gql(GET, { id })).data.purchaseRequest).toBeNull();
  });

  it('is refused, naming the file, when the secret is not the broker’s', async () => {
    const dataDir = join(tmp, 'stale');
    writeSecret(dataDir, 'some-other-secret-0123456789abcdef');
    const r = await run(['--isbn', BOOK.mockingbird, '--max', '45.00', '--url', w.server.url], { DATA_DIR: dataDir });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`the token made from ${join(dataDir, 'jwt-secret')} is not valid for this broker`);
  });
});

/** What `npm start` keeps when it generates its own secret: `<DATA_DIR>/jwt-secret`. */
function writeSecret(dir: string, secret: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'jwt-secret'), secret);
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A TCP proxy in front of the broker whose open connections can be cut at once, as a network drop would. */
async function tcpProxy(targetPort: number): Promise<{ url: string; drop(): void; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const track = (s: Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
    s.on('error', () => s.destroy());
  };
  const srv = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    track(client);
    track(upstream);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  const drop = () => {
    for (const s of open) s.destroy();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    drop,
    close: () =>
      new Promise<void>((resolve) => {
        drop();
        srv.close(() => resolve());
      }),
  };
}
