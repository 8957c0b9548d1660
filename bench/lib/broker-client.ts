import { type Client, createClient } from 'graphql-ws';
import { SignJWT } from 'jose';
import { Pool } from 'undici';
import WebSocket from 'ws';
import { PromSnapshot } from './stats.js';

export interface GqlResult<T> {
  status: number;
  data: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

/** A bearer token for the broker: HS256 with the secret the benchmark gave it (claims sub, role, exp). */
export async function issueToken(secret: string, sub: string, role: 'user' | 'admin', ttlSeconds = 3_600): Promise<string> {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}

/** The broker's HTTP and WebSocket surfaces, as a client sees them (loopback only). */
export class BrokerClient {
  readonly pool: Pool;
  readonly wsUrl: string;

  constructor(
    readonly url: string,
    connections = 64,
  ) {
    this.pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
    this.wsUrl = `${url.replace(/^http/, 'ws')}/graphql`;
  }

  async gql<T>(query: string, variables: Record<string, unknown>, token: string): Promise<GqlResult<T>> {
    const res = await this.pool.request({
      path: '/graphql',
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const text = await res.body.text();
    let parsed: { data?: T; errors?: GqlResult<T>['errors'] } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      return { status: res.statusCode, data: null, errors: [{ message: `unreadable body: ${text.slice(0, 200)}` }] };
    }
    return { status: res.statusCode, data: parsed.data ?? null, ...(parsed.errors ? { errors: parsed.errors } : {}) };
  }

  async metrics(): Promise<PromSnapshot> {
    const res = await this.pool.request({ path: '/metrics', method: 'GET' });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}`);
    return PromSnapshot.parse(text);
  }

  async ready(): Promise<boolean> {
    try {
      const res = await this.pool.request({ path: '/readyz', method: 'GET' });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  /** A graphql-ws client; it connects on its first subscription and never retries (a drop is an error here). */
  wsClient(token: string, onError?: (e: unknown) => void): Client {
    return createClient({
      url: this.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
      lazy: true,
      lazyCloseTimeout: 60_000,
      ...(onError ? { on: { error: onError } } : {}),
    });
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
  }
}
