import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANCEL, CREATE, GET, createInput } from './support/fixtures.js';
import { type TestServer, startTestServer } from './support/server.js';

/** The HTTP surface: health, the offline playground, GraphQL over HTTP hardening, restart and shutdown. */

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

const MY_REQUESTS = `query Mine { purchaseRequests(first: 50) { edges { node { id } } } }`;

let users = 0;
/** A token for a user no other test touches, so "nothing was created" is checkable. */
async function freshUser(server: TestServer = s): Promise<string> {
  return server.app.auth.issue(`http-user-${process.pid}-${++users}`, 'user');
}

async function requestCount(token: string, server: TestServer = s): Promise<number> {
  const res = await server.gql(MY_REQUESTS, {}, token);
  expect(res.errors).toBeUndefined();
  return res.data.purchaseRequests.edges.length;
}

function postGraphql(body: string, headers: Record<string, string> = {}, server: TestServer = s) {
  return fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

/** Parses a response as JSON, failing with the raw text when it is not. */
async function json(res: Response): Promise<{ raw: string; body: any }> {
  const raw = await res.text();
  try {
    return { raw, body: JSON.parse(raw) };
  } catch {
    throw new Error(`expected JSON, got ${res.status} ${res.headers.get('content-type')}: ${raw.slice(0, 200)}`);
  }
}

/** A raw HTTP/1.1 POST whose body is streamed chunked, with no content-length for the server to check up front. */
function chunkedPost(url: string, path: string, chunks: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, url), { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    // The server may answer and close before the whole body is sent; the answer is what counts.
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('health and readiness', () => {
  it('GET /healthz is 200 {status: "ok"}', async () => {
    const res = await fetch(`${s.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz is 200 once migrations are applied', async () => {
    const res = await fetch(`${s.url}/readyz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
  });
});

describe('the playground, served from local assets', () => {
  const pages = [
    ['GET /', '/'],
    ['GET /graphql with Accept: text/html', '/graphql'],
  ] as const;

  it.each(pages)('%s returns the GraphiQL page referring only to same-origin assets that load', async (_label, path) => {
    const res = await fetch(`${s.url}${path}`, { headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<div id="graphiql"/);

    const scripts = [...html.matchAll(/<script\b[^>]*\bsrc\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1]!);
    const links = [...html.matchAll(/<link\b[^>]*\bhref\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThanOrEqual(4);
    expect(links.length).toBeGreaterThanOrEqual(1);
    // No absolute or protocol-relative URL anywhere in the page: nothing comes from a CDN.
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']\/\//i);

    for (const ref of [...scripts, ...links]) {
      expect(ref, `asset reference ${ref}`).toMatch(/^\/[^/]/);
      const asset = await fetch(`${s.url}${ref}`);
      expect(asset.status, `GET ${ref}`).toBe(200);
      const type = asset.headers.get('content-type') ?? '';
      if (scripts.includes(ref)) expect(type, `content-type of ${ref}`).toMatch(/^(text|application)\/javascript/);
      else expect(type, `content-type of ${ref}`).toMatch(/^text\/css/);
      const body = await asset.text();
      expect(body.length, `length of ${ref}`).toBeGreaterThan(200);
    }
  });

  it('the page is served with a same-origin script policy', async () => {
    const res = await fetch(`${s.url}/`, { headers: { accept: 'text/html' } });
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self'/);
    await res.text();
  });

  it('an unknown /playground/x is 404', async () => {
    for (const path of ['/playground/x', '/playground/../package.json', '/playground/', '/playground/graphiql.min.js.map']) {
      const res = await fetch(`${s.url}${path}`);
      expect(res.status, path).toBe(404);
      await res.text();
    }
  });

  it('GET / without Accept: text/html is not the page', async () => {
    const res = await fetch(`${s.url}/`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(404);
    await res.text();
  });
});

describe('unknown routes', () => {
  it('an unknown path is 404 with a JSON body', async () => {
    const res = await fetch(`${s.url}/no/such/thing`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    await json(res);
  });

  it('an unknown path is 404 for POST too', async () => {
    const res = await fetch(`${s.url}/nope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(404);
    await json(res);
  });
});

describe('GraphQL over HTTP: malformed and hostile requests', () => {
  it('invalid JSON is 400 with a JSON error, never 500', async () => {
    for (const body of ['{not json', '{"query": "{ __typename }"', '"', '{"query": }']) {
      const res = await postGraphql(body, { authorization: `Bearer ${s.tokens.alice}` });
      expect(res.status, body).toBe(400);
      const { body: parsed } = await json(res);
      expect(parsed.errors?.[0]?.message, body).toEqual(expect.any(String));
    }
  });

  it('an empty JSON body is 400, never 500', async () => {
    const res = await postGraphql('', { authorization: `Bearer ${s.tokens.alice}` });
    expect(res.status).toBe(400);
    await json(res);
  });

  it('a JSON body that is not an operation is 400', async () => {
    for (const body of ['null', '42', '{}', '{"query": 7}']) {
      const res = await postGraphql(body, { authorization: `Bearer ${s.tokens.alice}` });
      expect(res.status, body).toBe(400);
      await res.text();
    }
  });

  it('a batched array body is refused with 4xx and not executed', async () => {
    const token = await freshUser();
    const op = { query: CREATE, variables: { input: createInput() } };
    const res = await postGraphql(JSON.stringify([op, op]), { authorization: `Bearer ${token}` });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    await res.text();
    expect(await requestCount(token)).toBe(0);
  });

  it('a syntax error is 400 GRAPHQL_PARSE_FAILED', async () => {
    const res = await postGraphql(JSON.stringify({ query: '{ purchaseRequests( ' }), { authorization: `Bearer ${s.tokens.alice}` });
    expect(res.status).toBe(400);
    const { raw, body } = await json(res);
    expect(body.errors[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
    expect(raw).not.toContain('stacktrace');
  });

  it('an unknown field is 400 GRAPHQL_VALIDATION_FAILED', async () => {
    const res = await postGraphql(JSON.stringify({ query: '{ noSuchField }' }), { authorization: `Bearer ${s.tokens.alice}` });
    expect(res.status).toBe(400);
    const { raw, body } = await json(res);
    expect(body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(raw).not.toContain('stacktrace');
  });

  it('no error response carries a stacktrace', async () => {
    const cases: Array<{ body: string; token?: string | null }> = [
      { body: JSON.stringify({ query: '{ purchaseRequests(' }) },
      { body: JSON.stringify({ query: '{ noSuchField }' }) },
      { body: JSON.stringify({ query: '{ sellers { id } }' }), token: null },
      { body: JSON.stringify({ query: '{ sellers { id } }' }), token: 'garbage' },
      { body: JSON.stringify({ query: CREATE, variables: { input: { nope: 1 } } }) },
      { body: JSON.stringify({ query: GET, variables: { id: 'not-a-uuid' } }) },
      { body: '{broken' },
      { body: '[]' },
    ];
    for (const c of cases) {
      const token = c.token === undefined ? s.tokens.alice : c.token;
      const res = await postGraphql(c.body, token ? { authorization: `Bearer ${token}` } : {});
      expect(res.status, c.body).toBeLessThan(500);
      const raw = await res.text();
      expect(raw, c.body).not.toMatch(/stacktrace/i);
      expect(raw, c.body).not.toMatch(/\bat \S+ \(.*:\d+:\d+\)/); // no stack frames in messages either
    }
  });
});

describe('caching', () => {
  it('GraphQL answers over HTTP, errors included, are never stored by a cache', async () => {
    const token = await freshUser();
    const ok = await postGraphql(JSON.stringify({ query: MY_REQUESTS }), { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
    const refused = await postGraphql(JSON.stringify({ query: '{ nope }' }));
    expect(refused.status).toBe(400);
    expect(refused.headers.get('cache-control')).toBe('no-store');
    // Refused before Apollo sees it.
    const unreadable = await postGraphql('{"query": ');
    expect(unreadable.status).toBe(400);
    expect(unreadable.headers.get('cache-control')).toBe('no-store');
  });
});

describe('request body limit', () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startTestServer({ BODY_LIMIT_BYTES: '2048' });
  });
  afterAll(async () => {
    await small?.close();
  });

  it('a body larger than BODY_LIMIT_BYTES is 413 and not executed', async () => {
    const token = await freshUser(small);
    const input = createInput({ book: { isbn: '9781449373320', title: 'x'.repeat(3000) } });
    const body = JSON.stringify({ query: CREATE, variables: { input } });
    expect(Buffer.byteLength(body)).toBeGreaterThan(2048);
    const res = await postGraphql(body, { authorization: `Bearer ${token}` }, small);
    expect(res.status).toBe(413);
    await json(res);
    expect(await requestCount(token, small)).toBe(0);
  });

  it('a chunked body with no content-length is cut off at the limit with 413', async () => {
    const chunks = ['{"query": "{ __typename }", "pad": "', ...Array.from({ length: 8 }, () => 'y'.repeat(512)), '"}'];
    const res = await chunkedPost(small.url, '/graphql', chunks);
    expect(res.status).toBe(413);
  });

  it('a body under the limit still works', async () => {
    const res = await small.gql('{ __typename }', {}, small.tokens.alice);
    expect(res.status).toBe(200);
    expect(res.data).toEqual({ __typename: 'Query' });
  });
});

describe('CSRF prevention', () => {
  it('a POST with content-type text/plain is 400 and the mutation is not executed', async () => {
    const token = await freshUser();
    const res = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: CREATE, variables: { input: createInput() } }),
    });
    expect(res.status).toBe(400);
    await res.text();
    expect(await requestCount(token)).toBe(0);
  });

  it('a POST with a form content type is 400 and not executed', async () => {
    const token = await freshUser();
    const res = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: CREATE, variables: { input: createInput() } }),
    });
    expect(res.status).toBe(400);
    await res.text();
    expect(await requestCount(token)).toBe(0);
  });

  it('a GET carrying a mutation is 405 or 400 and nothing is created', async () => {
    const token = await freshUser();
    const params = new URLSearchParams({ query: CREATE, variables: JSON.stringify({ input: createInput() }) });
    for (const extra of [{}, { 'apollo-require-preflight': 'true' }] as Array<Record<string, string>>) {
      const res = await fetch(`${s.url}/graphql?${params}`, { headers: { authorization: `Bearer ${token}`, ...extra } });
      expect([400, 405]).toContain(res.status);
      await res.text();
    }
    expect(await requestCount(token)).toBe(0);
  });

  it('a GET query without a preflight header is refused', async () => {
    const params = new URLSearchParams({ query: '{ __typename }' });
    const res = await fetch(`${s.url}/graphql?${params}`, { headers: { authorization: `Bearer ${s.tokens.alice}` } });
    expect(res.status).toBe(400);
    await res.text();
  });

  it('a GET query with apollo-require-preflight: true works', async () => {
    const token = await freshUser();
    const created = await s.gql(CREATE, { input: createInput() }, token);
    expect(created.errors).toBeUndefined();
    const id = created.data.createPurchaseRequest.purchaseRequest.id as string;

    const params = new URLSearchParams({ query: GET, variables: JSON.stringify({ id }) });
    const res = await fetch(`${s.url}/graphql?${params}`, {
      headers: { authorization: `Bearer ${token}`, 'apollo-require-preflight': 'true', accept: 'application/json' },
    });
    expect(res.status).toBe(200);
    const { body } = await json(res);
    expect(body.errors).toBeUndefined();
    expect(body.data.purchaseRequest).toMatchObject({ id });
  });
});

describe('introspection', () => {
  const INTROSPECT = '{ __schema { queryType { name } types { name } } }';

  it('works by default', async () => {
    const res = await s.gql(INTROSPECT, {}, s.tokens.alice);
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    expect(res.data.__schema.queryType.name).toBe('Query');
    expect(res.data.__schema.types.map((t: { name: string }) => t.name)).toContain('PurchaseRequest');
  });

  describe('with INTROSPECTION=false', () => {
    let closed: TestServer;
    beforeAll(async () => {
      closed = await startTestServer({ INTROSPECTION: 'false' });
    });
    afterAll(async () => {
      await closed?.close();
    });

    it('refuses an introspection query', async () => {
      for (const query of [INTROSPECT, '{ __type(name: "PurchaseRequest") { fields { name } } }']) {
        const res = await closed.gql(query, {}, closed.tokens.admin);
        expect(res.status, query).toBe(400);
        expect(res.data ?? null, query).toBeNull();
        expect(res.errors?.[0]?.extensions?.code, query).toBe('GRAPHQL_VALIDATION_FAILED');
      }
    });

    it('still answers ordinary queries', async () => {
      const res = await closed.gql('{ __typename sellers { id } }', {}, closed.tokens.admin);
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
    });
  });
});

describe('restart on the same database', () => {
  it('keeps requests with their events and revision, is ready, and re-applies no migration', async () => {
    const first = await startTestServer();
    let current: TestServer = first;
    try {
      const created = await first.gql(CREATE, { input: createInput() });
      expect(created.errors).toBeUndefined();
      const id = created.data.createPurchaseRequest.purchaseRequest.id as string;
      // A terminal request cannot move on while the server is down, so before and after must match exactly.
      const canceled = await first.gql(CANCEL, { id });
      expect(canceled.data.cancelPurchaseRequest.userErrors).toEqual([]);
      const before = (await first.gql(GET, { id })).data.purchaseRequest;
      expect(before).toMatchObject({ id, status: 'CANCELED' });
      expect(before.revision).toBeGreaterThanOrEqual(2);
      expect(before.events.length).toBeGreaterThanOrEqual(2);

      const second = await first.restart();
      current = second;
      const readyAgain = await fetch(`${second.url}/readyz`);
      expect(readyAgain.status).toBe(200);
      await readyAgain.text();
      const after = await second.gql(GET, { id });
      expect(after.errors).toBeUndefined();
      expect(after.data.purchaseRequest).toEqual(before);

      // A third start over an already-migrated database must not try to apply the migrations again.
      const third = await second.restart();
      current = third;
      const ready = await fetch(`${third.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready' });
      expect((await third.gql(GET, { id })).data.purchaseRequest).toEqual(before);

      // And it still takes writes.
      const again = await third.gql(CREATE, { input: createInput() });
      expect(again.errors).toBeUndefined();
      expect(again.data.createPurchaseRequest.userErrors).toEqual([]);
    } finally {
      await current.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('after stop(), the old URL refuses connections', async () => {
    const doomed = await startTestServer();
    try {
      const alive = await fetch(`${doomed.url}/healthz`);
      expect(alive.status).toBe(200);
      await alive.text();
      await doomed.stop();
      const err = await fetch(`${doomed.url}/healthz`).then(
        () => null,
        (e: unknown) => e as Error & { cause?: { code?: string } },
      );
      expect(err).not.toBeNull();
      expect(err!.cause?.code).toBe('ECONNREFUSED');
      // stop() is idempotent.
      await doomed.stop();
    } finally {
      await doomed.close();
    }
  });
});
