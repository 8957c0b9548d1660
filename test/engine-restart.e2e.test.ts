import { afterAll, beforeAll, expect, it } from 'vitest';
import { type TestServer, eventually } from './support/server.js';
import { type World, quoteCalls, startWorld } from './support/world.js';

/**
 * The engine keeps no state of its own (SPEC §3): a server restarted in the middle of a round
 * (same database) picks the request up again and finishes it, exactly once.
 */

const JANE_EYRE = '9780141441146'; // NEW: pageturner 15.43, novella 14.90, inkwell 12.11
const TIER1 = ['pageturner', 'novella', 'inkwell'];

const DETAIL = `query Detail($id: ID!) {
  purchaseRequest(id: $id) {
    id status
    order { sellerOrderId total { cents } seller { name } }
    attempts { attemptNo state }
    events { type status }
  }
}`;
const PAYMENTS = `query Payments($id: ID!) { paymentLedger(requestId: $id) { operation effective } }`;

let w: World;
let s2: TestServer | null = null;
beforeAll(async () => {
  w = await startWorld({
    sellers: TIER1.map((key) => ({ key, timeoutMs: 30_000 })),
    env: { ENGINE_LEASE_MS: '1000' },
  });
});
afterAll(async () => {
  if (!s2) return w?.close();
  // The first server is already stopped; the second owns the database now.
  await s2.close();
  await w.sandbox.stop();
});

it('resumes a request whose round was in flight when the server restarted', async () => {
  for (const k of TIER1) await w.sandbox.configure(k, { script: [{ endpoint: 'quote', fault: 'slow', ms: 20_000 }] });
  const before = await quoteCalls(w.sandbox);
  const id = await w.create({ book: { isbn: JANE_EYRE }, maxTotalPrice: { cents: 5000, currency: 'USD' } });
  await w.until(id, (r) => r.status === 'SEARCHING');
  await eventually(async () => {
    const now = await quoteCalls(w.sandbox);
    return TIER1.every((k) => now[k]! - before[k]! === 1);
  });

  s2 = await w.server.restart();
  const server = s2;
  let last: any = null;
  const r = await eventually(async () => {
    const res = await server.gql(DETAIL, { id });
    last = res.data?.purchaseRequest;
    return last && ['ORDERED', 'FAILED', 'QUOTED', 'OUT_OF_STOCK', 'EXPIRED'].includes(last.status) ? last : null;
  }, 15_000).catch(() => {
    throw new Error(`request ${id} was not resumed after the restart; last seen: ${JSON.stringify(last)}`);
  });

  expect(r.status).toBe('ORDERED');
  expect(r.attempts).toEqual([{ attemptNo: 1, state: 'SUCCEEDED' }]);
  expect(r.events.filter((e: any) => e.type === 'CREATED')).toHaveLength(1);
  expect(r.events.at(-1)).toEqual({ type: 'ORDERED', status: 'ORDERED' });
  const ledger = (await w.sandbox.ledger()).filter((e) => e.requestId === id);
  expect(ledger).toHaveLength(1);
  expect(ledger[0]!.orderId).toBe(r.order.sellerOrderId);
  const payments = await server.gql(PAYMENTS, { id }, server.tokens.admin);
  expect(payments.errors).toBeUndefined();
  const captures = payments.data.paymentLedger.filter((p: any) => p.operation === 'capture' && p.effective);
  expect(captures).toHaveLength(1);

  // The old server's calls did not linger: the sandbox saw all three abandoned.
  await eventually(async () => {
    const stats = await w.sandbox.stats();
    return TIER1.every((k) => stats[k]!.byStatus.abandoned === 1);
  }, 5_000);
});
