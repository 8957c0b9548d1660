import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, rowsOf } from '../src/db/client.js';
import { type BrokerProcess, startBrokerProcess } from './support/broker-process.js';
import { WATCH } from './support/fixtures.js';
import { bearer, rawSocket, terminateRawSockets } from './support/raw-socket.js';
import { type SandboxProcess, startSandboxProcess } from './support/sandbox.js';
import { eventually, freshDatabase, untilRequest } from './support/server.js';

/**
 * SPEC §11 on the storage the suite runs on (embedded PGlite, or Postgres in CI): a broker process
 * told to stop (SIGTERM or SIGINT) while it has work in flight exits 0 within SHUTDOWN_GRACE_MS
 * with a last "stopped" line. The order call under way is finished, requests in a round are
 * handed back at once (no lease left behind for another process to wait out), and subscribers
 * are told to reconnect. A second signal ends it at once.
 */

const SELLER = 'pageturner';
const GRACE_MS = 8_000;
/** The seller's timeout: above every held answer, so nothing in this file ends by a timeout. */
const SELLER_TIMEOUT_MS = 30_000;
/** The partner holds its answer to the order this long: the broker is told to stop meanwhile. */
const ORDER_ANSWER_DELAY_MS = 3_000;
/** Quotes held far longer than the grace: only handing them back lets the broker exit in time. */
const QUOTE_ANSWER_DELAY_MS = 25_000;

const ENV = {
  ENGINE: 'true',
  ENGINE_POLL_MS: '50',
  // A lease nobody waits out in this file: whatever is left leased would stay so for a minute.
  ENGINE_LEASE_MS: '60000',
  RECONCILE_INTERVAL_MS: '200',
  IMPROVEMENT_WINDOW_MS: '0',
  SHUTDOWN_GRACE_MS: String(GRACE_MS),
  LOG_LEVEL: 'info',
};

const CREATE = `mutation Create($input: CreatePurchaseRequestInput!) {
  createPurchaseRequest(input: $input) { purchaseRequest { id } userErrors { code message } }
}`;
const REQUEST = `query Request($id: ID!) { purchaseRequest(id: $id) { id status } }`;

let sandbox: SandboxProcess;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: Record<string, string>;
let broker: BrokerProcess | null = null;

beforeAll(async () => {
  sandbox = await startSandboxProcess({ seed: 1, latencyScale: 0 });
  db = await freshDatabase();
  env = { ...ENV, ...db.env };
  broker = await startBrokerProcess(env);
  const input = sandbox.sellers.find((s) => s.baseUrl.endsWith(`/${SELLER}`))!;
  const res = await broker.gql(
    `mutation($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { code message } } }`,
    { input: { ...input, timeoutMs: SELLER_TIMEOUT_MS, offerTtlSeconds: 0 } },
    broker.tokens.admin,
  );
  if (!res.data?.upsertSeller?.seller) throw new Error(`upsertSeller failed: ${JSON.stringify(res.errors ?? res.data)}`);
});
afterEach(() => terminateRawSockets());
afterAll(async () => {
  await broker?.stop();
  await sandbox?.stop();
  await db?.drop();
});

function live(): BrokerProcess {
  if (!broker) throw new Error('no broker running');
  return broker;
}

/** A broker on this file's storage: the one running, or a new one with `extra` on top of the file's env. */
async function running(extra: Record<string, string> = {}): Promise<BrokerProcess> {
  broker ??= await startBrokerProcess({ ...env, ...extra });
  return broker;
}

async function stocked(isbn: string): Promise<string> {
  await sandbox.setInventory(SELLER, isbn, 5, 'new');
  await sandbox.setPrice(SELLER, isbn, 1000, 'new');
  return isbn;
}

