import { GET, createInput, usd } from './fixtures.js';
import { type SandboxProcess, startSandboxProcess } from './sandbox.js';
import { type TestServer, startTestServer, untilRequest } from './server.js';

/** Engine settings that keep end-to-end engine tests quick; suites override what they test. */
export const FAST_ENGINE_ENV: Record<string, string> = {
  ENGINE: 'true',
  SANDBOX: 'off',
  ENGINE_POLL_MS: '50',
  ENGINE_LEASE_MS: '3000',
  RECONCILE_INTERVAL_MS: '200',
  ORDER_RETRY_BACKOFF_MS: '50,100,200',
  IMPROVEMENT_WINDOW_MS: '0',
};

export interface WorldSeller {
  /** Sandbox seller key: pageturner, inkwell, novella (tier 1), dogear, chapterhouse, foliofox (2), oldbindery, remainders (3). */
  key: string;
  tier?: number;
  offerTtlSeconds?: number;
  timeoutMs?: number;
  maxConcurrency?: number;
  /** Whether the broker trusts the seller's price check at order time; absent: as the sandbox registers it (true). */
  orderChecksPrice?: boolean;
}

export interface World {
  server: TestServer;
  sandbox: SandboxProcess;
  /** Broker seller id per sandbox key, for the sellers registered. */
  sellerIds: Record<string, string>;
  /** Creates a request (alice by default) and returns its id; fails the test on userErrors. */
  create(overrides?: Record<string, unknown>, token?: string): Promise<string>;
  /** The request as the API shows it (REQUEST_FIELDS plus attempts). */
  get(id: string, token?: string): Promise<any>;
  /** The request through a suite's own `query Q($id: ID!) { purchaseRequest(id: $id) { … } }` (as alice). */
  detail(id: string, query: string): Promise<any>;
  /**
   * Polls the request until `predicate` holds, failing with its last state after the deadline;
   * read with `get`, or with `detail` and the given query.
   */
  until(id: string, predicate: (r: any) => boolean, timeoutMs?: number, query?: string): Promise<any>;
  close(): Promise<void>;
}

const GET_WITH_ATTEMPTS = GET.replace(
  'purchaseRequest(id: $id) {',
  'purchaseRequest(id: $id) { attempts { attemptNo state paymentState sellerOrderId failure needsAttention seller { id name } offer { total { cents } } }',
);

/**
 * A broker with its engine on, and a sandbox fleet in its own process whose chosen sellers are
 * registered through upsertSeller like any partner. Everything the engine does is observable
 * through the API, the sandbox's counters and ledger, and the payment ledger.
 */
export async function startWorld(
  o: { sellers?: WorldSeller[]; env?: Record<string, string>; latencyScale?: number; seed?: number } = {},
): Promise<World> {
  const sandbox = await startSandboxProcess({ seed: o.seed ?? 1, latencyScale: o.latencyScale ?? 0 });
  let server: TestServer;
  try {
    server = await startTestServer({ ...FAST_ENGINE_ENV, ...o.env });
  } catch (e) {
    await sandbox.stop();
    throw e;
  }
  const wanted: WorldSeller[] = o.sellers ?? sandbox.sellers.map((s) => ({ key: s.baseUrl.split('/').pop()! }));
  const sellerIds: Record<string, string> = {};
  for (const w of wanted) {
    const input = sandbox.sellers.find((s) => s.baseUrl.endsWith(`/${w.key}`));
    if (!input) throw new Error(`no sandbox seller ${w.key}`);
    const res = await server.gql(
      `mutation($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { field code message } } }`,
      {
        input: {
          ...input,
          ...(w.tier !== undefined ? { tier: w.tier } : {}),
          ...(w.offerTtlSeconds !== undefined ? { offerTtlSeconds: w.offerTtlSeconds } : {}),
          ...(w.timeoutMs !== undefined ? { timeoutMs: w.timeoutMs } : {}),
          ...(w.maxConcurrency !== undefined ? { maxConcurrency: w.maxConcurrency } : {}),
          ...(w.orderChecksPrice !== undefined ? { orderChecksPrice: w.orderChecksPrice } : {}),
        },
      },
      server.tokens.admin,
    );
    const payload = res.data?.upsertSeller;
    if (!payload?.seller) throw new Error(`upsertSeller ${w.key} failed: ${JSON.stringify(res.errors ?? payload?.userErrors)}`);
    sellerIds[w.key] = payload.seller.id;
  }

  const world: World = {
    server,
    sandbox,
    sellerIds,
    async create(overrides = {}, token = server.tokens.alice) {
      const res = await server.gql(
        `mutation($input: CreatePurchaseRequestInput!) { createPurchaseRequest(input: $input) { purchaseRequest { id } userErrors { field code message } } }`,
        { input: createInput(overrides) },
        token,
      );
      const p = res.data?.createPurchaseRequest;
      if (!p?.purchaseRequest) throw new Error(`create failed: ${JSON.stringify(res.errors ?? p?.userErrors)}`);
      return p.purchaseRequest.id as string;
    },
    async get(id, token = server.tokens.alice) {
      const res = await server.gql(GET_WITH_ATTEMPTS, { id }, token);
      if (res.errors) throw new Error(JSON.stringify(res.errors));
      return res.data.purchaseRequest;
    },
    async detail(id, query) {
      const res = await server.gql(query, { id });
      if (res.errors) throw new Error(JSON.stringify(res.errors));
      return res.data.purchaseRequest;
    },
    until(id, predicate, timeoutMs = 15_000, query) {
      return untilRequest(id, (x) => (query === undefined ? world.get(x) : world.detail(x, query)), predicate, timeoutMs);
    },
    async close() {
      await server.close();
      await sandbox.stop();
    },
  };
  return world;
}

/** Total quote calls per sandbox seller key. */
export async function quoteCalls(sandbox: SandboxProcess): Promise<Record<string, number>> {
  const stats = await sandbox.stats();
  return Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.quote]));
}

/**
 * `create(isbn, maxCents, extra)` for a suite's requests, remembering each one so that
 * `cancelAll` (after each test) cancels them with `cancelQuery` and none keeps watching.
 */
export function trackedRequests(world: () => World, cancelQuery: string) {
  let created: string[] = [];
  return {
    async create(isbn: string, maxCents: number, extra: Record<string, unknown> = {}): Promise<string> {
      const id = await world().create({ book: { isbn }, maxTotalPrice: usd(maxCents), ...extra });
      created.push(id);
      return id;
    },
    async cancelAll(): Promise<void> {
      for (const id of created) await world().server.gql(cancelQuery, { id });
      created = [];
    },
  };
}
