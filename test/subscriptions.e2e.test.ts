import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { Auth } from '../src/http/auth.js';
import { CANCEL, CREATE, GET, UPDATE, createInput } from './support/fixtures.js';
import { Collected, JWT_SECRET, type TestServer, collect, startTestServer, useQueryCountingServer } from './support/server.js';
import { type RawSocket, type WireError, type WireMessage, bearer, messagesFor, rawSocket, terminateRawSockets } from './support/raw-socket.js';

/** What each streamed state carries: enough to check order, budget and the event timeline. */
const WATCH = `subscription Watch($id: ID!, $after: Int) {
  purchaseRequestUpdated(id: $id, afterRevision: $after) {
    id status revision maxTotalPrice { cents } events { type status revision }
  }
}`;

const LIST = `query Mine { purchaseRequests(first: 100) { edges { node { id } } } }`;

interface State {
  id: string;
  status: string;
  revision: number;
  maxTotalPrice: { cents: number };
  events: Array<{ type: string; status: string; revision: number }>;
}
type Watched = { purchaseRequestUpdated: State };

const states = (c: Collected<{ data?: Watched; errors?: any[] }>) => c.values.map((v) => v.data!.purchaseRequestUpdated);

/** Asserts a GraphQL error as a client receives it leaks nothing internal. */
function expectMasked(error: WireError) {
  expect(error.extensions ?? {}).not.toHaveProperty('stacktrace');
  expect(error.extensions ?? {}).not.toHaveProperty('exception');
  const text = JSON.stringify(error);
  expect(text).not.toMatch(/\n\s+at |\.ts:\d+|node_modules|stacktrace|exception/i);
}

// ---------------------------------------------------------------------------------------------
// Bare graphql-transport-ws sockets (support/raw-socket.ts), closed after each test.

afterEach(terminateRawSockets);

const ended = (sock: RawSocket, id: string) => (c: Collected<WireMessage>) =>
  c.completed || c.values.some((m) => m.id === id && (m.type === 'complete' || m.type === 'error'));

// ---------------------------------------------------------------------------------------------

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

async function createRequest(token = s.tokens.alice, overrides: Record<string, unknown> = {}): Promise<State> {
  const res = await s.gql(CREATE, { input: createInput(overrides) }, token);
  expect(res.errors).toBeUndefined();
  expect(res.data.createPurchaseRequest.userErrors).toEqual([]);
  return res.data.createPurchaseRequest.purchaseRequest as State;
}

async function updateBudget(id: string, cents: number): Promise<State> {
  const res = await s.gql(UPDATE, { id, input: { maxTotalPrice: { cents, currency: 'USD' } } });
  expect(res.errors).toBeUndefined();
  expect(res.data.updatePurchaseRequest.userErrors).toEqual([]);
  return res.data.updatePurchaseRequest.purchaseRequest as State;
}

async function cancel(id: string): Promise<State> {
  const res = await s.gql(CANCEL, { id });
  expect(res.errors).toBeUndefined();
  expect(res.data.cancelPurchaseRequest.userErrors).toEqual([]);
  return res.data.cancelPurchaseRequest.purchaseRequest as State;
}

async function fetchRequest(id: string, token = s.tokens.alice): Promise<State | null> {
  const res = await s.gql(GET, { id }, token);
  expect(res.errors).toBeUndefined();
  return res.data.purchaseRequest as State | null;
}

function watch(id: string, token = s.tokens.alice, after?: number) {
  return collect<Watched>(s.wsClient(token), WATCH, after === undefined ? { id } : { id, after });
}

const hasRevision = (rev: number) => (c: Collected<{ data?: Watched }>) =>
  c.values.some((v) => v.data?.purchaseRequestUpdated.revision === rev);

// ---------------------------------------------------------------------------------------------

