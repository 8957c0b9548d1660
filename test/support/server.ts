import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { type App, startServer, type StartOptions } from '../../src/server.js';
import { createLogger } from '../../src/logger.js';

export const JWT_SECRET = 'test-secret-0123456789abcdef0123456789';

/** Which storage the suites run on: Postgres when TEST_DATABASE_URL is set, else embedded PGlite. */
export const storage: 'postgres' | 'pglite' = process.env.TEST_DATABASE_URL ? 'postgres' : 'pglite';

/**
 * A fresh, empty database for one test file: a new database on the Postgres server, or a new
 * PGlite data directory. Fails loudly when TEST_DATABASE_URL is set but unreachable.
 */
export async function freshDatabase(): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  const adminUrl = process.env.TEST_DATABASE_URL;
  // Servers on one database are one deployment: they share a Redis prefix, and no other test's.
  const redisPrefix = { REDIS_PREFIX: `test-${randomBytes(6).toString('hex')}:` };
  if (!adminUrl) {
    const dir = mkdtempSync(join(tmpdir(), 'broker-test-'));
    return { env: { DATA_DIR: dir, ...redisPrefix }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `broker_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } catch (e) {
    await admin.end();
    throw new Error(`TEST_DATABASE_URL is set but Postgres refused to create a test database: ${(e as Error).message}`, { cause: e });
  }
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString(), ...redisPrefix },
    async drop() {
      const again = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await again.unsafe(`drop database if exists ${name} with (force)`);
      await again.end();
    },
  };
}

export interface TestServer {
  app: App;
  url: string;
  wsUrl: string;
  config: Config;
  tokens: { alice: string; bob: string; admin: string };
  /** POST a GraphQL operation; returns the parsed body and the HTTP status. */
  gql<T = any>(query: string, variables?: Record<string, unknown>, token?: string | null): Promise<GqlResult<T>>;
  /** A graphql-ws client authenticated with the given token (or none). */
  wsClient(token?: string | null, extra?: Partial<Parameters<typeof createClient>[0]>): Client;
  /** Stop the server, keeping the database (for restart tests). */
  stop(): Promise<void>;
  /** Start a new server on the same database. */
  restart(): Promise<TestServer>;
  /** Stop and drop the database. */
  close(): Promise<void>;
}

export interface GqlResult<T> {
  status: number;
  data: T;
  errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> }>;
}

/** A `gql` for the broker at `url`: POSTs to /graphql with `defaultToken` unless given another (or null). */
export function gqlOver(url: string, defaultToken: string) {
  return async function gql<T = any>(query: string, variables?: Record<string, unknown>, token: string | null = defaultToken): Promise<GqlResult<T>> {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data: any; errors?: GqlResult<any>['errors'] };
    return { status: res.status, data: body.data, errors: body.errors };
  };
}

export async function startTestServer(
  env: Record<string, string> = {},
  options: StartOptions = {},
  db?: Awaited<ReturnType<typeof freshDatabase>>,
): Promise<TestServer> {
  const database = db ?? (await freshDatabase());
  const config = loadConfig({
    PORT: '0',
    JWT_SECRET,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    SHUTDOWN_GRACE_MS: '2000',
    // The API suites run without the engine and sandbox so requests stay where they put them;
    // engine suites turn them on (ENGINE: 'true', and a sandbox of their own).
    ENGINE: 'false',
    SANDBOX: 'off',
    ...(process.env.TEST_REDIS_URL ? { REDIS_URL: process.env.TEST_REDIS_URL } : {}),
    ...database.env,
    ...env,
  });
  let app: App;
  try {
    app = await startServer(config, { log: createLogger(config.logLevel), ...options });
  } catch (e) {
    if (!db) await database.drop();
    throw e;
  }
  const [alice, bob, admin] = await Promise.all([
    app.auth.issue('alice', 'user'),
    app.auth.issue('bob', 'user'),
    app.auth.issue('root', 'admin'),
  ]);
  const url = app.url;
  const wsUrl = `${url.replace(/^http/, 'ws')}/graphql`;
  const clients: Client[] = [];
  const server: TestServer = {
    app,
    url,
    wsUrl,
    config,
    tokens: { alice, bob, admin },
    gql: gqlOver(url, alice),
    wsClient(token = alice, extra = {}) {
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: true,
        connectionParams: token ? { authorization: `Bearer ${token}` } : {},
        ...extra,
      });
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.dispose()));
      await app.stop();
    },
    async restart() {
      await server.stop();
      return startTestServer(env, options, database);
    },
    async close() {
      await server.stop();
      await database.drop();
    },
  };
  return server;
}

/** Collects what a subscription emits, so tests can await a condition instead of sleeping. */
export class Collected<T> {
  readonly values: T[] = [];
  error: unknown = null;
  completed = false;
  private waiters: Array<() => void> = [];

  push(v: T) {
    this.values.push(v);
    this.wake();
  }
  fail(e: unknown) {
    this.error = e;
    this.wake();
  }
  complete() {
    this.completed = true;
    this.wake();
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when `predicate` holds, failing after `timeoutMs` with what was seen. */
  async until(predicate: (c: this) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`condition not met within ${timeoutMs} ms; saw ${JSON.stringify({ values: this.values, error: String(this.error), completed: this.completed })}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** Subscribes with a graphql-ws client and collects every `next` payload. */
/**
 * A server of the file's own whose SQL statements are recorded, started before the file's tests
 * (or the enclosing describe's) and stopped after them: `queries` holds every statement sent.
 */
export function useQueryCountingServer(): { readonly server: TestServer; readonly queries: string[] } {
  const handle = { server: undefined as unknown as TestServer, queries: [] as string[] };
  beforeAll(async () => {
    handle.server = await startTestServer({}, { onQuery: (sql) => handle.queries.push(sql) });
  });
  afterAll(async () => {
    await handle.server?.close();
  });
  return handle;
}

export function collect<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}): { seen: Collected<{ data?: T; errors?: any[] }>; stop: () => void } {
  const seen = new Collected<{ data?: T; errors?: any[] }>();
  const stop = client.subscribe<T>(
    { query, variables },
    {
      next: (v) => seen.push(v as { data?: T; errors?: any[] }),
      error: (e) => seen.fail(e),
      complete: () => seen.complete(),
    },
  );
  return { seen, stop };
}

/** Polls `probe` until it returns a truthy value or the deadline passes. */
export async function eventually<T>(probe: () => Promise<T | null | undefined | false>, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`not reached within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}

/**
 * Polls a request through `read` until `predicate` holds, failing with its last state after the
 * deadline.
 */
export async function untilRequest(id: string, read: (id: string) => Promise<any>, predicate: (r: any) => boolean, timeoutMs: number): Promise<any> {
  let last: unknown = null;
  try {
    return await eventually(async () => {
      last = await read(id);
      return predicate(last) ? last : null;
    }, timeoutMs);
  } catch {
    throw new Error(`request ${id} did not reach the expected state within ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`);
  }
}
