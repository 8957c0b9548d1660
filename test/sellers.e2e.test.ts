import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, startTestServer } from './support/server.js';

/** Seller management through GraphQL: admin-only writes, write-only secrets, validated configs. */

const SECRET = 'secret-value';

const UPSERT = `mutation Upsert($input: SellerInput!) {
  upsertSeller(input: $input) {
    seller { id name tier enabled config }
    userErrors { field message code }
  }
}`;

const SELLERS = `query Sellers { sellers { id name tier enabled config } }`;

let counter = 0;
/** A unique seller name, so tests never collide on one database. */
const uniqueName = (base: string) => `${base} ${process.pid}-${Date.now()}-${++counter}`;

/** A realistic connector configuration; override any part. */
function sellerInput(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: uniqueName('Corner Books'),
    tier: 1,
    baseUrl: 'http://127.0.0.1:9/api/v1',
    headers: { 'X-Api-Key': SECRET },
    quote: { method: 'GET', path: '/books/{{isbn}}', response: { itemPrice: 'price', shipping: 'shipping' } },
    order: {
      method: 'POST',
      path: '/orders',
      body: {
        idempotencyKey: '{{idempotencyKey}}',
        offer: '{{offerId}}',
        amount: { cents: '{{totalCents}}' },
        shipTo: '{{shipping}}',
      },
      response: { orderId: 'id' },
    },
    ...overrides,
  };
}

type UserErrorShape = { field: string[] | null; message: string; code: string };

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

async function upsert(input: Record<string, unknown>, server: TestServer = s, token: string = server.tokens.admin) {
  const res = await server.gql(UPSERT, { input }, token);
  expect(res.errors).toBeUndefined();
  return res.data.upsertSeller as { seller: { id: string; name: string; tier: number; enabled: boolean; config: any } | null; userErrors: UserErrorShape[] };
}

async function listAsAdmin(server: TestServer = s) {
  const res = await server.gql(SELLERS, {}, server.tokens.admin);
  expect(res.errors).toBeUndefined();
  return res.data.sellers as Array<{ id: string; name: string; tier: number; enabled: boolean; config: any }>;
}

/** Asserts the upsert was refused with INVALID_SELLER_CONFIG on exactly `field`, and created nothing. */
async function expectInvalid(input: Record<string, unknown>, field: string[], server: TestServer = s) {
  const before = (await listAsAdmin(server)).length;
  const result = await upsert(input, server);
  expect(result.seller).toBeNull();
  expect(result.userErrors.length).toBeGreaterThan(0);
  expect(result.userErrors).toContainEqual(expect.objectContaining({ code: 'INVALID_SELLER_CONFIG', field }));
  for (const e of result.userErrors) expect(e.code).toBe('INVALID_SELLER_CONFIG');
  expect((await listAsAdmin(server)).length).toBe(before);
}

describe('creating and listing sellers', () => {
  it('an admin creates a seller and gets id, name, tier and enabled back', async () => {
    const input = sellerInput({ tier: 3 });
    const result = await upsert(input);
    expect(result.userErrors).toEqual([]);
    expect(result.seller).toMatchObject({ name: input.name, tier: 3, enabled: true });
    expect(result.seller!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);

    const listed = await listAsAdmin();
    expect(listed.find((x) => x.id === result.seller!.id)).toMatchObject({ name: input.name, tier: 3, enabled: true });
  });

  it('keeps enabled: false when given', async () => {
    const result = await upsert(sellerInput({ enabled: false }));
    expect(result.userErrors).toEqual([]);
    expect(result.seller!.enabled).toBe(false);
  });

  it('lists sellers ordered by tier, then name', async () => {
    const stamp = `${process.pid}-${Date.now()}`;
    const created: string[] = [];
    for (const [name, tier] of [
      [`Order Zeta ${stamp}`, 1],
      [`Order Alpha ${stamp}`, 2],
      [`Order Beta ${stamp}`, 1],
      [`Order Aardvark ${stamp}`, 3],
    ] as const) {
      const r = await upsert(sellerInput({ name, tier }));
      expect(r.userErrors).toEqual([]);
      created.push(r.seller!.id);
    }
    const listed = await listAsAdmin();
    const ours = listed.filter((x) => created.includes(x.id)).map((x) => x.name);
    expect(ours).toEqual([`Order Beta ${stamp}`, `Order Zeta ${stamp}`, `Order Alpha ${stamp}`, `Order Aardvark ${stamp}`]);

    // The whole list honours the order too, not only our slice of it.
    const keys = listed.map((x) => [x.tier, x.name] as const);
    const sorted = [...keys].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    expect(keys).toEqual(sorted);
  });
});