describe('purchaseRequestUpdated streams a request', () => {
  it('sends the current state, then every change in order, and completes after CANCELED', async () => {
    const req = await createRequest();
    const { seen } = watch(req.id);
    await seen.until((c) => c.values.length >= 1);
    expect(states(seen)[0]).toMatchObject({ id: req.id, revision: req.revision, maxTotalPrice: { cents: 4500 } });

    const first = await updateBudget(req.id, 5000);
    await seen.until(hasRevision(first.revision));
    const second = await updateBudget(req.id, 5500);
    await seen.until(hasRevision(second.revision));
    const canceled = await cancel(req.id);
    expect(canceled.status).toBe('CANCELED');
    await seen.until((c) => c.completed);

    expect(seen.error).toBeNull();
    const streamed = states(seen);
    expect(streamed.every((st) => st.id === req.id)).toBe(true);
    // Strictly increasing with no gap: every committed change, each exactly once.
    const revisions = streamed.map((st) => st.revision);
    expect(revisions).toEqual(Array.from({ length: canceled.revision - req.revision + 1 }, (_, i) => req.revision + i));
    // Each streamed state is the state the timeline records for that revision.
    const timeline = new Map(canceled.events.map((e) => [e.revision, e.status]));
    for (const st of streamed) expect(st.status).toBe(timeline.get(st.revision));
    // The two budget changes arrive in the order they were made, then the terminal state last.
    const budgets = streamed.map((st) => st.maxTotalPrice.cents).filter((c, i, all) => i === 0 || all[i - 1] !== c);
    expect(budgets).toEqual([4500, 5000, 5500]);
    expect(streamed.at(-1)).toMatchObject({ status: 'CANCELED', revision: canceled.revision });
    expect(streamed.at(-1)!.events.map((e) => e.type).filter((t) => t === 'UPDATED' || t === 'CANCELED')).toEqual([
      'UPDATED',
      'UPDATED',
      'CANCELED',
    ]);
  });

  it('on an already-terminal request sends exactly that one state, then completes', async () => {
    const req = await createRequest();
    const canceled = await cancel(req.id);
    const { seen } = watch(req.id);
    await seen.until((c) => c.completed || c.error !== null);
    expect(seen.error).toBeNull();
    expect(seen.values).toHaveLength(1);
    expect(states(seen)[0]).toMatchObject({ id: req.id, status: 'CANCELED', revision: canceled.revision });
  });

  it('on a terminal request with afterRevision at its last revision completes without sending anything', async () => {
    const req = await createRequest();
    const canceled = await cancel(req.id);
    const { seen } = watch(req.id, s.tokens.alice, canceled.revision);
    await seen.until((c) => c.completed || c.error !== null);
    expect(seen.error).toBeNull();
    expect(seen.values).toEqual([]);
  });
});

describe('afterRevision', () => {
  it('equal to the current revision: nothing is sent until the next change', async () => {
    const req = await createRequest();
    const client = s.wsClient();
    const resumed = collect<Watched>(client, WATCH, { id: req.id, after: req.revision });
    // A second subscription on the same socket, opened after the first, as a barrier: once it has
    // its first state the server has set the resumed one up too.
    const barrier = collect<Watched>(client, WATCH, { id: req.id });
    await barrier.seen.until((c) => c.values.length >= 1);
    expect(resumed.seen.values).toEqual([]);

    const next = await updateBudget(req.id, 5100);
    await resumed.seen.until(hasRevision(next.revision));
    expect(states(resumed.seen).map((st) => st.revision)).toEqual([next.revision]);
    expect(states(resumed.seen)[0]).toMatchObject({ maxTotalPrice: { cents: 5100 } });
    expect(resumed.seen.error).toBeNull();
    expect(resumed.seen.completed).toBe(false);
  });

  it('older than the current revision: the current state is sent first, then later changes', async () => {
    const req = await createRequest();
    const updated = await updateBudget(req.id, 4800);
    expect(updated.revision).toBeGreaterThan(req.revision);
    const { seen } = watch(req.id, s.tokens.alice, req.revision);
    await seen.until((c) => c.values.length >= 1);
    expect(states(seen)[0]).toMatchObject({ id: req.id, revision: updated.revision, maxTotalPrice: { cents: 4800 } });

    const canceled = await cancel(req.id);
    await seen.until((c) => c.completed);
    expect(states(seen).map((st) => st.revision)).toEqual([updated.revision, canceled.revision]);
  });
});

describe('several subscribers', () => {
  it('two subscribers on one request both see every change; one on another request sees none of them', async () => {
    const watched = await createRequest();
    const other = await createRequest();
    const a = watch(watched.id);
    const b = watch(watched.id);
    const c = watch(other.id);
    await Promise.all([a, b, c].map(({ seen }) => seen.until((x) => x.values.length >= 1)));

    const updated = await updateBudget(watched.id, 5200);
    await Promise.all([a, b].map(({ seen }) => seen.until(hasRevision(updated.revision))));
    const canceled = await cancel(watched.id);
    await Promise.all([a, b].map(({ seen }) => seen.until((x) => x.completed)));

    const expected = [watched.revision, updated.revision, canceled.revision];
    expect(states(a.seen).map((st) => st.revision)).toEqual(expected);
    expect(states(b.seen).map((st) => st.revision)).toEqual(expected);
    expect(states(b.seen)).toEqual(states(a.seen));

    // A change to the other request is the sync point: by the time it arrives, anything about
    // the first request would have arrived too.
    const otherUpdated = await updateBudget(other.id, 4600);
    await c.seen.until(hasRevision(otherUpdated.revision));
    expect(states(c.seen).map((st) => [st.id, st.revision])).toEqual([
      [other.id, other.revision],
      [other.id, otherUpdated.revision],
    ]);
    expect(c.seen.completed).toBe(false);
  });
});