async function create(isbn: string): Promise<string> {
  const input = {
    idempotencyKey: `shutdown-${process.pid}-${Date.now()}-${isbn}`,
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

async function ordersFor(id: string) {
  return (await sandbox.ledger()).filter((e) => e.requestId === id);
}

/** The rows themselves, read with no broker running: status, lease and due time. */
async function rowsAfterExit(ids: string[]): Promise<Map<string, { status: string; leaseOwner: string | null; nextRunAt: Date | null }>> {
  const database = await openDatabase({ url: db.env.DATABASE_URL, dataDir: db.env.DATA_DIR ?? 'memory://' });
  try {
    const result = await database.db.execute(
      sql`select id, status, lease_owner, next_run_at from purchase_requests where id = any(array(select x::uuid from jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb) as x))`,
    );
    const rows = rowsOf<{ id: string; status: string; lease_owner: string | null; next_run_at: string | Date | null }>(result);
    return new Map(rows.map((r) => [r.id, { status: r.status, leaseOwner: r.lease_owner, nextRunAt: r.next_run_at === null ? null : new Date(r.next_run_at) }]));
  } finally {
    await database.close();
  }
}

/** An order attempt's hold, read with no broker running. */
async function attemptAfterExit(requestId: string): Promise<{ state: string; leaseOwner: string | null; leaseExpiresAt: Date | null; nextCheckAt: Date | null }> {
  const database = await openDatabase({ url: db.env.DATABASE_URL, dataDir: db.env.DATA_DIR ?? 'memory://' });
  try {
    const result = await database.db.execute(
      sql`select state, lease_owner, lease_expires_at, next_check_at from order_attempts where request_id = ${requestId}::uuid`,
    );
    const [row] = rowsOf<{ state: string; lease_owner: string | null; lease_expires_at: string | Date | null; next_check_at: string | Date | null }>(result);
    if (!row) throw new Error(`no attempt for request ${requestId}`);
    const at = (v: string | Date | null) => (v === null ? null : new Date(v));
    return { state: row.state, leaseOwner: row.lease_owner, leaseExpiresAt: at(row.lease_expires_at), nextCheckAt: at(row.next_check_at) };
  } finally {
    await database.close();
  }
}

/** The process's JSON log lines (pino), in order. */
function logLines(output: string): Array<{ level: number; msg: string; [k: string]: unknown }> {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return []; // the first line of the kept tail may be cut
      }
    });
}