describe('secrets are write-only', () => {
  it('never returns a header value, in any response, while headerNames shows the name', async () => {
    const created = await upsert(sellerInput());
    expect(created.userErrors).toEqual([]);
    expect(JSON.stringify(created)).not.toContain(SECRET);

    const res = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${s.tokens.admin}` },
      body: JSON.stringify({ query: SELLERS }),
    });
    expect(res.status).toBe(200);
    const raw = await res.text();
    expect(raw).not.toContain(SECRET);

    const body = JSON.parse(raw) as { data: { sellers: Array<{ id: string; config: any }> } };
    const mine = body.data.sellers.find((x) => x.id === created.seller!.id)!;
    expect(mine.config).not.toBeNull();
    expect(mine.config.headerNames).toEqual(['X-Api-Key']);
    expect(mine.config.baseUrl).toBe('http://127.0.0.1:9/api/v1');
    expect(mine.config.quote).toMatchObject({ method: 'GET', path: '/books/{{isbn}}', response: { itemPrice: 'price', shipping: 'shipping' } });
    expect(mine.config.order).toMatchObject({ method: 'POST', path: '/orders', hasBody: true, response: { orderId: 'id' } });
  });

  it('keeps a callback secret out of every response too', async () => {
    const callbackSecret = 'callback-secret-0123456789';
    const created = await upsert(sellerInput({ callbackSecret }));
    expect(created.userErrors).toEqual([]);
    expect(created.seller!.config.hasCallbackSecret).toBe(true);
    const res = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${s.tokens.admin}` },
      body: JSON.stringify({ query: SELLERS }),
    });
    const raw = await res.text();
    expect(raw).not.toContain(callbackSecret);
    expect(JSON.stringify(created)).not.toContain(callbackSecret);
  });

  it("shows a non-admin the sellers but not their config", async () => {
    const created = await upsert(sellerInput());
    const res = await s.gql(SELLERS, {}, s.tokens.alice);
    expect(res.errors).toBeUndefined();
    const mine = (res.data.sellers as Array<{ id: string; config: unknown }>).find((x) => x.id === created.seller!.id);
    expect(mine).toBeDefined();
    expect(mine!.config).toBeNull();
    for (const seller of res.data.sellers) expect(seller.config).toBeNull();
  });
});