describe('subscription authorisation', () => {
  it("bob watching alice's request gets an error, none of her data, and the subscription ends", async () => {
    const req = await createRequest();
    const { seen } = watch(req.id, s.tokens.bob);
    await seen.until((c) => c.completed || c.error !== null);
    const unknown = watch('00000000-0000-4000-8000-000000000000', s.tokens.bob);
    await unknown.seen.until((c) => c.completed || c.error !== null);

    const payloads = seen.error ? [] : seen.values;
    expect(payloads).toHaveLength(1);
    expect(payloads[0]!.data ?? null).toBeNull();
    expect(payloads[0]!.errors?.length).toBeGreaterThan(0);
    expect(JSON.stringify(payloads)).not.toContain(req.id);
    expect(JSON.stringify(payloads)).not.toContain('4500');
    // Indistinguishable from a request that does not exist: no hint that it does.
    expect(unknown.seen.values[0]!.errors).toEqual(payloads[0]!.errors);

    // Her request is untouched and still streams to her.
    const mine = watch(req.id);
    await mine.seen.until((c) => c.values.length >= 1);
    expect(states(mine.seen)[0]).toMatchObject({ id: req.id, revision: req.revision });
  });

  it("an admin can watch alice's request to its end", async () => {
    const req = await createRequest();
    const { seen } = watch(req.id, s.tokens.admin);
    await seen.until((c) => c.values.length >= 1);
    expect(states(seen)[0]).toMatchObject({ id: req.id, revision: req.revision });
    const canceled = await cancel(req.id);
    await seen.until((c) => c.completed);
    expect(seen.error).toBeNull();
    expect(states(seen).map((st) => [st.status, st.revision]).at(-1)).toEqual(['CANCELED', canceled.revision]);
  });

  it.each([
    ['a non-UUID id', 'not-a-uuid'],
    ['an SQL-looking id', "1' or '1'='1"],
    ['an unknown UUID', '6f1c1e0e-2b7a-4c1d-9b1e-0123456789ab'],
  ])('%s gets an error and the subscription ends', async (_, id) => {
    const { seen } = watch(id);
    await seen.until((c) => c.completed || c.error !== null);
    const errors = seen.error ? (seen.error as WireError[]) : (seen.values[0]?.errors ?? []);
    expect(seen.values.every((v) => v.data == null)).toBe(true);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]!.extensions?.code).not.toBe('INTERNAL_SERVER_ERROR');
    for (const e of errors) expectMasked(e);
  });
});

describe('connection authentication', () => {
  const foreign = new Auth('a-different-secret-0123456789abcdef0123');
  const cases: Array<[string, () => Promise<Record<string, unknown> | undefined>]> = [
    ['no connection params', async () => undefined],
    ['empty connection params', async () => ({})],
    ['a malformed token', async () => ({ authorization: 'Bearer not.a.jwt' })],
    ['a header without the Bearer scheme', async () => ({ authorization: s.tokens.alice })],
    ['a non-string header', async () => ({ authorization: 42 })],
    ['an expired token', async () => bearer(await s.app.auth.issue('alice', 'user', -60))],
    ['a token signed with another secret', async () => bearer(await foreign.issue('alice', 'user'))],
    [
      'a token with an unknown role',
      async () =>
        bearer(
          await new SignJWT({ role: 'superuser' })
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject('alice')
            .setExpirationTime('1h')
            .sign(new TextEncoder().encode(JWT_SECRET)),
        ),
    ],
  ];

  it.each(cases)('%s → socket closed with 4403', async (_, params) => {
    const sock = rawSocket(s.wsUrl);
    const payload = await params();
    await sock.send(payload === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload });
    const { code } = await sock.closed;
    expect(code).toBe(4403);
    expect(sock.seen.values.some((m) => m.type === 'connection_ack')).toBe(false);
  });

  it('a valid token is acknowledged and can subscribe', async () => {
    const req = await createRequest();
    const sock = rawSocket(s.wsUrl);
    await sock.init(bearer(s.tokens.alice));
    await sock.send({ id: '1', type: 'subscribe', payload: { query: WATCH, variables: { id: req.id } } });
    await sock.seen.until((c) => c.values.some((m) => m.id === '1' && m.type === 'next'));
    expect(messagesFor(sock, '1')[0]!.payload.data.purchaseRequestUpdated).toMatchObject({ id: req.id, revision: req.revision });
  });

  it('a subscribe before connection_init is refused (4401)', async () => {
    const sock = rawSocket(s.wsUrl);
    await sock.send({ id: '1', type: 'subscribe', payload: { query: WATCH, variables: { id: '00000000-0000-4000-8000-000000000000' } } });
    expect((await sock.closed).code).toBe(4401);
  });
});

