import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../src/partners/sandbox/fleet.js';
import { type BrokerProcess, type Exit, startBrokerProcess } from '../support/broker-process.js';
import { type SandboxProcess, startSandboxProcess } from '../support/sandbox.js';
import { eventually, freshDatabase, untilRequest } from '../support/server.js';

/**
 * A rolling deploy (SPEC §11) on one Postgres and Redis: instance A has work in flight, is sent
 * SIGTERM, and exits 0; instance B finishes every request A had. The lease is a minute
 * (ENGINE_LEASE_MS) and every test ends well before it: B can only finish in time because A handed
 * its work back instead of leaving its leases to lapse. The partner holds A's calls longer than
 * B is given, so B's answers are its own calls', not A's.
 */

const LEASE_MS = 60_000;
const ENV = {
  ENGINE: 'true',
  ENGINE_POLL_MS: '250',
  ENGINE_LEASE_MS: String(LEASE_MS),
  RECONCILE_INTERVAL_MS: '200',
  IMPROVEMENT_WINDOW_MS: '0',
  LOG_LEVEL: 'info',
};

const CREATE = `mutation Create($input: CreatePurchaseRequestInput!) {
  createPurchaseRequest(input: $input) { purchaseRequest { id } userErrors { code message } }
}`;
const REQUEST = `query Request($id: ID!) { purchaseRequest(id: $id) { id status events { type } } }`;
const LEDGER = `query Ledger($id: ID!) { paymentLedger(requestId: $id) { key operation effective } }`;
const UPSERT = `mutation($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { code message } } }`;

let sandbox: SandboxProcess;
beforeAll(async () => {
  if (!process.env.TEST_REDIS_URL) throw new Error('TEST_REDIS_URL must be set for the rolling-deploy suite (instances share Redis)');
  sandbox = await startSandboxProcess({ seed: 1, latencyScale: 0 });
});
afterAll(async () => {
  await sandbox?.stop();
});

/** One deployment: a database, instance A (started here) and B (started when a test says). */
function deployment(seller: string, sellerTimeoutMs: number, graceMs: number) {
  const d = {
    db: null as Awaited<ReturnType<typeof freshDatabase>> | null,
    env: {} as Record<string, string>,
    a: null as BrokerProcess | null,
    b: null as BrokerProcess | null,
  };
  beforeAll(async () => {
    d.db = await freshDatabase();
    d.env = { ...ENV, SHUTDOWN_GRACE_MS: String(graceMs), ...d.db.env };
    d.a = await startBrokerProcess(d.env);
    const input = sandbox.sellers.find((s) => s.baseUrl.endsWith(`/${seller}`))!;
    const res = await d.a.gql(UPSERT, { input: { ...input, timeoutMs: sellerTimeoutMs, offerTtlSeconds: 0 } }, d.a.tokens.admin);
    if (!res.data?.upsertSeller?.seller) throw new Error(`upsertSeller failed: ${JSON.stringify(res.errors ?? res.data)}`);
  });
  afterAll(async () => {
    await d.a?.stop();
    await d.b?.stop();
    await d.db?.drop();
  });
  return d;
}

async function stock(seller: string, isbns: string[]): Promise<void> {
  for (const isbn of isbns) {
    await sandbox.setInventory(seller, isbn, 5, 'new');
    await sandbox.setPrice(seller, isbn, 1000, 'new');
  }
}

async function create(broker: BrokerProcess, isbn: string): Promise<string> {
  const input = {
    idempotencyKey: `deploy-${process.pid}-${Date.now()}-${isbn}`,
    book: { isbn },
    maxTotalPrice: { cents: 5000, currency: 'USD' },
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    shippingAddress: { name: 'Ada Lovelace', line1: '1 Main St', city: 'Springfield', postalCode: '12345', country: 'US' },
    paymentToken: 'tok_visa',
  };
  const res = await broker.gql(CREATE, { input });
  const p = res.data?.createPurchaseRequest;
  if (!p?.purchaseRequest) throw new Error(`create failed: ${JSON.stringify(res.errors ?? p?.userErrors)}`);
  return p.purchaseRequest.id;
}

function reader(broker: BrokerProcess) {
  return async (id: string): Promise<any> => {
    const res = await broker.gql(REQUEST, { id });
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return res.data.purchaseRequest;
  };
}

async function ordersFor(id: string): Promise<LedgerEntry[]> {
  return (await sandbox.ledger()).filter((e) => e.requestId === id);
}

/** Exit 0, and the last log line says it stopped. */
function expectCleanExit(exit: Exit): void {
  expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
  const last = exit.output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  expect(last && JSON.parse(last).msg).toBe('stopped');
}

