import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../src/partners/sandbox/fleet.js';
import { IN_PRINT_BOOKS } from './support/fixtures.js';
import { eventually } from './support/server.js';
import { type World, startWorld } from './support/world.js';

/**
 * Chaos (SPEC §4–§6): every partner fails a fifth of its calls and times out one in twenty, one
 * is down altogether, one answers asynchronously and posts half its callbacks twice — and still
 * every affordable request ends ORDERED exactly once: one order in the partners' ledgers, one
 * effective capture in the payment ledger, nothing for anyone else.
 */

const ALL = ['pageturner', 'novella', 'inkwell', 'chapterhouse', 'dogear', 'foliofox', 'oldbindery', 'remainders'];
const DOWN = 'inkwell';
const ASYNC = 'novella';
const SELLER_TIMEOUT_MS = 300;

/** Twenty in-print books across the catalog (scarce ones included), two requests each. */
const BOOKS = [
  ...IN_PRINT_BOOKS,
  '9780062316097',
  '9780132350884',
  '9780374533557',
  '9780385474542',
  '9780143035008',
  '9780679732761',
  '9780262510875',
];

const DETAIL = `query Detail($id: ID!) {
  purchaseRequest(id: $id) {
    id status failureReason
    order { sellerOrderId seller { id } total { cents } }
    attempts { attemptNo state paymentState sellerOrderId }
  }
}`;
const LEDGER = `query Ledger($id: ID!) { paymentLedger(requestId: $id) { key operation amountCents result effective } }`;
const MINE = `query Mine { purchaseRequests(first: 100) { edges { node { id status } } } }`;

let w: World;

beforeAll(async () => {
  w = await startWorld({
    sellers: ALL.map((key) => ({ key, timeoutMs: SELLER_TIMEOUT_MS })),
    env: {
      // Requests left watching after failed rounds look again soon; breakers probe again soon.
      RECHECK_INTERVAL_MS: '300',
      RECHECK_MAX_MS: '1000',
      BREAKER_HALF_OPEN_MS: '500',
    },
  });
  for (const key of ALL) {
    await w.sandbox.configure(key, { errorRate: 0.2, timeoutRate: 0.05 });
    // Plenty of copies everywhere: every request is affordable and in stock somewhere.
    for (const isbn of BOOKS) await w.sandbox.setInventory(key, isbn, 20);
  }
  await w.sandbox.configure(DOWN, { down: true });
  await w.sandbox.configure(ASYNC, { async: { quotes: true, orders: true, delayMs: 20, duplicateRate: 0.5, lateRate: 0, lateMs: 0 } });
});
afterAll(async () => {
  await w?.close();
});

describe('chaos', () => {
  it('40 requests through failing, slow, down and duplicating partners: every one ORDERED exactly once, one capture each', async () => {
    const ids: string[] = [];
    await Promise.all(
      BOOKS.flatMap((isbn) => [0, 1].map(async () => ids.push(await w.create({ book: { isbn }, maxTotalPrice: { cents: 20_000, currency: 'USD' } })))),
    );
    expect(ids).toHaveLength(40);

    let last: Array<{ id: string; status: string }> = [];
    try {
      await eventually(
        async () => {
          const res = await w.server.gql(MINE);
          last = (res.data.purchaseRequests.edges as any[]).map((e) => e.node).filter((r) => ids.includes(r.id));
          return last.length === ids.length && last.every((r) => r.status === 'ORDERED');
        },
        60_000,
        200,
      );
    } catch {
      const stuck = last.filter((r) => r.status !== 'ORDERED');
      const details = await Promise.all(stuck.slice(0, 5).map(async (r) => (await w.server.gql(DETAIL, { id: r.id })).data.purchaseRequest));
      throw new Error(`${stuck.length} of ${ids.length} requests not ORDERED after 60 s: ${JSON.stringify(details)}`);
    }

    // The partners' side: each request ordered once, across every seller's ledger.
    const ledger = await w.sandbox.ledger();
    const byRequest = new Map<string, LedgerEntry[]>();
    for (const e of ledger) {
      expect(e.requestId, `order ${e.orderId} carries no request id`).toBeDefined();
      byRequest.set(e.requestId!, [...(byRequest.get(e.requestId!) ?? []), e]);
    }
    for (const [requestId, entries] of byRequest) {
      expect(entries.map((e) => `${e.sellerKey}:${e.orderId}`), `request ${requestId} was ordered more than once`).toHaveLength(1);
    }
    expect([...byRequest.keys()].sort()).toEqual([...ids].sort());
    expect(ledger.filter((e) => e.sellerKey === DOWN)).toEqual([]);

    // The broker's side: the order it reports is that one, paid exactly once.
    for (const id of ids) {
      const r = (await w.server.gql(DETAIL, { id })).data.purchaseRequest;
      const [entry] = byRequest.get(id)!;
      expect(r.order.sellerOrderId).toBe(entry!.orderId);
      expect(r.order.total.cents).toBe(entry!.totalCents);
      const won = r.attempts.filter((a: any) => a.state === 'SUCCEEDED');
      expect(won).toHaveLength(1);
      expect(r.attempts.filter((a: any) => a.paymentState === 'CAPTURED')).toHaveLength(1);

      const calls = (await w.server.gql(LEDGER, { id }, w.server.tokens.admin)).data.paymentLedger as any[];
      const captures = calls.filter((c) => c.operation === 'capture' && c.effective);
      expect(captures, `captures for ${id}`).toEqual([expect.objectContaining({ key: `${id}:${won[0].attemptNo}`, amountCents: entry!.totalCents })]);
      // Every other attempt's authorisation was voided or never made; none was captured.
      for (const a of r.attempts.filter((x: any) => x.state !== 'SUCCEEDED')) {
        expect(a.state).toBe('FAILED');
        expect(calls.filter((c) => c.key === `${id}:${a.attemptNo}` && c.operation === 'capture' && c.effective)).toEqual([]);
      }
    }

    // The chaos was real.
    const stats = await w.sandbox.stats();
    const total = (outcome: string) => ALL.reduce((n, k) => n + (stats[k]!.byStatus[outcome] ?? 0), 0);
    expect(total('500')).toBeGreaterThan(0);
    expect(total('timeout')).toBeGreaterThan(0);
    expect(stats[DOWN]!.byStatus.down ?? 0).toBeGreaterThan(0);
    expect(stats[ASYNC]!.callbacksSent).toBeGreaterThan(0);
  }, 90_000);
});