describe('only subscriptions over WebSocket', () => {
  it('a mutation sent over the socket is refused with BAD_REQUEST and creates nothing', async () => {
    const carol = await s.app.auth.issue('carol', 'user');
    const input = createInput();
    const { seen } = collect(s.wsClient(carol), CREATE, { input });
    await seen.until((c) => c.completed || c.error !== null);
    const errors = seen.error as WireError[];
    expect(Array.isArray(errors)).toBe(true);
    expect(errors[0]!.extensions?.code).toBe('BAD_REQUEST');
    expect(seen.values).toEqual([]);

    const mine = await s.gql(LIST, {}, carol);
    expect(mine.errors).toBeUndefined();
    expect(mine.data.purchaseRequests.edges).toEqual([]);
    // The idempotency key was not consumed either: the same create over HTTP makes a fresh request.
    const res = await s.gql(CREATE, { input }, carol);
    expect(res.data.createPurchaseRequest.userErrors).toEqual([]);
    expect(res.data.createPurchaseRequest.purchaseRequest).toMatchObject({ status: 'PENDING', revision: 1 });
  });

  it('a cancel sent over the socket is refused with BAD_REQUEST and changes nothing', async () => {
    const req = await createRequest();
    const { seen } = collect(s.wsClient(), CANCEL, { id: req.id });
    await seen.until((c) => c.completed || c.error !== null);
    expect((seen.error as WireError[])[0]!.extensions?.code).toBe('BAD_REQUEST');
    const now = await fetchRequest(req.id);
    expect(now).toMatchObject({ status: req.status, revision: req.revision });
  });

  it('a query sent over the socket is refused with BAD_REQUEST', async () => {
    const req = await createRequest();
    const { seen } = collect(s.wsClient(), GET, { id: req.id });
    await seen.until((c) => c.completed || c.error !== null);
    const errors = seen.error as WireError[];
    expect(errors[0]!.extensions?.code).toBe('BAD_REQUEST');
    expect(seen.values).toEqual([]);
    expect(JSON.stringify(errors)).not.toContain(req.id);
  });
});

