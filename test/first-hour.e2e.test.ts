import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type BrokerProcess, freePort, startBrokerProcess } from './support/broker-process.js';
import { CANCEL, CREATE, IN_PRINT_BOOKS, createInput } from './support/fixtures.js';
import { JWT_SECRET, eventually, freshDatabase, gqlOver } from './support/server.js';

/**
 * `npm start` as a developer meets it in the first hour (its source, under tsx; build.e2e.test.ts
 * starts the built server `npm start` runs): the tokens the embedded default prints
 * keep working after a restart (its generated secret is kept in DATA_DIR), a taken port or an
 * unusable DATA_DIR is one line saying what to change (and a non-zero exit), and a restart that
 * resumes many requests at once prints no listener-leak warning.
 */

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const ME = `query { purchaseRequests(first: 1) { edges { node { id } } } }`;
const LIST = `query { purchaseRequests(first: 50) { edges { node { id status } } } }`;
const SETTLED = ['QUOTED', 'OUT_OF_STOCK', 'ORDERED', 'FAILED', 'EXPIRED', 'CANCELED'];

const dirs: string[] = [];
const brokers: BrokerProcess[] = [];
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.kill()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'broker-first-hour-'));
  dirs.push(dir);
  return dir;
}

async function start(env: Record<string, string>): Promise<BrokerProcess> {
  const broker = await startBrokerProcess(env);
  brokers.push(broker);
  return broker;
}

/** The tokens the start-up banner printed. */
async function printedTokens(broker: BrokerProcess): Promise<{ user: string; admin: string }> {
  // The banner is written just after the server starts listening: it may trail /readyz.
  return eventually(async () => {
    const user = /user {2}\(sub=demo-user\): {2}(\S+)/.exec(broker.output())?.[1];
    const admin = /admin \(sub=demo-admin\): (\S+)/.exec(broker.output())?.[1];
    return user && admin ? { user, admin } : null;
  });
}

/** Runs the broker to its end (it is expected to refuse to start) and returns how it ended. */
function runToExit(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', LOG_LEVEL: 'silent', SANDBOX: 'off', ENGINE: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    }),
  );
}

describe('the embedded default keeps its generated JWT secret in DATA_DIR', () => {
  it('a token printed by the first start still works after a restart', async () => {
    const dir = tempDir();
    const env = { JWT_SECRET: '', DATA_DIR: dir, ENGINE: 'false' };
    const first = await start(env);
    const tokens = await printedTokens(first);
    expect(first.output()).toContain(`kept in ${join(dir, 'jwt-secret')}`);
    const asUser = gqlOver(first.url, tokens.user);
    expect((await asUser(ME)).errors).toBeUndefined();

    // Saved for the CLI and the next start: the raw secret, this user's alone.
    const file = join(dir, 'jwt-secret');
    const secret = readFileSync(file, 'utf8');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await first.stop();

    const second = await start(env);
    expect((await gqlOver(second.url, tokens.user)(ME)).errors).toBeUndefined();
    expect((await gqlOver(second.url, tokens.admin)(ME)).errors).toBeUndefined();
    expect(readFileSync(file, 'utf8')).toBe(secret);
    // The new start's tokens are made with the same secret, so they work on the first's data too.
    const again = await printedTokens(second);
    expect((await gqlOver(second.url, again.user)(ME)).errors).toBeUndefined();
    await second.stop();
  }, 120_000);

  it('JWT_SECRET wins: nothing is generated or saved, and tokens signed with it work', async () => {
    const dir = tempDir();
    const broker = await start({ JWT_SECRET, DATA_DIR: dir, ENGINE: 'false' });
    expect((await broker.gql(ME)).errors).toBeUndefined();
    expect(() => statSync(join(dir, 'jwt-secret'))).toThrow(/ENOENT/);
    expect(broker.output()).not.toContain('JWT_SECRET is unset');
    await broker.stop();
  }, 120_000);

  it('with no folder of its own (DATA_DIR=memory://) the secret lives and dies with the process', async () => {
    const broker = await start({ JWT_SECRET: '', DATA_DIR: 'memory://', ENGINE: 'false' });
    const tokens = await printedTokens(broker);
    expect(broker.output()).toContain('JWT_SECRET is unset, so this process made its own. Tokens valid until it exits');
    expect((await gqlOver(broker.url, tokens.user)(ME)).errors).toBeUndefined();
    await broker.stop();
  }, 120_000);
});

