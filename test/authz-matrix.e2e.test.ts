import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createInput } from './support/fixtures.js';
import { type GqlResult, type TestServer, startTestServer } from './support/server.js';

/**
 * Who may see and change what (SPEC §10, API.md "Authentication"): every root operation of the
 * served schema × {anonymous, owner, other user, admin}. Each operation is one row; a test
 * below fails when the schema gains an operation the table does not cover.
 */

type Role = 'anonymous' | 'owner' | 'other' | 'admin';
const ROLES: Role[] = ['anonymous', 'owner', 'other', 'admin'];

/** What a cell works with: the caller, a fresh request of the owner's, a seller, and what was sent. */
interface Ctx {
  role: Role;
  token: string | null;
  requestId: string;
  sellerId: string;
  field: string;
  variables: Record<string, unknown>;
}

type Check = (res: GqlResult<any>, ctx: Ctx) => Promise<void> | void;

interface Row {
  field: string;
  kind: 'query' | 'mutation';
  document: string;
  variables: (ctx: Ctx) => Record<string, unknown>;
  expect: Record<Role, Check>;
}

const ADDRESS_LINE = '17 Authz Matrix Row';
const UNKNOWN_ID = '3f2d6c1e-9a7b-4c5d-8e1f-a0b1c2d3e4f5';

let s: TestServer;
let sellerId: string;
/** A webhook endpoint of the owner's, which no one else may see or delete. */
const OWNER_HOOK = 'http://127.0.0.1:9/owner-hook';
let ownerHookId: string;
beforeAll(async () => {
  s = await startTestServer();
  const res = await s.gql(UPSERT, { input: sellerInput() }, s.tokens.admin);
  sellerId = res.data.upsertSeller.seller.id;
  const hook = await s.gql(
    `mutation Hook($input: WebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } userErrors { code } } }`,
    { input: { url: OWNER_HOOK } },
    s.tokens.alice,
  );
  ownerHookId = hook.data.createWebhookEndpoint.endpoint.id;
});
afterAll(async () => {
  await s?.close();
});

const UPSERT = `mutation Upsert($input: SellerInput!) { upsertSeller(input: $input) { seller { id name config } userErrors { field code } } }`;
const GET = `query Get($id: ID!) { purchaseRequest(id: $id) { id status revision maxTotalPrice { cents } } }`;

let sellers = 0;
function sellerInput(): Record<string, unknown> {
  sellers += 1;
  return {
    name: `Matrix Books ${process.pid}-${Date.now()}-${sellers}`,
    tier: 2,
    baseUrl: 'http://127.0.0.1:9',
    headers: { 'X-Api-Key': 'matrix-secret' },
    quote: { method: 'GET', path: '/q/{{isbn}}', response: { itemPrice: 'price' } },
    order: { method: 'POST', path: '/orders', body: { offer: '{{offerId}}' }, response: { orderId: 'id' } },
  };
}

const tokenFor = (role: Role): string | null =>
  role === 'anonymous' ? null : role === 'owner' ? s.tokens.alice : role === 'other' ? s.tokens.bob : s.tokens.admin;

/** The request as its owner sees it now. */
async function ownerView(id: string) {
  const res = await s.gql(GET, { id }, s.tokens.alice);
  expect(res.errors).toBeUndefined();
  return res.data.purchaseRequest as { id: string; status: string; revision: number; maxTotalPrice: { cents: number } };
}

// ---------------------------------------------------------------------------------------------
// Outcomes, composable per cell.

/** A top-level error with `code`, and the field itself withheld. */
const refusedWith =
  (code: 'UNAUTHENTICATED' | 'FORBIDDEN'): Check =>
  (res, ctx) => {
    expect(res.status).toBeLessThan(500);
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual([code]);
    expect(res.data?.[ctx.field] ?? null).toBeNull();
  };
const unauthenticated = refusedWith('UNAUTHENTICATED');
const forbidden = refusedWith('FORBIDDEN');

/** No error, and `check` on the field's value. */
const served =
  (check: (value: any, ctx: Ctx) => Promise<void> | void = () => {}): Check =>
  async (res, ctx) => {
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    await check(res.data[ctx.field], ctx);
  };

