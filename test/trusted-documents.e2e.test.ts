import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type OperationDefinitionNode, parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { CREATE, GET, createInput } from './support/fixtures.js';
import { type GqlResult, type TestServer, startTestServer } from './support/server.js';

/**
 * TRUSTED_DOCUMENTS (README "Typed client"): with the web example's generated manifest, the
 * broker runs the example's operations — named by id or sent as their exact text, over HTTP
 * and WebSocket — and refuses everything else with a stable code, before running any of it.
 * Without the variable, nothing changes.
 */

const MANIFEST_PATH = fileURLToPath(new URL('../examples/web/src/gql/persisted-documents.json', import.meta.url));
const manifest = JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as Record<string, string>;

/** The manifest id and text of the example's operation `name`. */
function document(name: string): { id: string; text: string; hex: string } {
  for (const [id, text] of Object.entries(manifest)) {
    const op = parse(text).definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
    if (op?.name?.value === name) return { id, text, hex: createHash('sha256').update(text).digest('hex') };
  }
  throw new Error(`the example's manifest has no operation ${name}`);
}

const RECENT = document('RecentRequests');
const CREATE_REQUEST = document('CreateRequest');
const WATCH_REQUEST = document('WatchRequest');

/** POSTs any body to /graphql as alice. */
async function post<T = any>(s: TestServer, body: Record<string, unknown>, token = s.tokens.alice): Promise<GqlResult<T>> {
  const res = await fetch(`${s.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { data: T; errors?: GqlResult<T>['errors'] };
  return { status: res.status, data: json.data, errors: json.errors };
}

const codes = (r: { errors?: Array<{ extensions?: Record<string, unknown> }> }) => (r.errors ?? []).map((e) => e.extensions?.code);

/** Subscribes with any payload (ids need fields graphql-ws' types do not have); resolves with the first result or the error. */
function subscribeRaw(client: ReturnType<TestServer['wsClient']>, payload: Record<string, unknown>) {
  return new Promise<{ data?: any; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> }>((resolve) => {
    const stop = client.subscribe(payload as never, {
      next: (v) => {
        stop();
        resolve(v as never);
      },
      error: (e) => resolve({ errors: Array.isArray(e) ? e : [{ message: String(e) }] }),
      complete: () => {},
    });
  });
}

describe('with TRUSTED_DOCUMENTS set to the web example manifest', () => {
  let s: TestServer;
  let requestId: string;
  beforeAll(async () => {
    s = await startTestServer({ TRUSTED_DOCUMENTS: MANIFEST_PATH });
    const created = await post(s, { documentId: CREATE_REQUEST.id, variables: { input: createInput() } });
    expect(created.errors).toBeUndefined();
    requestId = created.data.createPurchaseRequest.purchaseRequest.id;
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('over HTTP', () => {
    it('runs a mutation named by documentId', async () => {
      const res = await post(s, { documentId: CREATE_REQUEST.id, variables: { input: createInput() } });
      expect(res.status).toBe(200);
      expect(res.data.createPurchaseRequest).toMatchObject({ purchaseRequest: { status: 'PENDING' }, userErrors: [] });
    });

    it("runs a query named by Apollo's extensions.persistedQuery.sha256Hash", async () => {
      const res = await post(s, { extensions: { persistedQuery: { version: 1, sha256Hash: RECENT.hex } }, variables: { first: 50 } });
      expect(res.errors).toBeUndefined();
      expect(res.data.purchaseRequests.edges.map((e: any) => e.node.id)).toContain(requestId);
    });

    it('runs a query named by documentId in a GET', async () => {
      const search = new URLSearchParams({ documentId: RECENT.id, variables: JSON.stringify({ first: 50 }) });
      const res = await fetch(`${s.url}/graphql?${search}`, {
        headers: { authorization: `Bearer ${s.tokens.alice}`, 'apollo-require-preflight': 'true', accept: 'application/json' },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as any;
      expect(body.data.purchaseRequests.edges.map((e: any) => e.node.id)).toContain(requestId);
    });

    it("runs a manifest document sent as its exact text, with or without its id", async () => {
      const plain = await post(s, { query: RECENT.text, variables: { first: 50 } });
      expect(plain.errors).toBeUndefined();
      expect(plain.data.purchaseRequests.edges.map((e: any) => e.node.id)).toContain(requestId);
      const both = await post(s, { query: RECENT.text, documentId: RECENT.id, variables: { first: 50 } });
      expect(both.errors).toBeUndefined();
    });

    it('refuses an unknown id with PERSISTED_QUERY_NOT_FOUND', async () => {
      const unknown = `sha256:${createHash('sha256').update('query Other { __typename }').digest('hex')}`;
      for (const body of [{ documentId: unknown }, { extensions: { persistedQuery: { version: 1, sha256Hash: unknown.slice(7) } } }]) {
        const res = await post(s, body);
        expect(res.status).toBe(400);
        expect(codes(res)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
        expect(res.errors![0]!.message).toContain(unknown.slice(7));
        expect(res.data).toBeUndefined();
      }
    });

    it('refuses other text with QUERY_NOT_IN_SAFELIST and runs none of it', async () => {
      const before = await post(s, { documentId: RECENT.id, variables: { first: 100 } });
      const res = await post(s, { query: CREATE, variables: { input: createInput() } });
      expect(res.status).toBe(400);
      expect(codes(res)).toEqual(['QUERY_NOT_IN_SAFELIST']);
      expect(res.errors![0]!.message).toMatch(/trusted documents/);
      expect(res.data).toBeUndefined();
      const after = await post(s, { documentId: RECENT.id, variables: { first: 100 } });
      expect(after.data.purchaseRequests.edges).toHaveLength(before.data.purchaseRequests.edges.length);
    });

    it('refuses a manifest document reformatted, and trusted text under the id of another', async () => {
      const reformatted = await post(s, { query: `${RECENT.text}\n`, variables: { first: 1 } });
      expect(codes(reformatted)).toEqual(['QUERY_NOT_IN_SAFELIST']);
      const mismatched = await post(s, { query: RECENT.text, documentId: CREATE_REQUEST.id, variables: { first: 1 } });
      expect(mismatched.status).toBe(400);
      expect(codes(mismatched)).toEqual(['BAD_REQUEST']);
    });

    it('still checks the caller: a trusted document without a token is UNAUTHENTICATED', async () => {
      const res = await fetch(`${s.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ documentId: RECENT.id, variables: { first: 1 } }),
      });
      const body = (await res.json()) as any;
      expect(codes(body)).toEqual(['UNAUTHENTICATED']);
    });
  });

  describe('over WebSocket', () => {
    const variables = () => ({ id: requestId });

    it('streams a subscription named by documentId (with an empty query, as graphql-ws requires one)', async () => {
      const first = await subscribeRaw(s.wsClient(), { query: '', documentId: WATCH_REQUEST.id, variables: variables() });
      expect(first.errors).toBeUndefined();
      expect(first.data.purchaseRequestUpdated).toMatchObject({ id: requestId, status: 'PENDING', events: [{ type: 'CREATED' }] });
    });

    it('streams a subscription named by extensions.persistedQuery.sha256Hash', async () => {
      const first = await subscribeRaw(s.wsClient(), {
        query: '',
        extensions: { persistedQuery: { version: 1, sha256Hash: WATCH_REQUEST.hex } },
        variables: variables(),
      });
      expect(first.data.purchaseRequestUpdated).toMatchObject({ id: requestId, status: 'PENDING' });
    });

    it('streams a manifest subscription sent as its exact text', async () => {
      const first = await subscribeRaw(s.wsClient(), { query: WATCH_REQUEST.text, variables: variables() });
      expect(first.data.purchaseRequestUpdated).toMatchObject({ id: requestId, status: 'PENDING' });
    });

    it('refuses an unknown id and other text, with the same codes as HTTP', async () => {
      const client = s.wsClient();
      const unknown = await subscribeRaw(client, { query: '', documentId: 'sha256:0000', variables: variables() });
      expect(codes(unknown)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
      const text = `subscription W($id: ID!) { purchaseRequestUpdated(id: $id) { id status } }`;
      const untrusted = await subscribeRaw(client, { query: text, variables: variables() });
      expect(codes(untrusted)).toEqual(['QUERY_NOT_IN_SAFELIST']);
      // The connection stays usable for trusted documents.
      const trusted = await subscribeRaw(client, { query: '', documentId: WATCH_REQUEST.id, variables: variables() });
      expect(trusted.data.purchaseRequestUpdated.id).toBe(requestId);
    });
  });

  it('refuses to start on a manifest that is missing or not one, saying which variable and why', () => {
    expect(() => loadConfig({ TRUSTED_DOCUMENTS: '/nonexistent/persisted-documents.json' })).toThrow(ConfigError);
    expect(() => loadConfig({ TRUSTED_DOCUMENTS: '/nonexistent/persisted-documents.json' })).toThrow(/TRUSTED_DOCUMENTS .*no file at \/nonexistent/);
    const notManifest = fileURLToPath(new URL('../package.json', import.meta.url));
    expect(() => loadConfig({ TRUSTED_DOCUMENTS: notManifest })).toThrow(/TRUSTED_DOCUMENTS .*is not GraphQL|TRUSTED_DOCUMENTS .*not a string/);
  });
});

describe('without TRUSTED_DOCUMENTS', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('runs any operation text, over HTTP and WebSocket, as before', async () => {
    const created = await s.gql(CREATE, { input: createInput() });
    expect(created.errors).toBeUndefined();
    const id = created.data.createPurchaseRequest.purchaseRequest.id;
    expect((await s.gql(GET, { id })).data.purchaseRequest.id).toBe(id);
    const text = `subscription W($id: ID!) { purchaseRequestUpdated(id: $id) { id status } }`;
    const first = await subscribeRaw(s.wsClient(), { query: text, variables: { id } });
    expect(first.data.purchaseRequestUpdated).toEqual({ id, status: 'PENDING' });
  });

  it('does not know document ids: a documentId alone is a bad request, as before', async () => {
    const res = await post(s, { documentId: RECENT.id, variables: { first: 1 } });
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['BAD_REQUEST']);
  });
});
