import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_PRINT_BOOKS, createInput, usd } from './support/fixtures.js';
import { type TestServer, eventually, startTestServer } from './support/server.js';
import { type World, startWorld } from './support/world.js';

/**
 * Overload (SPEC §6), end to end: more requests than the engine runs at once wait PENDING with a
 * visible queue position and are all resolved; a full backlog refuses new requests with OVERLOADED
 * and a retry hint (and stores nothing for them); per-user mutation limits answer RATE_LIMITED
 * (HTTP 429, Retry-After) per root mutation field, without touching other users.
 */

const CREATE = `mutation Create($input: CreatePurchaseRequestInput!) {
  createPurchaseRequest(input: $input) {
    purchaseRequest { id status queuePosition }
    userErrors { code field }
  }
}`;
const POSITION = `query Position($id: ID!) { purchaseRequest(id: $id) { id status queuePosition } }`;
const MINE = `query Mine { purchaseRequests(first: 100) { edges { node { id status } } } }`;
const CANCEL = `mutation Cancel($id: ID!) { cancelPurchaseRequest(id: $id) { purchaseRequest { id status } userErrors { code } } }`;

/** In-print books; every tier-1 seller is stocked with each below. */
const BOOKS = [
  ...IN_PRINT_BOOKS,
  '9780141439471',
  '9780374528379',
];
const TIER1 = ['pageturner', 'inkwell', 'novella'];
const SETTLED = ['ORDERED', 'QUOTED', 'OUT_OF_STOCK', 'FAILED', 'EXPIRED', 'CANCELED'];

async function mine(server: TestServer, token: string): Promise<Array<{ id: string; status: string }>> {
  const res = await server.gql(MINE, {}, token);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data.purchaseRequests.edges.map((e: any) => e.node);
}

describe('a burst beyond what the engine runs at once', () => {
  const MAX_ACTIVE = 2;
  let w: World;

  beforeAll(async () => {
    w = await startWorld({
      sellers: TIER1.map((key) => ({ key, tier: 1, timeoutMs: 5_000 })),
      latencyScale: 1,
      env: { ENGINE_MAX_ACTIVE: String(MAX_ACTIVE) },
    });
    for (const key of TIER1) {
      // Slow partners: each request holds one of the two engine slots for a few hundred ms.
      await w.sandbox.configure(key, { latency: { medianMs: 100, p99Ms: 160 } });
      for (const isbn of BOOKS) await w.sandbox.setInventory(key, isbn, 10);
    }
  });
  afterAll(async () => {
    await w?.close();
  });

  /** 30 creates at once, for books every seller has; returns their ids once all were answered PENDING. */
  async function burst(): Promise<string[]> {
    const inputs = Array.from({ length: 30 }, (_, i) => createInput({ book: { isbn: BOOKS[i % BOOKS.length] }, maxTotalPrice: usd(20_000) }));
    const results = await Promise.all(inputs.map((input) => w.server.gql(CREATE, { input })));
    for (const res of results) {
      expect(res.errors).toBeUndefined();
      expect(res.data.createPurchaseRequest.userErrors).toEqual([]);
      expect(res.data.createPurchaseRequest.purchaseRequest).toMatchObject({ status: 'PENDING', queuePosition: expect.any(Number) });
    }
    const ids: string[] = results.map((res) => res.data.createPurchaseRequest.purchaseRequest.id);
    expect(new Set(ids).size).toBe(30);
    return ids;
  }

  /** Waits until every request settled; none may be lost, and each ordered one is in the partners' ledger once. */
  async function allOrdered(ids: string[]): Promise<void> {
    const settled = await eventually(
      async () => {
        const all = (await mine(w.server, w.server.tokens.alice)).filter((r) => ids.includes(r.id));
        return all.length === ids.length && all.every((r) => SETTLED.includes(r.status)) ? all : null;
      },
      60_000,
      100,
    );
    expect(settled.map((r) => r.status)).toEqual(ids.map(() => 'ORDERED'));
    const ledger = (await w.sandbox.ledger()).filter((e) => ids.includes(e.requestId ?? ''));
    expect(ledger).toHaveLength(ids.length);
    expect(new Set(ledger.map((e) => e.requestId)).size).toBe(ids.length);
  }

  it('answers PENDING at once for all 30, runs at most 2 at a time, and resolves every one', async () => {
    const ids = await burst();
    let busiest = 0;
    let sawWaiting = false;
    await eventually(
      async () => {
        // One query, one snapshot of every request's status.
        const snapshot = (await mine(w.server, w.server.tokens.alice)).filter((r) => ids.includes(r.id));
        busiest = Math.max(busiest, snapshot.filter((r) => r.status === 'SEARCHING' || r.status === 'ORDERING').length);
        sawWaiting ||= snapshot.some((r) => r.status === 'PENDING');
        return snapshot.every((r) => SETTLED.includes(r.status));
      },
      60_000,
      20,
    );
    expect(sawWaiting).toBe(true);
    expect(busiest).toBeGreaterThanOrEqual(1);
    expect(busiest).toBeLessThanOrEqual(MAX_ACTIVE);
    await allOrdered(ids);
  }, 90_000);

  it('shows a waiting request its queue position, counting the requests ahead, and it decreases as the queue drains', async () => {
    const ids = await burst();
    const POSITION_AT = `query Position($id: ID!) { purchaseRequest(id: $id) { id status queuePosition createdAt } }`;
    const positions = await Promise.all(ids.map(async (id) => (await w.server.gql(POSITION_AT, { id })).data.purchaseRequest));
    // The request at the back of the queue: most ahead of it, created last.
    const last = positions
      .filter((p) => p.status === 'PENDING')
      .sort((a, b) => b.queuePosition - a.queuePosition || Date.parse(b.createdAt) - Date.parse(a.createdAt))[0];
    expect(last, 'every request left PENDING before the queue could be looked at').toBeDefined();
    const waiting = positions.filter((p) => p.status === 'PENDING').length;
    // With two running at a time, most of the burst is still ahead of the last one.
    expect(waiting).toBeGreaterThanOrEqual(12);
    expect(last.queuePosition).toBeGreaterThanOrEqual(10);
    expect(last.queuePosition).toBeLessThan(waiting);

    const seen: number[] = [last.queuePosition];
    const left = await eventually(
      async () => {
        const p = (await w.server.gql(POSITION, { id: last.id })).data.purchaseRequest;
        if (p.status !== 'PENDING') return p;
        seen.push(p.queuePosition);
        return null;
      },
      60_000,
      20,
    );
    expect(left.queuePosition).toBeNull();
    // Never moves back; it went down step by step as the engine worked through the queue.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeLessThanOrEqual(seen[i - 1]!);
    expect(new Set(seen).size).toBeGreaterThanOrEqual(3);
    await allOrdered(ids);
  }, 90_000);
});