/** A payload refused with exactly this userError code. */
const userError = (code: string, payloadKey: string): Check =>
  served((payload) => {
    expect(payload[payloadKey]).toBeNull();
    expect(payload.userErrors.map((e: { code: string }) => e.code)).toEqual([code]);
  });

/** The owner's request is exactly as created: nobody changed it. */
const untouched: Check = async (_res, ctx) => {
  expect(await ownerView(ctx.requestId)).toMatchObject({ status: 'PENDING', revision: 1, maxTotalPrice: { cents: 4500 } });
};

/** Nothing of the owner's request shows in the response. */
const noLeak: Check = (res, ctx) => {
  const text = JSON.stringify(res);
  expect(text).not.toContain(ctx.requestId);
  expect(text).not.toContain(ADDRESS_LINE);
};

/** The owner still has the endpoint someone else tried to delete. */
const ownerHookKept: Check = async () => {
  const res = await s.gql(`query Hooks { webhookEndpoints { id } }`, {}, s.tokens.alice);
  expect(res.data.webhookEndpoints.map((e: { id: string }) => e.id)).toContain(ownerHookId);
};

const all =
  (...checks: Check[]): Check =>
  async (res, ctx) => {
    for (const c of checks) await c(res, ctx);
  };

// ---------------------------------------------------------------------------------------------
// The table: one row per root field.

const userOnly = (check: Check): Record<Role, Check> => ({ anonymous: unauthenticated, owner: check, other: check, admin: check });
const adminOnly = (check: Check): Record<Role, Check> => ({ anonymous: unauthenticated, owner: forbidden, other: forbidden, admin: check });

