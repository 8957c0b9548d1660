import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from './support/server.js';
import { type World, quoteCalls, startWorld } from './support/world.js';

/**
 * Watching (SPEC §2): QUOTED and OUT_OF_STOCK requests are searched again on a schedule. A short
 * recheck interval and a one-second offer TTL, so a recheck soon asks the sellers afresh.
 */

const DUNE = '9780441172719'; // NEW: novella 17.68, inkwell 12.87 (Inkwell: no shipping, 8.25% tax)
const ULYSSES = '9780679722762'; // out of print

const DETAIL = `query Detail($id: ID!) {
  purchaseRequest(id: $id) {
    id status
    bestOffer { total { cents } seller { name } }
    order { total { cents } seller { name } }
    events { type status }
  }
}`;

let w: World;
beforeAll(async () => {
  w = await startWorld({
    sellers: ['pageturner', 'novella', 'inkwell'].map((key) => ({ key, offerTtlSeconds: 1 })),
    env: { RECHECK_INTERVAL_MS: '300', RECHECK_MAX_MS: '600' },
  });
});
afterAll(async () => {
  await w?.close();
});

async function until(id: string, predicate: (r: any) => boolean, timeoutMs = 15_000): Promise<any> {
  let last: any = null;
  try {
    return await eventually(async () => {
      const res = await w.server.gql(DETAIL, { id });
      last = res.data?.purchaseRequest;
      return last && predicate(last) ? last : null;
    }, timeoutMs);
  } catch {
    throw new Error(`request ${id} did not reach the expected state within ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`);
  }
}

it('rechecks a QUOTED request and orders once a seller drops its price below the budget', async () => {
  const id = await w.create({ book: { isbn: DUNE }, maxTotalPrice: { cents: 1000, currency: 'USD' } });
  const quoted = await until(id, (r) => r.status !== 'PENDING' && r.status !== 'SEARCHING');
  expect(quoted.status).toBe('QUOTED');
  expect(quoted.bestOffer.total.cents).toBe(1287);

  // Nobody asks again, yet the sellers are called again: the request is being watched.
  const first = await quoteCalls(w.sandbox);
  await eventually(async () => (await quoteCalls(w.sandbox)).inkwell! > first.inkwell!, 10_000);
  expect((await w.get(id)).status).toBe('QUOTED');

  // 8.00 + 0.66 tax = 8.66, under the $10.00 budget.
  await w.sandbox.setPrice('inkwell', DUNE, 800, 'new');
  const r = await until(id, (x) => x.status === 'ORDERED' || x.status === 'FAILED', 10_000);
  expect(r.status).toBe('ORDERED');
  expect(r.order).toMatchObject({ seller: { name: 'Inkwell Booksellers' }, total: { cents: 866 } });
  const types = r.events.map((e: any) => e.type);
  expect(types.slice(types.indexOf('QUOTED'))).toEqual(['QUOTED', 'ORDER_STARTED', 'ORDERED']);
  const ledger = (await w.sandbox.ledger()).filter((e) => e.requestId === id);
  expect(ledger.map((e) => [e.sellerKey, e.totalCents])).toEqual([['inkwell', 866]]);
});

it('rechecks an OUT_OF_STOCK request and orders once a seller has the book', async () => {
  const id = await w.create({ book: { isbn: ULYSSES }, maxTotalPrice: { cents: 5000, currency: 'USD' } });
  const r0 = await until(id, (r) => r.status !== 'PENDING' && r.status !== 'SEARCHING');
  expect(r0.status).toBe('OUT_OF_STOCK');

  await w.sandbox.setInventory('pageturner', ULYSSES, 2, 'new');
  const r = await until(id, (x) => x.status === 'ORDERED' || x.status === 'FAILED', 10_000);
  expect(r.status).toBe('ORDERED');
  expect(r.order.seller.name).toBe('PageTurner Books');
  expect((await w.sandbox.ledger()).filter((e) => e.requestId === id)).toHaveLength(1);
});