describe('updating a seller', () => {
  it('changes name and tier by id, and omitting headers keeps them', async () => {
    const created = await upsert(sellerInput({ tier: 2 }));
    const id = created.seller!.id;
    const { headers: _omit, ...withoutHeaders } = sellerInput();
    const newName = uniqueName('Renamed Books');
    const updated = await upsert({ ...withoutHeaders, id, name: newName, tier: 5 });
    expect(updated.userErrors).toEqual([]);
    expect(updated.seller).toMatchObject({ id, name: newName, tier: 5 });
    expect(updated.seller!.config.headerNames).toEqual(['X-Api-Key']);

    const listed = await listAsAdmin();
    expect(listed.filter((x) => x.id === id)).toHaveLength(1);
    expect(listed.find((x) => x.id === id)).toMatchObject({ name: newName, tier: 5 });
    expect(listed.find((x) => x.id === id)!.config.headerNames).toEqual(['X-Api-Key']);
  });

  it('replaces headers when they are given', async () => {
    const created = await upsert(sellerInput());
    const id = created.seller!.id;
    const updated = await upsert({ ...sellerInput({ name: created.seller!.name }), id, headers: { Authorization: 'Bearer other-secret' } });
    expect(updated.userErrors).toEqual([]);
    expect(updated.seller!.config.headerNames).toEqual(['Authorization']);
    expect(JSON.stringify(updated)).not.toContain('other-secret');
  });

  it('refuses an unknown UUID with NOT_FOUND and creates nothing', async () => {
    const before = (await listAsAdmin()).length;
    const result = await upsert({ ...sellerInput(), id: '00000000-0000-4000-8000-000000000000' });
    expect(result.seller).toBeNull();
    expect(result.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'id'] })]);
    expect((await listAsAdmin()).length).toBe(before);
  });

  it('refuses a non-UUID id with NOT_FOUND (not an internal error)', async () => {
    const before = (await listAsAdmin()).length;
    const result = await upsert({ ...sellerInput(), id: 'not-a-uuid' });
    expect(result.seller).toBeNull();
    expect(result.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'id'] })]);
    expect((await listAsAdmin()).length).toBe(before);
  });
});

