import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../src/partners/sandbox/fleet.js';
import { type BrokerProcess, startBrokerProcess } from './support/broker-process.js';
import { type SandboxProcess, startSandboxProcess } from './support/sandbox.js';
import { eventually, freshDatabase, untilRequest } from './support/server.js';
import { FAST_ENGINE_ENV } from './support/world.js';

/**
 * SPEC §4 across crashes: the broker is killed outright (SIGKILL: no shutdown, no cleanup)
 * while an order call is in flight, then started again on the same storage. The new process
 * must finish the attempt from its durable row — one order at the partner, one capture.
 */

const SELLER = 'pageturner';
/** The partner's answer to the order call is held this long: the broker is killed meanwhile. */
const ORDER_ANSWER_DELAY_MS = 2_500;
/** Longer than the held answer, so without a crash the slow order would simply succeed. */
const SELLER_TIMEOUT_MS = 3_000;

const ENGINE_ENV = {
  ...FAST_ENGINE_ENV,
  ENGINE_LEASE_MS: '1000',
};

const REQUEST = `query Request($id: ID!) {
  purchaseRequest(id: $id) {
    id status failureReason
    order { sellerOrderId total { cents } }
    events { type status message }
    attempts { attemptNo state paymentState sellerOrderId failure lastError }
  }
}`;
const LEDGER = `query Ledger($id: ID!) { paymentLedger(requestId: $id) { key operation amountCents result effective } }`;
const CREATE = `mutation Create($input: CreatePurchaseRequestInput!) {
  createPurchaseRequest(input: $input) { purchaseRequest { id } userErrors { code message } }
}`;

let sandbox: SandboxProcess;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: Record<string, string>;
let broker: BrokerProcess | null = null;

beforeAll(async () => {
  sandbox = await startSandboxProcess({ seed: 1, latencyScale: 0 });
  db = await freshDatabase();
  env = { ...ENGINE_ENV, ...db.env };
  broker = await startBrokerProcess(env);
  const input = sandbox.sellers.find((s) => s.baseUrl.endsWith(`/${SELLER}`))!;
  const res = await broker.gql(
    `mutation($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { code message } } }`,
    { input: { ...input, timeoutMs: SELLER_TIMEOUT_MS, offerTtlSeconds: 0 } },
    broker.tokens.admin,
  );
  if (!res.data?.upsertSeller?.seller) throw new Error(`upsertSeller failed: ${JSON.stringify(res.errors ?? res.data)}`);
});
afterAll(async () => {
  await broker?.stop();
  await sandbox?.stop();
  await db?.drop();
});

function live(): BrokerProcess {
  if (!broker) throw new Error('no broker running');
  return broker;
}

async function create(isbn: string): Promise<string> {
  const input = {
    idempotencyKey: `crash-${process.pid}-${Date.now()}-${isbn}`,
    book: { isbn },
    maxTotalPrice: { cents: 5000, currency: 'USD' },
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    shippingAddress: { name: 'Ada Lovelace', line1: '1 Main St', city: 'Springfield', postalCode: '12345', country: 'US' },
    paymentToken: 'tok_visa',
  };
  const res = await live().gql(CREATE, { input });
  const p = res.data?.createPurchaseRequest;
  if (!p?.purchaseRequest) throw new Error(`create failed: ${JSON.stringify(res.errors ?? p?.userErrors)}`);
  return p.purchaseRequest.id;
}

async function request(id: string): Promise<any> {
  const res = await live().gql(REQUEST, { id });
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data.purchaseRequest;
}

function until(id: string, predicate: (r: any) => boolean, timeoutMs = 20_000): Promise<any> {
  return untilRequest(id, request, predicate, timeoutMs);
}

async function ordersFor(id: string): Promise<LedgerEntry[]> {
  return (await sandbox.ledger()).filter((e) => e.requestId === id);
}

async function paymentLedger(id: string): Promise<Array<{ key: string; operation: string; amountCents: number | null; result: string; effective: boolean }>> {
  const res = await live().gql(LEDGER, { id }, live().tokens.admin);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data.paymentLedger;
}

/** SIGKILL the broker, then start a new one on the same storage. */
async function crashAndRestart(): Promise<void> {
  await live().kill();
  broker = null;
  broker = await startBrokerProcess(env);
}

