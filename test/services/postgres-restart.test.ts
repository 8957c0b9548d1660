import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../src/partners/sandbox/fleet.js';
import { type BrokerProcess, startBrokerProcess } from '../support/broker-process.js';
import { IN_PRINT_BOOKS, createInput, usd } from '../support/fixtures.js';
import { type PostgresProcess, startPostgresProcess } from '../support/postgres-process.js';
import { type SandboxProcess, startSandboxProcess } from '../support/sandbox.js';
import { eventually, type GqlResult } from '../support/server.js';
import { FAST_ENGINE_ENV } from '../support/world.js';

/**
 * SPEC §6 / issue 12 item 4, "the same for a Postgres restart: requests in flight finish after
 * it, nothing is lost", with real processes: a broker on a Postgres cluster of this file's own,
 * stopped with `pg_ctl stop -m immediate` (every backend aborted, crash recovery on the next
 * start) while requests are being created, quoted and ordered, then started again on its port.
 * Meanwhile creates and reads go on: none is ever INTERNAL_SERVER_ERROR (a create succeeds or is
 * UNAVAILABLE with a retry hint, and is retried after the restart with the same idempotency key,
 * ending as exactly one request); every acknowledged request is ORDERED within seconds of the
 * restart, each exactly once in the sellers' ledgers; the broker lives on and is ready again.
 */

const SELLERS = ['pageturner', 'dogear', 'chapterhouse'];
const BOOKS = IN_PRINT_BOOKS.slice(0, 6);
/** Acknowledged creates, one at a time, before the load starts; Postgres goes after this many more under load. */
const BEFORE = 8;
const BURST = 6;
/** Create responses to see while Postgres is down (at least this many answered UNAVAILABLE). */
const DURING_RESPONSES = 12;
const DURING_UNAVAILABLE = 4;
/** "Within a few seconds of the restart": every acknowledged request settled this soon. */
const SETTLE_AFTER_RESTART_MS = 10_000;

const ENGINE_ENV = {
  ...FAST_ENGINE_ENV,
  // The default: failed work must come back within seconds, not at the next recheck.
  RECHECK_INTERVAL_MS: '60000',
};

const CREATE = `mutation Create($input: CreatePurchaseRequestInput!) {
  createPurchaseRequest(input: $input) { purchaseRequest { id status } userErrors { code message } }
}`;
const GET = `query Get($id: ID!) { purchaseRequest(id: $id) { id status revision } }`;
const MINE = `query Mine($after: String) {
  purchaseRequests(first: 100, after: $after) { edges { node { id status } } pageInfo { hasNextPage endCursor } }
}`;

let sandbox: SandboxProcess;
let pg: PostgresProcess;
let broker: BrokerProcess;

beforeAll(async () => {
  sandbox = await startSandboxProcess({ seed: 1, latencyScale: 0.2 });
  pg = await startPostgresProcess();
  broker = await startBrokerProcess({
    ...ENGINE_ENV,
    DATABASE_URL: pg.url,
    // A deployment of its own on a shared TEST_REDIS_URL (the broker process takes it from the environment).
    REDIS_PREFIX: `test-${randomBytes(6).toString('hex')}:`,
  });
  for (const key of SELLERS) {
    const input = sandbox.sellers.find((s) => s.baseUrl.endsWith(`/${key}`))!;
    const res = await broker.gql(
      `mutation($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { code message } } }`,
      { input },
      broker.tokens.admin,
    );
    if (!res.data?.upsertSeller?.seller) throw new Error(`upsertSeller ${key} failed: ${JSON.stringify(res.errors ?? res.data)}`);
    // Plenty of copies, and counted: ordering needs the shared inventory guard.
    for (const isbn of BOOKS) await sandbox.setInventory(key, isbn, 100);
  }
}, 90_000);
afterAll(async () => {
  await broker?.stop();
  await pg?.cleanup();
  await sandbox?.stop();
});