const rows: Row[] = [
  {
    field: 'purchaseRequest',
    kind: 'query',
    document: GET,
    variables: (c) => ({ id: c.requestId }),
    expect: {
      anonymous: all(unauthenticated, noLeak),
      owner: served((r, c) => expect(r).toMatchObject({ id: c.requestId, status: 'PENDING' })),
      other: all(
        served((r) => expect(r).toBeNull()),
        noLeak,
      ),
      admin: served((r, c) => expect(r).toMatchObject({ id: c.requestId, status: 'PENDING' })),
    },
  },
  {
    field: 'purchaseRequests',
    kind: 'query',
    document: `query List { purchaseRequests(first: 100) { edges { node { id } } } }`,
    variables: () => ({}),
    expect: {
      anonymous: all(unauthenticated, noLeak),
      owner: served((r, c) => expect(r.edges.map((e: any) => e.node.id)).toContain(c.requestId)),
      other: all(
        served((r, c) => expect(r.edges.map((e: any) => e.node.id)).not.toContain(c.requestId)),
        noLeak,
      ),
      // The list is the caller's own requests, for an admin too; admins read others' by id.
      admin: served((r, c) => expect(r.edges.map((e: any) => e.node.id)).not.toContain(c.requestId)),
    },
  },
  {
    field: 'sellers',
    kind: 'query',
    document: `query Sellers { sellers { id name config } }`,
    variables: () => ({}),
    expect: {
      anonymous: unauthenticated,
      ...(() => {
        const asUser = served((list: any[], c) => {
          expect(list.map((x) => x.id)).toContain(c.sellerId);
          for (const x of list) expect(x.config).toBeNull();
        });
        return { owner: asUser, other: asUser };
      })(),
      admin: served((list: any[], c) => {
        const mine = list.find((x) => x.id === c.sellerId);
        expect(mine.config).toMatchObject({ baseUrl: 'http://127.0.0.1:9', headerNames: ['X-Api-Key'] });
        expect(JSON.stringify(list)).not.toContain('matrix-secret');
      }),
    },
  },
  {
    field: 'sellerHealth',
    kind: 'query',
    document: `query Health { sellerHealth { seller { id } breaker inFlight } }`,
    variables: () => ({}),
    expect: adminOnly(served((list) => expect(Array.isArray(list)).toBe(true))),
  },
  {
    field: 'attemptsNeedingAttention',
    kind: 'query',
    document: `query Attention { attemptsNeedingAttention { id state } }`,
    variables: () => ({}),
    expect: adminOnly(served((list) => expect(list).toEqual([]))),
  },
  {
    field: 'paymentLedger',
    kind: 'query',
    document: `query Ledger($id: ID!) { paymentLedger(requestId: $id) { key operation result } }`,
    variables: (c) => ({ id: c.requestId }),
    expect: adminOnly(served((list) => expect(list).toEqual([]))),
  },
  {
    field: 'deadLetters',
    kind: 'query',
    document: `query Letters { deadLetters(includeResolved: true) { id kind } }`,
    variables: () => ({}),
    expect: adminOnly(served((list) => expect(list).toEqual([]))),
  },
  {
    field: 'createPurchaseRequest',
    kind: 'mutation',
    document: `mutation Create($input: CreatePurchaseRequestInput!) { createPurchaseRequest(input: $input) { purchaseRequest { id status } userErrors { code } } }`,
    variables: () => ({ input: createInput() }),
    expect: {
      anonymous: unauthenticated,
      // Every signed-in caller creates a request of their own, which only they (and admins) see.
      ...Object.fromEntries(
        (['owner', 'other', 'admin'] as const).map((role) => [
          role,
          served(async (p, c) => {
            expect(p.userErrors).toEqual([]);
            expect(p.purchaseRequest.status).toBe('PENDING');
            const seen = await s.gql(GET, { id: p.purchaseRequest.id }, c.token);
            expect(seen.data.purchaseRequest.id).toBe(p.purchaseRequest.id);
            if (role !== 'owner') expect((await s.gql(GET, { id: p.purchaseRequest.id }, s.tokens.alice)).data.purchaseRequest).toBeNull();
          }),
        ]),
      ),
    } as Record<Role, Check>,
  },
  {
    field: 'updatePurchaseRequest',
    kind: 'mutation',
    document: `mutation Update($id: ID!, $input: UpdatePurchaseRequestInput!) { updatePurchaseRequest(id: $id, input: $input) { purchaseRequest { id revision maxTotalPrice { cents } } userErrors { code } } }`,
    variables: (c) => ({ id: c.requestId, input: { maxTotalPrice: { cents: 5100 } } }),
    expect: {
      anonymous: all(unauthenticated, untouched),
      owner: all(
        served((p) => expect(p).toMatchObject({ purchaseRequest: { revision: 2, maxTotalPrice: { cents: 5100 } }, userErrors: [] })),
        async (_r, c) => expect(await ownerView(c.requestId)).toMatchObject({ revision: 2, maxTotalPrice: { cents: 5100 } }),
      ),
      other: all(userError('NOT_FOUND', 'purchaseRequest'), untouched, noLeak),
      // Admins read any request but act for nobody: only the owner changes a request.
      admin: all(userError('NOT_FOUND', 'purchaseRequest'), untouched),
    },
  },
  {
    field: 'cancelPurchaseRequest',
    kind: 'mutation',
    document: `mutation Cancel($id: ID!) { cancelPurchaseRequest(id: $id) { purchaseRequest { id status } userErrors { code } } }`,
    variables: (c) => ({ id: c.requestId }),
    expect: {
      anonymous: all(unauthenticated, untouched),
      owner: all(
        served((p) => expect(p).toMatchObject({ purchaseRequest: { status: 'CANCELED' }, userErrors: [] })),
        async (_r, c) => expect(await ownerView(c.requestId)).toMatchObject({ status: 'CANCELED', revision: 2 }),
      ),
      other: all(userError('NOT_FOUND', 'purchaseRequest'), untouched, noLeak),
      admin: all(userError('NOT_FOUND', 'purchaseRequest'), untouched),
    },
  },
  {
    field: 'upsertSeller',
    kind: 'mutation',
    document: UPSERT,
    variables: () => ({ input: sellerInput() }),
    expect: (() => {
      const sent = (c: Ctx) => (c.variables.input as { name: string }).name;
      const listed = async (c: Ctx) => {
        const list = await s.gql(`{ sellers { name } }`, {}, s.tokens.admin);
        return list.data.sellers.filter((x: { name: string }) => x.name === sent(c)).length;
      };
      const noneCreated: Check = async (_r, c) => expect(await listed(c)).toBe(0);
      return {
        anonymous: all(unauthenticated, noneCreated),
        owner: all(forbidden, noneCreated),
        other: all(forbidden, noneCreated),
        admin: all(
          served((p, c) => expect(p).toMatchObject({ seller: { name: sent(c) }, userErrors: [] })),
          async (_r, c) => expect(await listed(c)).toBe(1),
        ),
      };
    })(),
  },
  {
    field: 'resetSellerBreaker',
    kind: 'mutation',
    document: `mutation Reset($id: ID!) { resetSellerBreaker(sellerId: $id) { health { breaker } userErrors { code } } }`,
    variables: (c) => ({ id: c.sellerId }),
    expect: adminOnly(served((p) => expect(p.userErrors).toEqual([]))),
  },
  {
    field: 'redriveDeadLetter',
    kind: 'mutation',
    document: `mutation Redrive($id: ID!) { redriveDeadLetter(id: $id) { deadLetter { id } userErrors { code } } }`,
    variables: () => ({ id: UNKNOWN_ID }),
    expect: adminOnly(userError('NOT_FOUND', 'deadLetter')),
  },
  {
    field: 'webhookEndpoints',
    kind: 'query',
    document: `query Hooks { webhookEndpoints { id url } }`,
    variables: () => ({}),
    // Each caller sees their own endpoints only; an admin is no exception.
    expect: {
      anonymous: unauthenticated,
      owner: served((list) => expect(list.map((e: { url: string }) => e.url)).toContain(OWNER_HOOK)),
      other: served((list) => expect(JSON.stringify(list)).not.toContain(OWNER_HOOK)),
      admin: served((list) => expect(JSON.stringify(list)).not.toContain(OWNER_HOOK)),
    },
  },
  {
    field: 'createWebhookEndpoint',
    kind: 'mutation',
    document: `mutation Hook($input: WebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id url } secret userErrors { code } } }`,
    variables: (c) => ({ input: { url: `http://127.0.0.1:9/matrix-${c.role}`, events: ['ORDERED'] } }),
    expect: {
      anonymous: unauthenticated,
      ...Object.fromEntries(
        (['owner', 'other', 'admin'] as const).map((role) => [
          role,
          served((p) => {
            expect(p.userErrors).toEqual([]);
            expect(p.endpoint.url).toBe(`http://127.0.0.1:9/matrix-${role}`);
            expect(p.secret).toMatch(/^whsec_/);
          }),
        ]),
      ),
    } as Record<Role, Check>,
  },
  {
    field: 'deleteWebhookEndpoint',
    kind: 'mutation',
    document: `mutation Unhook($id: ID!) { deleteWebhookEndpoint(id: $id) { endpoint { id } userErrors { code } } }`,
    // The owner's endpoint: nobody else may delete it (the owner's own cell deletes a fresh one).
    variables: (c) => ({ id: c.role === 'owner' ? UNKNOWN_ID : ownerHookId }),
    expect: {
      anonymous: unauthenticated,
      owner: userError('NOT_FOUND', 'endpoint'),
      other: all(userError('NOT_FOUND', 'endpoint'), ownerHookKept),
      admin: all(userError('NOT_FOUND', 'endpoint'), ownerHookKept),
    },
  },
];