describe('a broker process told to stop with work in flight', () => {
  it('exits 0 within its grace: the order under way is finished, rounds are handed back, subscribers told to reconnect', { timeout: 90_000 }, async () => {
    const [orderBook, ...roundBooks] = await Promise.all(['9780141439518', '9780451524935', '9780061120084', '9780743273565'].map(stocked));

    // One request with its order call held at the partner (placed on arrival, answered later)…
    await sandbox.configure(SELLER, { script: [{ endpoint: 'order', fault: 'slow', ms: ORDER_ANSWER_DELAY_MS }] });
    const ordering = await create(orderBook!);
    await eventually(async () => (await ordersFor(ordering)).length === 1, 15_000);
    expect((await request(ordering)).status).toBe('ORDERING');

    // …and three in a round whose quotes are held far longer than the grace.
    const before = (await sandbox.stats())[SELLER]!;
    await sandbox.configure(SELLER, { script: roundBooks.map(() => ({ endpoint: 'quote', fault: 'slow', ms: QUOTE_ANSWER_DELAY_MS })) });
    const searching = await Promise.all(roundBooks.map((isbn) => create(isbn!)));
    await eventually(async () => (await sandbox.stats())[SELLER]!.quote >= before.quote + roundBooks.length, 15_000);

    const socket = rawSocket(`${live().url.replace(/^http/, 'ws')}/graphql`);
    await socket.init(bearer(live().tokens.alice));
    await socket.subscribe('watch', WATCH, { id: ordering });

    const signalled = Date.now();
    const exit = await live().terminate('SIGTERM', GRACE_MS + 10_000);
    const tookMs = Date.now() - signalled;
    broker = null;

    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    const lines = logLines(exit.output);
    expect(lines.at(-1)?.msg).toBe('stopped');
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    // Within SHUTDOWN_GRACE_MS, with a little room for the process's own start of the stop.
    expect(tookMs).toBeLessThan(GRACE_MS + 2_000);
    // 1012 Service Restart: graphql-ws clients retry it (1000-range codes other than these are fatal to them).
    expect((await socket.closed).code).toBe(1012);

    const rows = await rowsAfterExit([ordering, ...searching]);
    // The order under way was finished, once, before the process exited.
    expect(rows.get(ordering)).toMatchObject({ status: 'ORDERED', leaseOwner: null });
    expect(await ordersFor(ordering)).toHaveLength(1);
    // The rounds were handed back: no lease for another process to wait out, due now.
    for (const id of searching) {
      const row = rows.get(id)!;
      expect(row.leaseOwner).toBeNull();
      expect(row.nextRunAt!.getTime()).toBeLessThanOrEqual(Date.now());
    }
    // Their quote calls were cut off, not waited for.
    await eventually(async () => ((await sandbox.stats())[SELLER]!.byStatus.abandoned ?? 0) >= (before.byStatus.abandoned ?? 0) + roundBooks.length, 5_000);

    // Nothing was lost: the next process finishes the rounds it was handed.
    broker = await startBrokerProcess(env);
    for (const id of searching) await untilRequest(id, request, (r) => r.status === 'ORDERED', 20_000);
    for (const id of [ordering, ...searching]) expect(await ordersFor(id)).toHaveLength(1);
  });

  it('exits 0 when its grace ends first: the request is handed back, the attempt held only until its call must have ended', { timeout: 60_000 }, async () => {
    const grace = 1_000;
    await running({ SHUTDOWN_GRACE_MS: String(grace) });
    const isbn = await stocked('9780316769488');
    // An order call the partner answers long after the grace.
    await sandbox.configure(SELLER, { script: [{ endpoint: 'order', fault: 'slow', ms: QUOTE_ANSWER_DELAY_MS }] });
    const id = await create(isbn);
    await eventually(async () => (await ordersFor(id)).length === 1, 15_000);

    const signalled = Date.now();
    const exit = await live().terminate('SIGTERM', grace + 10_000);
    broker = null;
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    const lines = logLines(exit.output);
    expect(lines.at(-1)?.msg).toBe('stopped');
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.map((l) => l.msg)).toContain('work still running at the end of the shutdown grace was handed back');

    expect((await rowsAfterExit([id])).get(id)).toMatchObject({ status: 'ORDERING', leaseOwner: null });
    // The order may still be being answered, so the attempt is not free at once (a second order
    // call would race the first); but it is held only until that call's own deadline, the
    // seller's timeout, and not for the lease and timeout the driver took (70 s from the call).
    const attempt = await attemptAfterExit(id);
    // The row holds the attempt's last write: its start (the authorisation is carried to the next
    // write, which the cut-short drive never made); resuming authorises and orders with the same key.
    expect(attempt.state).toBe('authorizing');
    expect(attempt.leaseExpiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + SELLER_TIMEOUT_MS);
    expect(attempt.leaseExpiresAt!.getTime()).toBeGreaterThanOrEqual(signalled + SELLER_TIMEOUT_MS - 1_000);
    expect(attempt.nextCheckAt).toEqual(attempt.leaseExpiresAt);
  });

  it('exits at once on a second signal', { timeout: 60_000 }, async () => {
    const b = await running();
    const isbn = await stocked('9780142437247');
    await sandbox.configure(SELLER, { script: [{ endpoint: 'order', fault: 'slow', ms: QUOTE_ANSWER_DELAY_MS }] });
    const id = await create(isbn);
    await eventually(async () => (await ordersFor(id)).length === 1, 15_000);

    process.kill(b.pid, 'SIGINT');
    await eventually(async () => logLines(b.output()).some((l) => l.msg === 'shutting down'), 10_000);
    // The order held at the partner keeps the first stop waiting; the second signal does not wait.
    const exit = await b.terminate('SIGINT', 10_000);
    broker = null;
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 1, signal: null });
    expect(logLines(exit.output).map((l) => l.msg)).not.toContain('stopped');
  });
});