describe('Postgres stopped (-m immediate) and started again under load', () => {
  /** Every response the broker gave during the test, for the assertions that span them all. */
  const responses: Array<GqlResult<any>> = [];
  const gql = async (query: string, variables?: Record<string, unknown>) => {
    const res = await broker.gql(query, variables);
    responses.push(res);
    return res;
  };
  /** Requests whose create was acknowledged (an id came back). */
  const acknowledged: string[] = [];
  /** Creates answered UNAVAILABLE: retried after the restart with the same input and key. */
  const refused: Array<Record<string, unknown>> = [];
  const keys = new Set<string>();

  function expectUnavailable(res: GqlResult<any>, what: string): void {
    const error = res.errors?.[0];
    expect(error?.extensions?.code, `${what} answered ${JSON.stringify(res.errors ?? res.data)}`).toBe('UNAVAILABLE');
    expect(error!.extensions!.retryAfterMs).toEqual(expect.any(Number));
  }

  /** One create (and a read of what it created): acknowledged, or refused with UNAVAILABLE. */
  async function createOnce(i: number): Promise<'acknowledged' | 'refused'> {
    const input = createInput({ book: { isbn: BOOKS[i % BOOKS.length] }, maxTotalPrice: usd(20_000) });
    keys.add(input.idempotencyKey as string);
    const res = await gql(CREATE, { input });
    const id = res.data?.createPurchaseRequest?.purchaseRequest?.id as string | undefined;
    if (!id) {
      expectUnavailable(res, 'create');
      refused.push(input);
      return 'refused';
    }
    acknowledged.push(id);
    const read = await gql(GET, { id });
    // A read may itself meet the outage: UNAVAILABLE then, never a masked error.
    if (read.errors) expectUnavailable(read, 'read');
    else expect(read.data?.purchaseRequest?.id).toBe(id);
    return 'acknowledged';
  }

  async function statuses(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let after: string | null = null;
    for (;;) {
      const res: GqlResult<any> = await gql(MINE, { after });
      if (res.errors) throw new Error(`listing answered ${JSON.stringify(res.errors)}`);
      const page = res.data.purchaseRequests;
      for (const e of page.edges) out.set(e.node.id, e.node.status);
      if (!page.pageInfo.hasNextPage) return out;
      after = page.pageInfo.endCursor;
    }
  }

  it('keeps answering while Postgres is down and settles every acknowledged request within seconds of the restart, each ordered once', async () => {
    let i = 0;
    while (acknowledged.length < BEFORE) expect(await createOnce(i++)).toBe('acknowledged');

    // Three clients create (and read) from here until after the restart: creates are in flight
    // as Postgres goes, and as it comes back (refusing connections during crash recovery).
    let phase: 'load' | 'done' = 'load';
    let failure: unknown = null;
    let stoppedAt = Number.POSITIVE_INFINITY;
    let restartedAt = Number.POSITIVE_INFINITY;
    let acknowledgedAfterRestart = 0;
    /** Outcomes of creates sent after Postgres was down. */
    const duringOutage: Array<'acknowledged' | 'refused'> = [];
    const client = async () => {
      try {
        while (phase === 'load') {
          const sent = Date.now();
          const outcome = await createOnce(i++);
          if (sent >= restartedAt) acknowledgedAfterRestart += outcome === 'acknowledged' ? 1 : 0;
          else if (sent >= stoppedAt) duringOutage.push(outcome);
        }
      } catch (e) {
        // The broker's own last words say why (a crash ends its connections: "fetch failed").
        failure ??= new Error(`a client failed: ${String(e)}\n--- broker output ---\n${broker.output()}`, { cause: e });
        phase = 'done';
      }
    };
    const clients = Promise.all([client(), client(), client()]);
    /** Polls `probe` until true; a client's failed assertion ends the wait at once. */
    const until = async (probe: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (failure) throw failure;
        if (await probe()) return;
        if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    // Requests are in rounds and orders when Postgres goes: some acknowledged ones not yet ORDERED.
    let inFlight = 0;
    await until(async () => {
      if (acknowledged.length < BEFORE + BURST) return false;
      const now = await statuses();
      inFlight = acknowledged.filter((id) => now.get(id) !== 'ORDERED').length;
      return inFlight > 0;
    }, 'requests in flight under load');
    await pg.stop({ mode: 'immediate' });
    stoppedAt = Date.now();

    await until(
      () => duringOutage.length >= DURING_RESPONSES && duringOutage.filter((o) => o === 'refused').length >= DURING_UNAVAILABLE,
      'creates answered while Postgres is down',
    );
    // Reads of requests acknowledged before the outage: UNAVAILABLE, not masked.
    for (const id of acknowledged.slice(0, 3)) {
      const read = await gql(GET, { id });
      if (read.errors) expectUnavailable(read, 'read during the outage');
    }

    await pg.start();
    const back = Date.now();
    restartedAt = back;
    // The clients go on until creates are acknowledged again.
    await until(() => acknowledgedAfterRestart >= 3, 'creates acknowledged after the restart', SETTLE_AFTER_RESTART_MS);
    phase = 'done';
    await clients;
    if (failure) throw failure;

    // A client retries each refused create with its own key: each becomes exactly one request.
    const retried = new Map<string, string>();
    for (const input of refused) {
      let id: string | undefined;
      while (!id) {
        const res = await gql(CREATE, { input });
        id = res.data?.createPurchaseRequest?.purchaseRequest?.id as string | undefined;
        if (!id) {
          expectUnavailable(res, 'create retried after the restart');
          expect(Date.now() - back, 'creates still refused this long after the restart').toBeLessThan(SETTLE_AFTER_RESTART_MS);
          // Paced as a client honouring the hint would be.
          await new Promise((r) => setTimeout(r, res.errors![0]!.extensions!.retryAfterMs as number));
        }
      }
      retried.set(input.idempotencyKey as string, id);
    }
    const all = [...new Set([...acknowledged, ...retried.values()])];
    expect(all).toHaveLength(acknowledged.length + refused.length);

    let last = new Map<string, string>();
    try {
      await eventually(async () => {
        last = await statuses();
        return all.every((id) => last.get(id) === 'ORDERED');
      }, back + SETTLE_AFTER_RESTART_MS - Date.now(), 100);
    } catch {
      const stuck = all.filter((id) => last.get(id) !== 'ORDERED').map((id) => [id, last.get(id)]);
      throw new Error(
        `${stuck.length} of ${all.length} requests not ORDERED within ${SETTLE_AFTER_RESTART_MS} ms of the restart: ${JSON.stringify(stuck)}\n${broker.output()}`,
      );
    }
    const settledAfterMs = Date.now() - back;
    expect(settledAfterMs).toBeLessThan(SETTLE_AFTER_RESTART_MS);

    // Nothing else was created: one request per idempotency key the client ever sent.
    expect(last.size).toBe(keys.size);

    // The broker lived through it, and says it is ready again.
    const ready = await eventually(async () => {
      const res = await fetch(`${broker.url}/readyz`);
      await res.arrayBuffer();
      return res.status === 200;
    }, 5_000, 50);
    expect(ready).toBe(true);

    // Never a masked error, whatever the operation.
    const masked = responses.flatMap((r) => r.errors ?? []).filter((e) => e.extensions?.code === 'INTERNAL_SERVER_ERROR');
    expect(masked).toEqual([]);

    // Each ordered exactly once, in the sellers' own ledgers.
    const ledger: LedgerEntry[] = await sandbox.ledger();
    const byRequest = new Map<string, LedgerEntry[]>();
    for (const e of ledger) byRequest.set(e.requestId!, [...(byRequest.get(e.requestId!) ?? []), e]);
    for (const id of all) expect(byRequest.get(id)?.map((e) => `${e.sellerKey}:${e.orderId}`), `orders for ${id}`).toHaveLength(1);
    expect([...byRequest.keys()].sort()).toEqual([...all].sort());

    console.info(
      `postgres restart: ${inFlight} requests in flight at the stop; ${refused.length} creates answered UNAVAILABLE and retried; ` +
        `all ${all.length} requests ORDERED ${settledAfterMs} ms after the restart`,
    );
  }, 120_000);
});