/** The outcome every crash must still end in: one order, one capture, and a readable history. */
async function expectOrderedOnce(id: string): Promise<void> {
  const r = await until(id, (x) => x.status === 'ORDERED');
  const orders = await ordersFor(id);
  expect(orders).toHaveLength(1);
  expect(orders[0]).toMatchObject({ sellerKey: SELLER, idempotencyKey: `${id}:1` });
  expect(r.order.sellerOrderId).toBe(orders[0]!.orderId);
  expect(r.attempts).toEqual([expect.objectContaining({ attemptNo: 1, state: 'SUCCEEDED', paymentState: 'CAPTURED', sellerOrderId: orders[0]!.orderId })]);

  const payments = await paymentLedger(id);
  const effective = (op: string) => payments.filter((c) => c.operation === op && c.effective);
  expect(effective('authorize').map((c) => c.key)).toEqual([`${id}:1`]);
  expect(effective('capture')).toEqual([expect.objectContaining({ key: `${id}:1`, amountCents: orders[0]!.totalCents })]);
  expect(payments.filter((c) => c.operation === 'void')).toEqual([]);

  const types: string[] = r.events.map((e: { type: string }) => e.type);
  expect(types.filter((t) => t === 'ORDER_STARTED')).toHaveLength(1);
  expect(types.filter((t) => t === 'ORDERED')).toHaveLength(1);
  expect(types.indexOf('ORDER_STARTED')).toBeLessThan(types.indexOf('ORDERED'));
  expect(types.at(-1)).toBe('ORDERED');
}

describe('a broker killed while an order is in flight', () => {
  it('finishes an order the partner had placed when the broker died (same key, no second order, one capture)', { timeout: 60_000 }, async () => {
    const isbn = '9780141439518';
    await sandbox.setInventory(SELLER, isbn, 5, 'new');
    await sandbox.setPrice(SELLER, isbn, 1000, 'new');
    // The partner commits the order as it arrives and holds its answer: the broker dies waiting.
    await sandbox.configure(SELLER, { script: [{ endpoint: 'order', fault: 'slow', ms: ORDER_ANSWER_DELAY_MS }] });
    const before = (await sandbox.stats())[SELLER]!;

    const id = await create(isbn);
    await eventually(async () => (await ordersFor(id)).length === 1, 15_000);
    const inFlight = await request(id);
    expect(inFlight.status).toBe('ORDERING');
    // The authorisation rides on the attempt's next write (AUTHORIZING), unless the lease had run
    // short by the order call (ORDERING): either way a restart sends the same key again.
    expect(inFlight.attempts).toEqual([expect.objectContaining({ attemptNo: 1, state: expect.stringMatching(/^(AUTHORIZING|ORDERING)$/) })]);
    expect((await paymentLedger(id)).filter((c) => c.operation === 'authorize' && c.effective)).toHaveLength(1);

    await crashAndRestart();
    await expectOrderedOnce(id);

    const after = (await sandbox.stats())[SELLER]!;
    // The held answer was never delivered: the call was in flight when the broker died.
    expect(after.byStatus.abandoned ?? 0).toBe((before.byStatus.abandoned ?? 0) + 1);
  });

  it('places an order whose call never reached the partner before the broker died, exactly once', { timeout: 60_000 }, async () => {
    const isbn = '9780061120084';
    await sandbox.setInventory(SELLER, isbn, 5, 'new');
    await sandbox.setPrice(SELLER, isbn, 1500, 'new');
    // The partner holds the call without placing the order: after the crash nothing is placed yet.
    await sandbox.configure(SELLER, { script: [{ endpoint: 'order', fault: 'timeout' }] });
    const before = (await sandbox.stats())[SELLER]!;

    const id = await create(isbn);
    await eventually(async () => (await sandbox.stats())[SELLER]!.order > before.order, 15_000);
    const inFlight = await request(id);
    expect(inFlight.status).toBe('ORDERING');
    expect(inFlight.attempts).toEqual([expect.objectContaining({ attemptNo: 1, state: expect.stringMatching(/^(AUTHORIZING|ORDERING)$/) })]);
    expect(await ordersFor(id)).toEqual([]);

    await crashAndRestart();
    await expectOrderedOnce(id);

    const after = (await sandbox.stats())[SELLER]!;
    expect(after.byStatus.timeout ?? 0).toBe((before.byStatus.timeout ?? 0) + 1);
  });
});