/** A fresh PENDING request of the owner's for each cell, so no cell sees another's changes. */
async function freshContext(role: Role, row: Pick<Row, 'field' | 'variables'>): Promise<Ctx> {
  const res = await s.gql(
    `mutation Create($input: CreatePurchaseRequestInput!) { createPurchaseRequest(input: $input) { purchaseRequest { id } userErrors { code } } }`,
    { input: createInput({ shippingAddress: { name: 'Owner', line1: ADDRESS_LINE, city: 'Springfield', postalCode: '12345', country: 'US' } }) },
    s.tokens.alice,
  );
  expect(res.data.createPurchaseRequest.userErrors).toEqual([]);
  const base = { role, token: tokenFor(role), requestId: res.data.createPurchaseRequest.purchaseRequest.id, sellerId, field: row.field };
  return { ...base, variables: row.variables({ ...base, variables: {} }) };
}

const cells = rows.flatMap((row) => ROLES.map((role) => ({ row, role, name: `${row.kind} ${row.field} as ${role}` })));

describe('every query and mutation × every caller, over HTTP', () => {
  it.each(cells)('$name', async ({ row, role }) => {
    const ctx = await freshContext(role, row);
    const res = await s.gql(row.document, ctx.variables, ctx.token);
    await row.expect[role](res, ctx);
  });

  it.each(rows.map((r) => ({ field: r.field, row: r })))('$field with a forged or expired token → UNAUTHENTICATED', async ({ row }) => {
    const ctx = await freshContext('anonymous', row);
    const expired = await s.app.auth.issue('root', 'admin', -60);
    for (const token of [`${s.tokens.admin}x`, expired, 'Bearer']) {
      const res = await s.gql(row.document, ctx.variables, token);
      await all(unauthenticated, noLeak, ...(row.field === 'upsertSeller' ? [] : [untouched]))(res, ctx);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The subscription, over WebSocket.

const WATCH = `subscription Watch($id: ID!) { purchaseRequestUpdated(id: $id) { id status revision } }`;

interface Outcome {
  /** Set when the server closed the socket before answering. */
  closeCode: number | null;
  messages: Array<{ type: string; id?: string; payload?: any }>;
}

const sockets: WebSocket[] = [];
afterEach(() => {
  for (const ws of sockets.splice(0)) ws.terminate();
});

/** Connects with `token` (or none), subscribes, and returns what came back first. */
function watchOnce(token: string | null, variables: Record<string, unknown>): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(s.wsUrl, 'graphql-transport-ws');
    sockets.push(ws);
    const messages: Outcome['messages'] = [];
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} })));
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      messages.push(m);
      if (m.type === 'connection_ack') ws.send(JSON.stringify({ id: 'w', type: 'subscribe', payload: { query: WATCH, variables } }));
      if (m.id === 'w') resolve({ closeCode: null, messages });
    });
    ws.on('close', (code) => resolve({ closeCode: code, messages }));
  });
}

