import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Auth } from '../src/http/auth.js';
import { CANCEL, CREATE, GET, UPDATE, createInput } from './support/fixtures.js';
import { type GqlResult, type TestServer, startTestServer, useQueryCountingServer } from './support/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

const LIST = `query List($first: Int, $after: String, $status: [RequestStatus!]) {
  purchaseRequests(first: $first, after: $after, status: $status) {
    edges { cursor node { id status revision events { type } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let users = 0;
/** A token for a user no other test touches, so "the user's list" is this test's alone. */
async function freshUser(): Promise<string> {
  users += 1;
  return s.app.auth.issue(`user-${process.pid}-${Date.now()}-${users}`, 'user');
}

async function create(input: Record<string, unknown>, token?: string) {
  const res = await s.gql(CREATE, { input }, token);
  expect(res.status).toBe(200);
  expect(res.errors).toBeUndefined();
  return res.data.createPurchaseRequest as { purchaseRequest: any; userErrors: Array<{ field: string[] | null; message: string; code: string }> };
}

/** Creates a request that must succeed, returning it. */
async function created(overrides: Record<string, unknown> = {}, token?: string): Promise<any> {
  const p = await create(createInput(overrides), token);
  expect(p.userErrors).toEqual([]);
  expect(p.purchaseRequest).not.toBeNull();
  return p.purchaseRequest;
}

async function get(id: string, token?: string): Promise<any> {
  const res = await s.gql(GET, { id }, token);
  expect(res.status).toBe(200);
  expect(res.errors).toBeUndefined();
  return res.data.purchaseRequest;
}

/** Every request id in the user's list, newest first (walks all pages). */
async function listIds(token?: string, status?: string[]): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (;;) {
    const res: GqlResult<any> = await s.gql(LIST, { first: 100, after, status }, token);
    expect(res.errors).toBeUndefined();
    const conn = res.data.purchaseRequests;
    ids.push(...conn.edges.map((e: any) => e.node.id));
    if (!conn.pageInfo.hasNextPage) return ids;
    after = conn.pageInfo.endCursor;
  }
}

describe('createPurchaseRequest', () => {
  it('returns the request PENDING at once, at revision 1, with one CREATED event and ISO timestamps', async () => {
    const expiresAt = new Date(Date.now() + 2 * HOUR).toISOString();
    const before = Date.now();
    const req = await created({ maxTotalPrice: { cents: 4599, currency: 'USD' }, expiresAt });

    expect(req).toMatchObject({
      status: 'PENDING',
      revision: 1,
      conditions: ['NEW'],
      book: { isbn: '9781449373320', title: null, author: null },
      maxTotalPrice: { cents: 4599, currency: 'USD' },
      bestOffer: null,
      order: null,
      failureReason: null,
      expiresAt,
    });
    expect(Number.isInteger(req.maxTotalPrice.cents)).toBe(true);
    expect(req.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    for (const at of [req.createdAt, req.updatedAt, req.expiresAt]) expect(at).toMatch(ISO);
    expect(req.updatedAt).toBe(req.createdAt);
    expect(Date.parse(req.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(req.createdAt)).toBeLessThanOrEqual(Date.now() + 1000);

    expect(req.events).toHaveLength(1);
    expect(req.events[0]).toMatchObject({ type: 'CREATED', status: 'PENDING', revision: 1 });
    expect(req.events[0].at).toMatch(ISO);

    // What was returned is what was stored.
    expect(await get(req.id)).toEqual(req);
  });

  it('normalises an ISBN-10 (with hyphens, or an X check digit) to its ISBN-13', async () => {
    expect((await created({ book: { isbn: '1-4493-7332-1' } })).book.isbn).toBe('9781449373320');
    expect((await created({ book: { isbn: '080442957x' } })).book.isbn).toBe('9780804429573');
  });

  it('accepts a book given by title alone, trimmed, with no ISBN', async () => {
    const req = await created({ book: { title: '  Dune ', author: 'Frank Herbert' } });
    expect(req.book).toEqual({ isbn: null, title: 'Dune', author: 'Frank Herbert' });
    expect(req.status).toBe('PENDING');
  });

  it('defaults the currency to USD when it is omitted', async () => {
    const req = await created({ maxTotalPrice: { cents: 1234 } });
    expect(req.maxTotalPrice).toEqual({ cents: 1234, currency: 'USD' });
  });

  it('defaults conditions to [NEW] and keeps the ones given', async () => {
    expect((await created({ conditions: null })).conditions).toEqual(['NEW']);
    expect((await created({ conditions: ['USED'] })).conditions).toEqual(['USED']);
    expect((await created({ conditions: ['USED', 'NEW'] })).conditions).toEqual(expect.arrayContaining(['NEW', 'USED']));
  });
});

describe('createPurchaseRequest refuses invalid input with userErrors and creates nothing', () => {
  const inFuture = (ms: number) => new Date(Date.now() + ms).toISOString();
  const address = createInput().shippingAddress as Record<string, unknown>;
  const cases: Array<{ name: string; overrides: () => Record<string, unknown>; code: string; field: string[] }> = [
    { name: 'an ISBN with a wrong checksum', overrides: () => ({ book: { isbn: '9781449373321' } }), code: 'INVALID_ISBN', field: ['input', 'book', 'isbn'] },
    { name: 'an ISBN that is not one', overrides: () => ({ book: { isbn: 'not-an-isbn', title: 'Dune' } }), code: 'INVALID_ISBN', field: ['input', 'book', 'isbn'] },
    { name: 'a book with neither isbn nor title', overrides: () => ({ book: { author: 'Frank Herbert' } }), code: 'BOOK_REQUIRED', field: ['input', 'book'] },
    { name: 'a book with a blank isbn and title', overrides: () => ({ book: { isbn: '  ', title: ' ' } }), code: 'BOOK_REQUIRED', field: ['input', 'book'] },
    { name: 'a price of 0', overrides: () => ({ maxTotalPrice: { cents: 0, currency: 'USD' } }), code: 'INVALID_PRICE', field: ['input', 'maxTotalPrice', 'cents'] },
    { name: 'a negative price', overrides: () => ({ maxTotalPrice: { cents: -500, currency: 'USD' } }), code: 'INVALID_PRICE', field: ['input', 'maxTotalPrice', 'cents'] },
    { name: 'a huge price', overrides: () => ({ maxTotalPrice: { cents: 2_000_000_000, currency: 'USD' } }), code: 'INVALID_PRICE', field: ['input', 'maxTotalPrice', 'cents'] },
    { name: 'a currency other than USD', overrides: () => ({ maxTotalPrice: { cents: 4500, currency: 'EUR' } }), code: 'UNSUPPORTED_CURRENCY', field: ['input', 'maxTotalPrice', 'currency'] },
    { name: 'a deadline in the past', overrides: () => ({ expiresAt: inFuture(-60_000) }), code: 'INVALID_EXPIRY', field: ['input', 'expiresAt'] },
    { name: 'a deadline beyond 30 days', overrides: () => ({ expiresAt: inFuture(31 * DAY) }), code: 'INVALID_EXPIRY', field: ['input', 'expiresAt'] },
    { name: 'a blank address line1', overrides: () => ({ shippingAddress: { ...address, line1: '   ' } }), code: 'INVALID_ADDRESS', field: ['input', 'shippingAddress', 'line1'] },
    { name: 'an unknown country', overrides: () => ({ shippingAddress: { ...address, country: 'XX' } }), code: 'INVALID_ADDRESS', field: ['input', 'shippingAddress', 'country'] },
    { name: 'a three-letter country', overrides: () => ({ shippingAddress: { ...address, country: 'USA' } }), code: 'INVALID_ADDRESS', field: ['input', 'shippingAddress', 'country'] },
    { name: 'a 201-character name', overrides: () => ({ shippingAddress: { ...address, name: 'A'.repeat(201) } }), code: 'INVALID_ADDRESS', field: ['input', 'shippingAddress', 'name'] },
    { name: 'a card number as payment token', overrides: () => ({ paymentToken: '4242424242424242' }), code: 'INVALID_PAYMENT_TOKEN', field: ['input', 'paymentToken'] },
    { name: 'an idempotency key with spaces', overrides: () => ({ idempotencyKey: 'my key!' }), code: 'INVALID_INPUT', field: ['input', 'idempotencyKey'] },
    { name: 'an empty idempotency key', overrides: () => ({ idempotencyKey: '' }), code: 'INVALID_INPUT', field: ['input', 'idempotencyKey'] },
    { name: 'a 129-character idempotency key', overrides: () => ({ idempotencyKey: 'k'.repeat(129) }), code: 'INVALID_INPUT', field: ['input', 'idempotencyKey'] },
    { name: 'an empty conditions list', overrides: () => ({ conditions: [] }), code: 'INVALID_INPUT', field: ['input', 'conditions'] },
    { name: 'a 10,000-character title', overrides: () => ({ book: { title: 't'.repeat(10_000) } }), code: 'INVALID_INPUT', field: ['input', 'book', 'title'] },
  ];

  it.each(cases)('$name → $code', async ({ overrides, code, field }) => {
    const token = await freshUser();
    await created({}, token);
    const before = await listIds(token);

    const p = await create(createInput(overrides()), token);

    expect(p.purchaseRequest).toBeNull();
    expect(p.userErrors).toContainEqual({ code, field, message: expect.any(String) });
    expect(await listIds(token)).toEqual(before);
  });

  it('reports every problem of one input at once', async () => {
    const token = await freshUser();
    const p = await create(
      createInput({ book: { isbn: '123' }, maxTotalPrice: { cents: 0 }, paymentToken: 'card', shippingAddress: { ...address, country: 'ZZ' } }),
      token,
    );
    expect(p.purchaseRequest).toBeNull();
    expect(p.userErrors.map((e) => e.code).sort()).toEqual(['INVALID_ADDRESS', 'INVALID_ISBN', 'INVALID_PAYMENT_TOKEN', 'INVALID_PRICE']);
    expect(await listIds(token)).toEqual([]);
  });
});

describe('malformed scalars are a BAD_USER_INPUT GraphQL error with HTTP 400', () => {
  const cases: Array<{ name: string; overrides: () => Record<string, unknown> }> = [
    { name: 'expiresAt "tomorrow"', overrides: () => ({ expiresAt: 'tomorrow' }) },
    { name: 'expiresAt without a zone', overrides: () => ({ expiresAt: '2030-01-01T10:00:00' }) },
    { name: 'expiresAt as a number', overrides: () => ({ expiresAt: Date.now() + HOUR }) },
    { name: 'cents as a string', overrides: () => ({ maxTotalPrice: { cents: '4500', currency: 'USD' } }) },
    { name: 'cents with a fraction', overrides: () => ({ maxTotalPrice: { cents: 45.5, currency: 'USD' } }) },
    { name: 'cents beyond a 32-bit Int', overrides: () => ({ maxTotalPrice: { cents: 2 ** 31, currency: 'USD' } }) },
    { name: 'an unknown condition', overrides: () => ({ conditions: ['MINT'] }) },
  ];

  it.each(cases)('$name', async ({ overrides }) => {
    const token = await freshUser();
    const res = await s.gql(CREATE, { input: createInput(overrides()) }, token);
    expect(res.status).toBe(400);
    expect(res.data).toBeUndefined();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await listIds(token)).toEqual([]);
  });
});

describe('idempotency', () => {
  it('the same key with the same input returns the same request and does no new work', async () => {
    const token = await freshUser();
    const input = createInput();
    const first = await create(input, token);
    const second = await create(input, token);
    expect(first.userErrors).toEqual([]);
    expect(second.userErrors).toEqual([]);
    expect(second.purchaseRequest.id).toBe(first.purchaseRequest.id);
    expect(second.purchaseRequest.revision).toBe(1);
    expect(second.purchaseRequest.events.map((e: any) => e.type)).toEqual(['CREATED']);
    expect(await listIds(token)).toEqual([first.purchaseRequest.id]);
  });

  it('a retry that spells the same input differently (ISBN-10 for 13, lower-case currency) is the same request', async () => {
    const token = await freshUser();
    const input = createInput({ book: { isbn: '9781449373320' } });
    const first = await create(input, token);
    const again = await create({ ...input, book: { isbn: '1449373321' }, maxTotalPrice: { cents: 4500, currency: 'usd' } }, token);
    expect(again.userErrors).toEqual([]);
    expect(again.purchaseRequest.id).toBe(first.purchaseRequest.id);
    expect(await listIds(token)).toHaveLength(1);
  });

  it('the same key with a different input → IDEMPOTENCY_KEY_REUSED, and the original is untouched', async () => {
    const token = await freshUser();
    const input = createInput();
    const original = (await create(input, token)).purchaseRequest;

    const reused = await create({ ...input, maxTotalPrice: { cents: 9900, currency: 'USD' } }, token);
    expect(reused.purchaseRequest).toBeNull();
    expect(reused.userErrors).toEqual([{ code: 'IDEMPOTENCY_KEY_REUSED', field: ['input', 'idempotencyKey'], message: expect.any(String) }]);

    expect(await get(original.id, token)).toEqual(original);
    expect(await listIds(token)).toEqual([original.id]);
  });

  it('keys are scoped to the user: bob using alice’s key gets a request of his own', async () => {
    const input = createInput();
    const mine = (await create(input)).purchaseRequest;
    const his = await create(input, s.tokens.bob);
    expect(his.userErrors).toEqual([]);
    expect(his.purchaseRequest.id).not.toBe(mine.id);
    expect(await get(his.purchaseRequest.id, s.tokens.bob)).toMatchObject({ id: his.purchaseRequest.id, revision: 1 });
    expect(await get(mine.id)).toEqual(mine);
    expect(await get(mine.id, s.tokens.bob)).toBeNull();
  });

  it('25 concurrent identical creates make exactly one request', async () => {
    const token = await freshUser();
    const input = createInput();
    const results = await Promise.all(Array.from({ length: 25 }, () => s.gql(CREATE, { input }, token)));

    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.errors).toBeUndefined();
      expect(r.data.createPurchaseRequest.userErrors).toEqual([]);
    }
    const ids = new Set(results.map((r) => r.data.createPurchaseRequest.purchaseRequest.id));
    expect(ids.size).toBe(1);
    const [id] = ids;
    expect(await listIds(token)).toEqual([id]);
    expect((await get(id as string, token)).events.map((e: any) => e.type)).toEqual(['CREATED']);
  });
});

describe('purchaseRequest(id)', () => {
  it('shows the request to its owner and to an admin, and null to another user', async () => {
    const req = await created();
    expect(await get(req.id)).toEqual(req);
    expect(await get(req.id, s.tokens.admin)).toEqual(req);
    expect(await get(req.id, s.tokens.bob)).toBeNull();
  });

  it('answers null, not an error, for an id that is not a UUID or names no request', async () => {
    expect(await get('not-a-uuid')).toBeNull();
    expect(await get("1' or '1'='1")).toBeNull();
    expect(await get('00000000-0000-4000-8000-000000000000')).toBeNull();
  });
});

describe('purchaseRequests', () => {
  it('lists newest first and pages with first/after without duplicates or gaps', async () => {
    const token = await freshUser();
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.push((await created({}, token)).id);
    const newestFirst = [...made].reverse();

    const seen: string[] = [];
    const pages: Array<{ size: number; hasNextPage: boolean }> = [];
    let after: string | null = null;
    for (let guard = 0; guard < 10; guard++) {
      const res: GqlResult<any> = await s.gql(LIST, { first: 3, after }, token);
      expect(res.errors).toBeUndefined();
      const { edges, pageInfo } = res.data.purchaseRequests;
      pages.push({ size: edges.length, hasNextPage: pageInfo.hasNextPage });
      seen.push(...edges.map((e: any) => e.node.id));
      expect(pageInfo.endCursor).toBe(edges.at(-1).cursor);
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor;
    }

    expect(pages).toEqual([
      { size: 3, hasNextPage: true },
      { size: 3, hasNextPage: true },
      { size: 1, hasNextPage: false },
    ]);
    expect(seen).toEqual(newestFirst);
    expect(new Set(seen).size).toBe(7);
  });

  it('an exact last page says there is no next page; the default page holds 20', async () => {
    const token = await freshUser();
    for (let i = 0; i < 21; i++) await created({}, token);
    const full = await s.gql(LIST, {}, token);
    expect(full.data.purchaseRequests.edges).toHaveLength(20);
    expect(full.data.purchaseRequests.pageInfo.hasNextPage).toBe(true);
    const rest = await s.gql(LIST, { first: 1, after: full.data.purchaseRequests.pageInfo.endCursor }, token);
    expect(rest.data.purchaseRequests.edges).toHaveLength(1);
    expect(rest.data.purchaseRequests.pageInfo.hasNextPage).toBe(false);
  });

  it('an empty list has no edges, no next page and no end cursor', async () => {
    const res = await s.gql(LIST, {}, await freshUser());
    expect(res.errors).toBeUndefined();
    expect(res.data.purchaseRequests).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });

  it('filters by status', async () => {
    const token = await freshUser();
    const a = await created({}, token);
    const b = await created({}, token);
    const c = await created({}, token);
    const canceled = await s.gql(CANCEL, { id: b.id }, token);
    expect(canceled.data.cancelPurchaseRequest.userErrors).toEqual([]);

    expect(await listIds(token, ['CANCELED'])).toEqual([b.id]);
    expect(await listIds(token, ['PENDING'])).toEqual([c.id, a.id]);
    expect(await listIds(token, ['PENDING', 'CANCELED'])).toEqual([c.id, b.id, a.id]);
    expect(await listIds(token, ['ORDERED'])).toEqual([]);
  });

  it.each([
    { first: -1 },
    { first: 101 },
    { first: 1000 },
  ])('refuses first: $first with BAD_USER_INPUT', async ({ first }) => {
    const res = await s.gql(LIST, { first });
    expect(res.status).not.toBe(500);
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  // The resolver deliberately accepts 0 ("first must be from 0 to 100"), as Relay allows: an empty
  // page that still says whether requests exist. The spec does not say otherwise.
  it('first: 0 answers an empty page, not an error', async () => {
    const token = await freshUser();
    await created({}, token);
    const res = await s.gql(LIST, { first: 0 }, token);
    expect(res.errors).toBeUndefined();
    expect(res.data.purchaseRequests).toEqual({ edges: [], pageInfo: { hasNextPage: true, endCursor: null } });
  });

  it('accepts first: 100, the maximum', async () => {
    const res = await s.gql(LIST, { first: 100 });
    expect(res.errors).toBeUndefined();
  });

  it.each([
    { name: 'garbage', after: 'garbage!!' },
    { name: 'base64 of another shape', after: Buffer.from('seq:abc').toString('base64url') },
    { name: 'a very long string', after: 'A'.repeat(5000) },
    { name: 'an empty string', after: '' },
  ])('refuses a cursor that is $name with BAD_USER_INPUT', async ({ after }) => {
    const res = await s.gql(LIST, { first: 5, after });
    expect(res.status).not.toBe(500);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('bob’s list never holds alice’s requests, even with alice’s cursor', async () => {
    const alices = [(await created()).id, (await created()).id];
    const bobs = (await created({}, s.tokens.bob)).id;

    const bobList = await listIds(s.tokens.bob);
    expect(bobList).toContain(bobs);
    for (const id of alices) expect(bobList).not.toContain(id);
    const aliceList = await listIds();
    expect(aliceList).toEqual(expect.arrayContaining(alices));
    expect(aliceList).not.toContain(bobs);

    const alicePage = await s.gql(LIST, { first: 1 });
    const res = await s.gql(LIST, { first: 100, after: alicePage.data.purchaseRequests.pageInfo.endCursor }, s.tokens.bob);
    expect(res.errors).toBeUndefined();
    for (const e of res.data.purchaseRequests.edges) expect(alices).not.toContain(e.node.id);
  });
});

describe('updatePurchaseRequest', () => {
  it('raises the budget: new maxTotalPrice, revision + 1, an UPDATED event with a message', async () => {
    const req = await created({ maxTotalPrice: { cents: 4500, currency: 'USD' } });
    const res = await s.gql(UPDATE, { id: req.id, input: { maxTotalPrice: { cents: 6000 } } });
    expect(res.errors).toBeUndefined();
    const p = res.data.updatePurchaseRequest;
    expect(p.userErrors).toEqual([]);
    expect(p.purchaseRequest).toMatchObject({ id: req.id, status: 'PENDING', revision: 2, maxTotalPrice: { cents: 6000, currency: 'USD' }, expiresAt: req.expiresAt });
    expect(Date.parse(p.purchaseRequest.updatedAt)).toBeGreaterThanOrEqual(Date.parse(req.updatedAt));
    expect(p.purchaseRequest.createdAt).toBe(req.createdAt);
    const last = p.purchaseRequest.events.at(-1);
    expect(last).toMatchObject({ type: 'UPDATED', status: 'PENDING', revision: 2 });
    expect(last.message).toEqual(expect.stringMatching(/\S/));
    expect(await get(req.id)).toEqual(p.purchaseRequest);
  });

  it('extends the deadline', async () => {
    const req = await created();
    const later = new Date(Date.now() + 5 * DAY).toISOString();
    const p = (await s.gql(UPDATE, { id: req.id, input: { expiresAt: later } })).data.updatePurchaseRequest;
    expect(p.userErrors).toEqual([]);
    expect(p.purchaseRequest).toMatchObject({ expiresAt: later, revision: 2, maxTotalPrice: req.maxTotalPrice });
    expect(p.purchaseRequest.events.map((e: any) => e.type)).toEqual(['CREATED', 'UPDATED']);
  });

  it('refuses an update with no fields → INVALID_INPUT', async () => {
    const req = await created();
    const res = await s.gql(UPDATE, { id: req.id, input: {} });
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    expect(res.data.updatePurchaseRequest).toEqual({
      purchaseRequest: null,
      userErrors: [{ code: 'INVALID_INPUT', field: ['input'], message: expect.any(String) }],
    });
    expect(await get(req.id)).toEqual(req);
  });

  it.each([
    { name: 'a price of 0', input: { maxTotalPrice: { cents: 0 } }, code: 'INVALID_PRICE' },
    { name: 'a huge price', input: { maxTotalPrice: { cents: 10_000_001 } }, code: 'INVALID_PRICE' },
    { name: 'another currency', input: { maxTotalPrice: { cents: 5000, currency: 'GBP' } }, code: 'UNSUPPORTED_CURRENCY' },
    { name: 'a past deadline', input: { expiresAt: new Date(Date.now() - HOUR).toISOString() }, code: 'INVALID_EXPIRY' },
    { name: 'a deadline beyond the horizon', input: { expiresAt: new Date(Date.now() + 40 * DAY).toISOString() }, code: 'INVALID_EXPIRY' },
  ])('refuses $name → $code and changes nothing', async ({ input, code }) => {
    const req = await created();
    const p = (await s.gql(UPDATE, { id: req.id, input })).data.updatePurchaseRequest;
    expect(p.purchaseRequest).toBeNull();
    expect(p.userErrors.map((e: any) => e.code)).toEqual([code]);
    expect(await get(req.id)).toEqual(req);
  });

  it('bob updating alice’s request → NOT_FOUND, and it is unchanged', async () => {
    const req = await created();
    const p = (await s.gql(UPDATE, { id: req.id, input: { maxTotalPrice: { cents: 9000 } } }, s.tokens.bob)).data.updatePurchaseRequest;
    expect(p).toEqual({ purchaseRequest: null, userErrors: [{ code: 'NOT_FOUND', field: ['id'], message: expect.any(String) }] });
    expect(await get(req.id)).toEqual(req);
  });

  it('an id that is not a UUID or names no request → NOT_FOUND', async () => {
    for (const id of ['nope', '00000000-0000-4000-8000-000000000000']) {
      const res = await s.gql(UPDATE, { id, input: { maxTotalPrice: { cents: 9000 } } });
      expect(res.errors).toBeUndefined();
      expect(res.data.updatePurchaseRequest.userErrors.map((e: any) => e.code)).toEqual(['NOT_FOUND']);
    }
  });

  it('after cancel → NOT_UPDATABLE, and the revision does not move', async () => {
    const req = await created();
    expect((await s.gql(CANCEL, { id: req.id })).data.cancelPurchaseRequest.userErrors).toEqual([]);
    const p = (await s.gql(UPDATE, { id: req.id, input: { maxTotalPrice: { cents: 9000 } } })).data.updatePurchaseRequest;
    expect(p.purchaseRequest).toBeNull();
    expect(p.userErrors).toEqual([{ code: 'NOT_UPDATABLE', field: ['id'], message: expect.any(String) }]);
    expect(await get(req.id)).toMatchObject({ status: 'CANCELED', revision: 2, maxTotalPrice: req.maxTotalPrice });
  });
});

describe('cancelPurchaseRequest', () => {
  it('cancels a PENDING request: CANCELED, revision + 1, a CANCELED event', async () => {
    const req = await created();
    const res = await s.gql(CANCEL, { id: req.id });
    expect(res.errors).toBeUndefined();
    const p = res.data.cancelPurchaseRequest;
    expect(p.userErrors).toEqual([]);
    expect(p.purchaseRequest).toMatchObject({ id: req.id, status: 'CANCELED', revision: 2 });
    expect(p.purchaseRequest.events.at(-1)).toMatchObject({ type: 'CANCELED', status: 'CANCELED', revision: 2 });
    expect(await get(req.id)).toEqual(p.purchaseRequest);
  });

  it('canceling again → NOT_CANCELABLE, and the revision is unchanged', async () => {
    const req = await created();
    const first = (await s.gql(CANCEL, { id: req.id })).data.cancelPurchaseRequest.purchaseRequest;
    const again = (await s.gql(CANCEL, { id: req.id })).data.cancelPurchaseRequest;
    expect(again).toEqual({ purchaseRequest: null, userErrors: [{ code: 'NOT_CANCELABLE', field: ['id'], message: expect.any(String) }] });
    expect(await get(req.id)).toEqual(first);
    expect(first.revision).toBe(2);
  });

  it('bob canceling alice’s request → NOT_FOUND, and it stays PENDING', async () => {
    const req = await created();
    const p = (await s.gql(CANCEL, { id: req.id }, s.tokens.bob)).data.cancelPurchaseRequest;
    expect(p).toEqual({ purchaseRequest: null, userErrors: [{ code: 'NOT_FOUND', field: ['id'], message: expect.any(String) }] });
    expect(await get(req.id)).toEqual(req);
  });

  it('an id that is not a UUID or names no request → NOT_FOUND, not an error', async () => {
    for (const id of ['not-a-uuid', '', '00000000-0000-4000-8000-000000000000']) {
      const res = await s.gql(CANCEL, { id });
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
      expect(res.data.cancelPurchaseRequest).toEqual({ purchaseRequest: null, userErrors: [{ code: 'NOT_FOUND', field: ['id'], message: expect.any(String) }] });
    }
  });
});

describe('events', () => {
  it('are oldest first with revisions 1..n and no gaps after update, update, cancel', async () => {
    const req = await created({ maxTotalPrice: { cents: 3000 } });
    const u1 = (await s.gql(UPDATE, { id: req.id, input: { maxTotalPrice: { cents: 3500 } } })).data.updatePurchaseRequest;
    expect(u1.userErrors).toEqual([]);
    const u2 = (await s.gql(UPDATE, { id: req.id, input: { expiresAt: new Date(Date.now() + 2 * DAY).toISOString() } })).data
      .updatePurchaseRequest;
    expect(u2.userErrors).toEqual([]);
    const c = (await s.gql(CANCEL, { id: req.id })).data.cancelPurchaseRequest;
    expect(c.userErrors).toEqual([]);

    const final = await get(req.id);
    expect(final.revision).toBe(4);
    expect(final.events.map((e: any) => [e.revision, e.type, e.status])).toEqual([
      [1, 'CREATED', 'PENDING'],
      [2, 'UPDATED', 'PENDING'],
      [3, 'UPDATED', 'PENDING'],
      [4, 'CANCELED', 'CANCELED'],
    ]);
    const times = final.events.map((e: any) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(final.events.map((e: any) => e.id)).size).toBe(4);
    expect(final.events[0].at).toBe(final.createdAt);
    expect(final.events.at(-1).at).toBe(final.updatedAt);
  });
});

describe('authentication', () => {
  const ops = [
    { name: 'create', query: CREATE, vars: () => ({ input: createInput() }) },
    { name: 'list', query: LIST, vars: () => ({}) },
    { name: 'get', query: GET, vars: () => ({ id: '00000000-0000-4000-8000-000000000000' }) },
    { name: 'update', query: UPDATE, vars: () => ({ id: '00000000-0000-4000-8000-000000000000', input: { maxTotalPrice: { cents: 1 } } }) },
    { name: 'cancel', query: CANCEL, vars: () => ({ id: '00000000-0000-4000-8000-000000000000' }) },
  ];

  it.each(ops)('$name without a token → UNAUTHENTICATED', async ({ query, vars }) => {
    const res = await s.gql(query, vars(), null);
    expect(res.status).not.toBe(500);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it.each(ops)('$name with a token signed by another secret → UNAUTHENTICATED', async ({ query, vars }) => {
    const forged = await new Auth('some-other-secret-0123456789abcdef0123').issue('alice', 'user');
    const res = await s.gql(query, vars(), forged);
    expect(res.status).not.toBe(500);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('an expired or garbage token → UNAUTHENTICATED, and an unauthenticated create stores nothing', async () => {
    const expired = await s.app.auth.issue('alice', 'user', -60);
    for (const token of [expired, 'garbage', `${s.tokens.alice}x`]) {
      const res = await s.gql(LIST, {}, token);
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    const before = await listIds();
    const input = createInput();
    const res = await s.gql(CREATE, { input }, null);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await listIds()).toEqual(before);
    // The key was not claimed either: alice can use it now.
    expect((await create(input)).userErrors).toEqual([]);
  });
});

describe('no N+1 when listing with events', () => {
  const recorded = useQueryCountingServer();

  it('reads request_events once for a page of 15 requests', async () => {
    const { server: counted, queries } = recorded;
    for (let i = 0; i < 15; i++) {
      const res = await counted.gql(CREATE, { input: createInput() });
      expect(res.data.createPurchaseRequest.userErrors).toEqual([]);
    }
    queries.length = 0;

    const res = await counted.gql(`query { purchaseRequests(first: 50) { edges { node { id events { type } } } } }`);
    expect(res.errors).toBeUndefined();
    const edges = res.data.purchaseRequests.edges;
    expect(edges).toHaveLength(15);
    for (const e of edges) expect(e.node.events).toEqual([{ type: 'CREATED' }]);

    const eventReads = queries.filter((q) => /^\s*select\b/i.test(q) && /\brequest_events\b/i.test(q));
    expect(eventReads).toHaveLength(1);
    expect(queries.length).toBeLessThanOrEqual(3);
  });
});