describe('maxCallsPerSecond', () => {
  it('is stored, read back in the config and changed or cleared by an update (absent or null: no limit)', async () => {
    const created = await upsert(sellerInput({ maxCallsPerSecond: 5 }));
    expect(created.userErrors).toEqual([]);
    expect(created.seller!.config.maxCallsPerSecond).toBe(5);
    const id = created.seller!.id;
    const name = created.seller!.name;
    expect((await listAsAdmin()).find((x) => x.id === id)!.config.maxCallsPerSecond).toBe(5);

    expect((await upsert({ ...sellerInput({ name, maxCallsPerSecond: 100_000 }), id })).seller!.config.maxCallsPerSecond).toBe(100_000);
    expect((await upsert({ ...sellerInput({ name, maxCallsPerSecond: null }), id })).seller!.config.maxCallsPerSecond).toBeNull();
    expect((await upsert({ ...sellerInput({ name, maxCallsPerSecond: 1 }), id })).seller!.config.maxCallsPerSecond).toBe(1);
    expect((await upsert({ ...sellerInput({ name }), id })).seller!.config.maxCallsPerSecond).toBeNull();
    expect((await listAsAdmin()).find((x) => x.id === id)!.config.maxCallsPerSecond).toBeNull();
  });

  it.each([0, -1, 100_001])('refuses %j with INVALID_SELLER_CONFIG and creates nothing', async (maxCallsPerSecond) => {
    await expectInvalid(sellerInput({ maxCallsPerSecond }), ['input', 'maxCallsPerSecond']);
  });

  it('an update to an invalid limit leaves the stored one as it was', async () => {
    const created = await upsert(sellerInput({ maxCallsPerSecond: 7 }));
    const id = created.seller!.id;
    const refused = await upsert({ ...sellerInput({ name: created.seller!.name, maxCallsPerSecond: 0 }), id });
    expect(refused.seller).toBeNull();
    expect(refused.userErrors).toEqual([expect.objectContaining({ code: 'INVALID_SELLER_CONFIG', field: ['input', 'maxCallsPerSecond'] })]);
    expect((await listAsAdmin()).find((x) => x.id === id)!.config.maxCallsPerSecond).toBe(7);
  });

  it('a non-integer is refused by the schema itself', async () => {
    const res = await s.gql(UPSERT, { input: sellerInput({ maxCallsPerSecond: 2.5 }) }, s.tokens.admin);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('INVALID_SELLER_CONFIG with a field path', () => {
  it('an unknown placeholder in the path', async () => {
    const input = sellerInput();
    await expectInvalid({ ...input, quote: { ...(input.quote as object), path: '/books/{{nope}}' } }, ['input', 'quote', 'path']);
  });

  it('an unknown placeholder in a nested body string', async () => {
    const input = sellerInput();
    const order = input.order as { body: Record<string, unknown> };
    await expectInvalid(
      { ...input, order: { ...order, body: { ...order.body, customer: { notes: ['gift', 'ref {{nope}}'] } } } },
      ['input', 'order', 'body', 'customer', 'notes', '1'],
    );
  });

  it('a placeholder allowed only in orders, used in the quote path', async () => {
    const input = sellerInput();
    await expectInvalid({ ...input, quote: { ...(input.quote as object), path: '/books/{{offerId}}' } }, ['input', 'quote', 'path']);
  });

  it('a quote response mapping without itemPrice', async () => {
    const input = sellerInput();
    await expectInvalid({ ...input, quote: { ...(input.quote as object), response: { shipping: 'shipping' } } }, [
      'input',
      'quote',
      'response',
      'itemPrice',
    ]);
  });

  it.each(['not a url', 'ftp://x', '/relative/path', ''])('a bad baseUrl %j', async (baseUrl) => {
    await expectInvalid(sellerInput({ baseUrl }), ['input', 'baseUrl']);
  });

  it('tier 0', async () => {
    await expectInvalid(sellerInput({ tier: 0 }), ['input', 'tier']);
  });

  it('timeoutMs 10', async () => {
    await expectInvalid(sellerInput({ timeoutMs: 10 }), ['input', 'timeoutMs']);
  });

  it('a GET quote with a body', async () => {
    const input = sellerInput();
    await expectInvalid({ ...input, quote: { ...(input.quote as object), body: { isbn: '{{isbn}}' } } }, ['input', 'quote', 'body']);
  });

  it('a forbidden connector header', async () => {
    await expectInvalid(sellerInput({ headers: { Host: 'evil.example.com' } }), ['input', 'headers', 'Host']);
  });
});

describe('with SELLER_URLS=public', () => {
  let pub: TestServer;
  beforeAll(async () => {
    pub = await startTestServer({ SELLER_URLS: 'public' });
  });
  afterAll(async () => {
    await pub?.close();
  });

  it.each([
    'http://127.0.0.1',
    'http://10.0.0.5',
    'http://[::1]',
    'http://localhost:8080',
    'http://192.168.1.20/api',
    'http://169.254.169.254/latest',
    'http://2130706433',
    'http://[::ffff:127.0.0.1]',
  ])(
    'refuses the loopback or private baseUrl %s',
    async (baseUrl) => {
      await expectInvalid(sellerInput({ baseUrl }), ['input', 'baseUrl'], pub);
    },
  );

  it('accepts a public https baseUrl', async () => {
    const result = await upsert(sellerInput({ baseUrl: 'https://books.example.com' }), pub);
    expect(result.userErrors).toEqual([]);
    expect(result.seller!.config.baseUrl).toBe('https://books.example.com');
  });
});

describe('access control', () => {
  it('a user calling upsertSeller gets FORBIDDEN and nothing is created', async () => {
    const before = (await listAsAdmin()).length;
    const input = sellerInput();
    const res = await s.gql(UPSERT, { input }, s.tokens.alice);
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(res.data?.upsertSeller ?? null).toBeNull();
    const after = await listAsAdmin();
    expect(after.length).toBe(before);
    expect(after.some((x) => x.name === input.name)).toBe(false);
  });

  it('an anonymous caller listing sellers gets UNAUTHENTICATED', async () => {
    const res = await s.gql(SELLERS, {}, null);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.data).toBeNull();
  });

  it('an anonymous caller upserting a seller gets UNAUTHENTICATED and nothing is created', async () => {
    const before = (await listAsAdmin()).length;
    const res = await s.gql(UPSERT, { input: sellerInput() }, null);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await listAsAdmin()).length).toBe(before);
  });

  it('a garbage token is UNAUTHENTICATED, not an internal error', async () => {
    const res = await s.gql(SELLERS, {}, 'not.a.jwt');
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