describe('SIGTERM to an instance with rounds in flight', () => {
  const SELLER = 'pageturner';
  // Quotes held far longer than B is given to finish, and no timeout ends them sooner.
  const QUOTE_HOLD_MS = 25_000;
  const d = deployment(SELLER, 30_000, 3_000);
  const BOOKS = ['9780141439518', '9780451524935', '9780061120084', '9780743273565', '9780142437247', '9780316769488'];

  it('hands them back: the other instance finishes every request within seconds, each ordered once', { timeout: LEASE_MS - 10_000 }, async () => {
    await stock(SELLER, BOOKS);
    const before = (await sandbox.stats())[SELLER]!;
    await sandbox.configure(SELLER, { script: BOOKS.map(() => ({ endpoint: 'quote', fault: 'slow', ms: QUOTE_HOLD_MS })) });
    const a = d.a!;
    const ids: string[] = [];
    for (const isbn of BOOKS) ids.push(await create(a, isbn));
    // Every round is A's, its quote held at the partner, before B exists.
    await eventually(async () => (await sandbox.stats())[SELLER]!.quote >= before.quote + BOOKS.length, 15_000);
    for (const id of ids) expect((await reader(a)(id)).status).toBe('SEARCHING');

    d.b = await startBrokerProcess(d.env);
    const b = d.b;
    expect((await sandbox.stats())[SELLER]!.quote).toBe(before.quote + BOOKS.length);

    const exit = await a.terminate('SIGTERM');
    d.a = null;
    expectCleanExit(exit);
    const exited = Date.now();

    // Well before A's held quotes would answer, and far before its leases would lapse.
    for (const id of ids) await untilRequest(id, reader(b), (r) => r.status === 'ORDERED', Math.max(1_000, exited + 10_000 - Date.now()));
    for (const id of ids) {
      expect(await ordersFor(id)).toHaveLength(1);
      const r = await reader(b)(id);
      expect(r.events.filter((e: { type: string }) => e.type === 'ORDERED')).toHaveLength(1);
    }
    // A's calls were cut off when it handed its rounds back.
    await eventually(async () => ((await sandbox.stats())[SELLER]!.byStatus.abandoned ?? 0) === (before.byStatus.abandoned ?? 0) + BOOKS.length, 5_000);
  });
});

describe('SIGTERM to an instance with an order call in flight past its grace', () => {
  const SELLER = 'novella';
  const SELLER_TIMEOUT_MS = 8_000;
  // Longer than B takes to start and A's grace: the call is still in flight when A exits.
  const ORDER_HOLD_MS = 7_000;
  const d = deployment(SELLER, SELLER_TIMEOUT_MS, 1_000);
  const BOOKS = ['9780060850524', '9780547928227'];

  it('is resumed by the other instance once the call must have ended, with the same key: one order, one capture', { timeout: LEASE_MS - 10_000 }, async () => {
    await stock(SELLER, BOOKS);
    await sandbox.configure(SELLER, { script: BOOKS.map(() => ({ endpoint: 'order', fault: 'slow', ms: ORDER_HOLD_MS })) });
    const a = d.a!;
    const ids: string[] = [];
    for (const isbn of BOOKS) ids.push(await create(a, isbn));
    // The partner placed each order as it arrived and holds its answer.
    await eventually(async () => (await Promise.all(ids.map(ordersFor))).every((o) => o.length === 1), 15_000);

    d.b = await startBrokerProcess(d.env);
    const b = d.b;
    for (const id of ids) expect((await reader(b)(id)).status).toBe('ORDERING');

    const exit = await a.terminate('SIGTERM');
    d.a = null;
    expectCleanExit(exit);
    const exited = Date.now();

    // The attempts were held only until A's calls must have ended (the seller's timeout), not
    // for A's whole lease: B re-sends each order with its key, and the partner answers with
    // the order it already placed.
    for (const id of ids) {
      await untilRequest(id, reader(b), (r) => r.status === 'ORDERED', Math.max(1_000, exited + SELLER_TIMEOUT_MS + 10_000 - Date.now()));
    }
    for (const id of ids) {
      const orders = await ordersFor(id);
      expect(orders).toHaveLength(1);
      expect(orders[0]!.idempotencyKey).toBe(`${id}:1`);
      const ledger = await b.gql(LEDGER, { id }, b.tokens.admin);
      expect(ledger.errors).toBeUndefined();
      const effective = (op: string) => ledger.data.paymentLedger.filter((c: { operation: string; effective: boolean }) => c.operation === op && c.effective);
      expect(effective('capture')).toHaveLength(1);
      expect(effective('authorize')).toHaveLength(1);
    }
  });
});