describe('a full backlog', () => {
  const MAX_BACKLOG = 5;
  const RETRY_AFTER_MS = 1_500;
  let server: TestServer;

  beforeAll(async () => {
    // No engine: requests stay PENDING, so the backlog only grows.
    server = await startTestServer({ ENGINE: 'false', MAX_BACKLOG: String(MAX_BACKLOG), OVERLOADED_RETRY_AFTER_MS: String(RETRY_AFTER_MS) });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('refuses the 6th create with OVERLOADED and a retry hint, stores nothing for it, and still replays earlier keys', async () => {
    const inputs = Array.from({ length: MAX_BACKLOG }, () => createInput());
    const ids: string[] = [];
    for (const input of inputs) {
      const res = await server.gql(CREATE, { input });
      expect(res.errors).toBeUndefined();
      expect(res.data.createPurchaseRequest.purchaseRequest.status).toBe('PENDING');
      ids.push(res.data.createPurchaseRequest.purchaseRequest.id);
    }

    const refusedInput = createInput();
    const refused = await server.gql(CREATE, { input: refusedInput });
    expect(refused.data?.createPurchaseRequest ?? null).toBeNull();
    expect(refused.errors).toHaveLength(1);
    expect(refused.errors![0]!.extensions).toMatchObject({ code: 'OVERLOADED', retryAfterMs: RETRY_AFTER_MS });
    expect(refused.errors![0]!.message).not.toMatch(/internal/i);

    // Nothing was stored for it: the same key is refused again rather than replayed.
    expect((await mine(server, server.tokens.alice)).map((r) => r.id).sort()).toEqual([...ids].sort());
    const again = await server.gql(CREATE, { input: refusedInput });
    expect(again.errors?.[0]?.extensions?.code).toBe('OVERLOADED');
    // The backlog is everyone's: another user is refused too, with the same hint.
    const bob = await server.gql(CREATE, { input: createInput() }, server.tokens.bob);
    expect(bob.errors?.[0]?.extensions).toMatchObject({ code: 'OVERLOADED', retryAfterMs: RETRY_AFTER_MS });

    // A client repeating a request it already made is never refused.
    const replay = await server.gql(CREATE, { input: inputs[0] });
    expect(replay.errors).toBeUndefined();
    expect(replay.data.createPurchaseRequest).toMatchObject({ purchaseRequest: { id: ids[0], status: 'PENDING' }, userErrors: [] });
    expect(await mine(server, server.tokens.alice)).toHaveLength(MAX_BACKLOG);

    // Room frees up: the refused request, retried with its own key, gets in (once).
    const canceled = await server.gql(CANCEL, { id: ids[1] });
    expect(canceled.data.cancelPurchaseRequest.purchaseRequest.status).toBe('CANCELED');
    const admitted = await eventually(async () => {
      const res = await server.gql(CREATE, { input: refusedInput });
      return res.errors ? null : res;
    }, 10_000, 100);
    const newId = admitted.data.createPurchaseRequest.purchaseRequest.id;
    expect(ids).not.toContain(newId);
    expect((await mine(server, server.tokens.alice)).filter((r) => r.id === newId)).toHaveLength(1);
  });
});

describe('per-user mutation limits', () => {
  const BURST = 3;
  let server: TestServer;

  beforeAll(async () => {
    // One token a minute: a spent bucket stays spent for the whole test.
    server = await startTestServer({ ENGINE: 'false', RATE_LIMIT_BURST: String(BURST), RATE_LIMIT_PER_MINUTE: '1' });
  });
  afterAll(async () => {
    await server?.close();
  });

  async function rawCreate(token: string, input: Record<string, unknown>): Promise<{ status: number; retryAfter: string | null; body: any }> {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: CREATE, variables: { input } }),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
  }

  /** One operation with `n` aliased creates. */
  function aliased(n: number): { query: string; variables: Record<string, unknown> } {
    const names = Array.from({ length: n }, (_, i) => `c${i}`);
    return {
      query: `mutation Many(${names.map((c) => `$${c}: CreatePurchaseRequestInput!`).join(', ')}) {
        ${names.map((c) => `${c}: createPurchaseRequest(input: $${c}) { purchaseRequest { id } userErrors { code } }`).join('\n')}
      }`,
      variables: Object.fromEntries(names.map((c) => [c, createInput()])),
    };
  }

  it("refuses a user's 4th mutation with RATE_LIMITED (HTTP 429, Retry-After) while another user is unaffected", async () => {
    for (let i = 0; i < BURST; i++) {
      const ok = await rawCreate(server.tokens.alice, createInput());
      expect(ok.status).toBe(200);
      expect(ok.body.errors).toBeUndefined();
    }
    const limitedInput = createInput();
    const limited = await rawCreate(server.tokens.alice, limitedInput);
    expect(limited.status).toBe(429);
    expect(limited.retryAfter).toMatch(/^\d+$/);
    expect(Number(limited.retryAfter)).toBeGreaterThan(0);
    expect(limited.body.data?.createPurchaseRequest ?? null).toBeNull();
    expect(limited.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(limited.body.errors[0].extensions.retryAfterMs).toBeGreaterThan(0);
    expect(Number(limited.retryAfter) * 1000).toBeGreaterThanOrEqual(limited.body.errors[0].extensions.retryAfterMs);
    expect(await mine(server, server.tokens.alice)).toHaveLength(BURST);

    // Reads are not limited.
    expect((await server.gql(`query { purchaseRequests(first: 1) { edges { node { id } } } }`)).errors).toBeUndefined();

    const bob = await rawCreate(server.tokens.bob, createInput());
    expect(bob.status).toBe(200);
    expect(bob.body.errors).toBeUndefined();
    expect(bob.body.data.createPurchaseRequest.purchaseRequest.status).toBe('PENDING');
  });

  it('counts every aliased root field: 5 creates in one operation cost 5, 3 cost 3', async () => {
    const carol = await server.app.auth.issue('carol', 'user');
    const five = aliased(5);
    const refused = await server.gql(five.query, five.variables, carol);
    expect(refused.status).toBe(429);
    expect(refused.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(refused.data ?? null).toBeNull();
    expect(await mine(server, carol)).toEqual([]);

    const dave = await server.app.auth.issue('dave', 'user');
    const three = aliased(3);
    const ok = await server.gql(three.query, three.variables, dave);
    expect(ok.errors).toBeUndefined();
    expect(Object.values(ok.data).map((p: any) => p.userErrors)).toEqual([[], [], []]);
    expect(await mine(server, dave)).toHaveLength(3);
    // Those three took dave's whole burst.
    const fourth = await server.gql(CREATE, { input: createInput() }, dave);
    expect(fourth.status).toBe(429);
    expect(fourth.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(await mine(server, dave)).toHaveLength(3);
  });
});