const SUBSCRIPTION_ROW = { field: 'purchaseRequestUpdated', variables: (c: Ctx) => ({ id: c.requestId }) };

const SUBSCRIPTION_EXPECT: Record<Role, (o: Outcome, ctx: Ctx) => void> = {
  anonymous: (o) => {
    expect(o.closeCode).toBe(4403);
    expect(o.messages).toEqual([]);
  },
  owner: (o, c) => expect(o.messages.find((m) => m.id === 'w')).toMatchObject({ type: 'next', payload: { data: { purchaseRequestUpdated: { id: c.requestId } } } }),
  other: (o, c) => {
    expect(o.closeCode).toBeNull();
    const first = o.messages.find((m) => m.id === 'w')!;
    const errors = first.type === 'error' ? first.payload : first.payload?.errors;
    expect(errors?.length).toBeGreaterThan(0);
    expect(first.payload?.data ?? null).toBeNull();
    expect(JSON.stringify(o.messages)).not.toContain(c.requestId);
  },
  admin: (o, c) => expect(o.messages.find((m) => m.id === 'w')).toMatchObject({ type: 'next', payload: { data: { purchaseRequestUpdated: { id: c.requestId } } } }),
};

describe('the subscription × every caller, over WebSocket', () => {
  it.each(ROLES)('subscription purchaseRequestUpdated as %s', async (role) => {
    const ctx = await freshContext(role, SUBSCRIPTION_ROW);
    SUBSCRIPTION_EXPECT[role](await watchOnce(ctx.token, ctx.variables), ctx);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the table covers the schema', () => {
  it('every root field of the served schema has a row', async () => {
    const res = await s.gql(
      `{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }`,
      {},
      s.tokens.admin,
    );
    const names = (t: { fields: Array<{ name: string }> } | null) => (t?.fields ?? []).map((f) => f.name).sort();
    const schema = res.data.__schema;
    expect([...names(schema.queryType), ...names(schema.mutationType)].sort()).toEqual(rows.map((r) => r.field).sort());
    expect(names(schema.subscriptionType)).toEqual(['purchaseRequestUpdated']);
    for (const r of rows) expect(r.kind).toBe(names(schema.queryType).includes(r.field) ? 'query' : 'mutation');
  });
});