describe('validation over WebSocket matches HTTP', () => {
  it('invalid selections and syntax errors are refused without disturbing other subscriptions on the socket', async () => {
    const req = await createRequest();
    const client = s.wsClient();
    const live = collect<Watched>(client, WATCH, { id: req.id });
    await live.seen.until((c) => c.values.length >= 1);

    const invalid = collect(client, `subscription W($id: ID!) { purchaseRequestUpdated(id: $id) { id noSuchField } }`, { id: req.id });
    const syntax = collect(client, `subscription W($id: ID!) { purchaseRequestUpdated(id: $id) { id `, { id: req.id });
    const unknownRoot = collect(client, `subscription { somethingElse }`);
    await Promise.all([invalid, syntax, unknownRoot].map(({ seen }) => seen.until((c) => c.completed || c.error !== null)));

    expect((invalid.seen.error as WireError[])[0]!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect((syntax.seen.error as WireError[])[0]!.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    expect((unknownRoot.seen.error as WireError[])[0]!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    for (const { seen } of [invalid, syntax, unknownRoot]) {
      expect(seen.values).toEqual([]);
      for (const e of seen.error as WireError[]) expectMasked(e);
    }

    // HTTP classifies the same documents the same way.
    const httpInvalid = await s.gql(`query Q($id: ID!) { purchaseRequest(id: $id) { id noSuchField } }`, { id: req.id });
    expect(httpInvalid.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const httpSyntax = await s.gql(`query Q($id: ID!) { purchaseRequest(id: $id) { id `, { id: req.id });
    expect(httpSyntax.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');

    // The socket still serves the live subscription.
    const updated = await updateBudget(req.id, 4700);
    await live.seen.until(hasRevision(updated.revision));
    expect(live.seen.error).toBeNull();
    expect(states(live.seen).map((st) => st.revision)).toEqual([req.revision, updated.revision]);
  });

  it('a missing required variable is BAD_USER_INPUT with its message, as over HTTP (not a masked internal error)', async () => {
    const http = await s.gql(GET, {});
    expect(http.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    const { seen } = collect(s.wsClient(), WATCH, {});
    await seen.until((c) => c.completed || c.error !== null);
    const errors = (seen.error as WireError[] | null) ?? seen.values[0]?.errors ?? [];
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expectMasked(e);
    expect(errors[0]!.extensions?.code).toBe('BAD_USER_INPUT');
    expect(errors[0]!.message).toContain('$id');
  });

  it('an afterRevision of the wrong type is BAD_USER_INPUT, as over HTTP', async () => {
    const http = await s.gql(`query Page($n: Int) { purchaseRequests(first: $n) { edges { cursor } } }`, { n: 'yesterday' });
    expect(http.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    const req = await createRequest();
    const { seen } = collect(s.wsClient(), WATCH, { id: req.id, after: 'yesterday' });
    await seen.until((c) => c.completed || c.error !== null);
    const errors = (seen.error as WireError[] | null) ?? seen.values[0]?.errors ?? [];
    expect(errors.length).toBeGreaterThan(0);
    expect(seen.values.every((v) => v.data == null)).toBe(true);
    expect(errors[0]!.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('error masking on the wire', () => {
  it('no error sent over the socket carries a stack trace or exception details', async () => {
    const req = await createRequest();
    const sock = rawSocket(s.wsUrl);
    await sock.init(bearer(s.tokens.bob));
    const operations: Array<[string, { query: string; variables?: Record<string, unknown> }]> = [
      ['foreign', { query: WATCH, variables: { id: req.id } }],
      ['unknown', { query: WATCH, variables: { id: '6f1c1e0e-2b7a-4c1d-9b1e-0123456789ab' } }],
      ['non-uuid', { query: WATCH, variables: { id: 'nope' } }],
      ['invalid', { query: `subscription { purchaseRequestUpdated(id: "x") { nope } }` }],
      ['syntax', { query: `subscription {` }],
      ['query', { query: GET, variables: { id: req.id } }],
      ['no-variable', { query: WATCH, variables: {} }],
    ];
    for (const [id, payload] of operations) await sock.send({ id, type: 'subscribe', payload });
    for (const [id] of operations) await sock.seen.until(ended(sock, id));

    for (const [id] of operations) {
      const msgs = messagesFor(sock, id);
      const errors: WireError[] = msgs.flatMap((m) => (m.type === 'error' ? m.payload : m.type === 'next' ? (m.payload.errors ?? []) : []));
      expect(errors.length, `errors for ${id}: ${JSON.stringify(msgs)}`).toBeGreaterThan(0);
      for (const e of errors) expectMasked(e);
      expect(msgs.some((m) => m.type === 'next' && m.payload.data)).toBe(false);
    }
    const closedEarly = await Promise.race([sock.closed, Promise.resolve(null)]);
    expect(closedEarly).toBeNull();
  });
});

describe('payload limit', () => {
  it('a message larger than WS_MAX_PAYLOAD_BYTES closes that socket (1009) and others keep being served', async () => {
    const req = await createRequest();
    const bystander = watch(req.id);
    await bystander.seen.until((c) => c.values.length >= 1);

    const sock = rawSocket(s.wsUrl);
    await sock.init(bearer(s.tokens.alice));
    const padding = ' '.repeat(s.config.wsMaxPayloadBytes + 1024);
    await sock.send({ id: 'big', type: 'subscribe', payload: { query: `${WATCH}${padding}`, variables: { id: req.id } } });
    expect((await sock.closed).code).toBe(1009);
    expect(messagesFor(sock, 'big')).toEqual([]);

    // The server keeps serving: the open subscription gets the next change, and new sockets work.
    const updated = await updateBudget(req.id, 4900);
    await bystander.seen.until(hasRevision(updated.revision));
    expect(bystander.seen.error).toBeNull();
    const fresh = watch(req.id);
    await fresh.seen.until((c) => c.values.length >= 1);
    expect(states(fresh.seen)[0]).toMatchObject({ id: req.id, revision: updated.revision });
  });
});

describe('connection_init timeout', () => {
  let quick: TestServer;
  beforeAll(async () => {
    quick = await startTestServer({ WS_CONNECTION_INIT_TIMEOUT_MS: '300' });
  });
  afterAll(async () => {
    await quick?.close();
  });

  it('a socket that never sends connection_init is closed with 4408; one that did stays open', async () => {
    const created = await quick.gql(CREATE, { input: createInput() });
    const id = created.data.createPurchaseRequest.purchaseRequest.id as string;
    const ready = rawSocket(quick.wsUrl);
    await ready.init(bearer(quick.tokens.alice));
    await ready.send({ id: '1', type: 'subscribe', payload: { query: WATCH, variables: { id } } });
    await ready.seen.until((c) => c.values.some((m) => m.id === '1' && m.type === 'next'));

    const idle = rawSocket(quick.wsUrl);
    await new Promise<void>((resolve) => idle.ws.once('open', () => resolve()));
    const started = Date.now();
    const { code } = await idle.closed;
    expect(code).toBe(4408);
    expect(Date.now() - started).toBeLessThan(5000);

    // The timeout has now elapsed for the initialised socket too; it keeps streaming.
    const res = await quick.gql(CANCEL, { id });
    expect(res.data.cancelPurchaseRequest.purchaseRequest.status).toBe('CANCELED');
    await ready.seen.until((c) => c.values.some((m) => m.id === '1' && m.type === 'complete') || c.completed);
    expect(ready.seen.completed).toBe(false);
    expect(messagesFor(ready, '1').map((m) => m.type)).toEqual(['next', 'next', 'complete']);
  });
});

describe('graceful shutdown', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('stop() with a subscription open closes the socket with 1012 (service restart: reconnect elsewhere) and resolves', async () => {
    const created = await t.gql(CREATE, { input: createInput() });
    const id = created.data.createPurchaseRequest.purchaseRequest.id as string;
    const sock = rawSocket(t.wsUrl);
    await sock.init(bearer(t.tokens.alice));
    await sock.send({ id: '1', type: 'subscribe', payload: { query: WATCH, variables: { id } } });
    await sock.seen.until((c) => c.values.some((m) => m.id === '1' && m.type === 'next'));

    const stopping = t.stop();
    const { code } = await sock.closed;
    expect(code).toBe(1012);
    await expect(
      Promise.race([stopping.then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still stopping'), 10_000).unref())]),
    ).resolves.toBe('stopped');
    // Nothing accepts connections any more.
    await expect(fetch(`${t.url}/healthz`)).rejects.toThrow();
  });
});

describe('many watchers of one request', () => {
  const recorded = useQueryCountingServer();

  it('each state is read once for all of them, not once per watcher, and every watcher gets it', async () => {
    const { server: counted, queries } = recorded;
    const WATCHERS = 10;
    const created = await counted.gql(CREATE, { input: createInput() });
    const req = created.data.createPurchaseRequest.purchaseRequest as State;
    const watchers = Array.from({ length: WATCHERS }, () => collect<Watched>(counted.wsClient(counted.tokens.alice), WATCH, { id: req.id }));
    await Promise.all(watchers.map(({ seen }) => seen.until((x) => x.values.length >= 1)));

    queries.length = 0;
    // The mutation's own answer selects no events: every events read below is for the watchers.
    const res = await counted.gql(
      `mutation U($id: ID!, $input: UpdatePurchaseRequestInput!) { updatePurchaseRequest(id: $id, input: $input) { purchaseRequest { revision } userErrors { code } } }`,
      { id: req.id, input: { maxTotalPrice: { cents: 5300, currency: 'USD' } } },
    );
    const revision = res.data.updatePurchaseRequest.purchaseRequest.revision as number;
    await Promise.all(watchers.map(({ seen }) => seen.until(hasRevision(revision))));

    const eventReads = queries.filter((q) => /^\s*select\b/i.test(q) && /\brequest_events\b/i.test(q));
    expect(eventReads).toHaveLength(1);
    const pushed = watchers.map(({ seen }) => states(seen).find((st) => st.revision === revision));
    for (const state of pushed) expect(state).toEqual(pushed[0]);
    expect(pushed[0]).toMatchObject({ id: req.id, maxTotalPrice: { cents: 5300 } });
    expect(pushed[0]!.events.at(-1)?.revision).toBe(revision);
  });
});