describe('start-up problems are one line saying what to change, and a non-zero exit', () => {
  let holder: Server | null = null;
  afterAll(() => holder?.close());

  it('a taken port names the port and how to pick another', async () => {
    const port = await freePort();
    holder = createServer();
    await new Promise<void>((resolve) => holder!.listen(port, '127.0.0.1', () => resolve()));
    const { code, stderr } = await runToExit({ PORT: String(port), DATA_DIR: 'memory://', JWT_SECRET });
    expect(code).toBe(2);
    expect(stderr.trim()).toBe(
      `cannot start: port ${port} is already in use on 127.0.0.1 (is another broker still running?); stop it, or pick another port, e.g. PORT=${port + 1}`,
    );
  }, 90_000);

  it('a DATA_DIR that is a file', async () => {
    const file = join(tempDir(), 'not-a-folder');
    writeFileSync(file, 'x');
    const { code, stderr, stdout } = await runToExit({ PORT: '0', DATA_DIR: file, JWT_SECRET: '' });
    expect(code).toBe(2);
    expect(stderr.trim()).toBe(`cannot start: DATA_DIR=${file} is a file, not a folder; point DATA_DIR at a folder this user can write (it is created when missing), e.g. DATA_DIR=./.data`);
    expect(stdout).not.toContain('listening');
  }, 90_000);

  it('a DATA_DIR whose parent is a file', async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'x');
    const { code, stderr } = await runToExit({ PORT: '0', DATA_DIR: join(file, 'data') });
    expect(code).toBe(2);
    expect(stderr.trim()).toBe(
      `cannot start: cannot use DATA_DIR=${join(file, 'data')}: part of the path is a file, not a folder; point DATA_DIR at a folder this user can write (it is created when missing), e.g. DATA_DIR=./.data`,
    );
  }, 90_000);
});

describe('a restart that resumes many requests', () => {
  it('prints no MaxListenersExceededWarning, and every request is finished', async () => {
    const db = await freshDatabase();
    try {
      // Slow sandbox sellers keep the requests in their rounds when the first process is killed.
      const env = { ...db.env, ENGINE: 'true', SANDBOX: 'on', SANDBOX_LATENCY_SCALE: '30', ENGINE_LEASE_MS: '1000', LOG_LEVEL: 'warn' };
      const first = await start(env);
      const ids: string[] = [];
      for (const isbn of IN_PRINT_BOOKS.slice(0, 8)) {
        const res = await first.gql(CREATE, { input: createInput({ book: { isbn } }) });
        expect(res.data.createPurchaseRequest.userErrors).toEqual([]);
        ids.push(res.data.createPurchaseRequest.purchaseRequest.id);
      }
      await eventually(async () => {
        const rows = (await first.gql(LIST)).data.purchaseRequests.edges.map((e: any) => e.node);
        return rows.filter((r: any) => r.status === 'SEARCHING').length >= 6;
      }, 30_000);
      await first.kill();

      const second = await start(env);
      const rows = await eventually(async () => {
        const nodes = (await second.gql(LIST)).data.purchaseRequests.edges.map((e: any) => e.node);
        return nodes.length === 8 && nodes.every((r: any) => SETTLED.includes(r.status)) ? nodes : null;
      }, 150_000);
      expect(rows.map((r: any) => r.id).sort()).toEqual([...ids].sort());
      const output = first.output() + second.output();
      expect(output).not.toContain('MaxListenersExceededWarning');
      expect(output).not.toMatch(/\(node:\d+\) \w*Warning/);

      // "an ORDERED request", not "a ORDERED request".
      const ordered = rows.find((r: any) => r.status === 'ORDERED');
      expect(ordered, JSON.stringify(rows)).toBeDefined();
      const refused = await second.gql(CANCEL, { id: ordered.id });
      expect(refused.data.cancelPurchaseRequest.userErrors[0].message).toBe('an ORDERED request can no longer be canceled');
      await second.stop();
    } finally {
      await db.drop();
    }
  }, 300_000);
});
