import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxSellerSpec } from '../src/partners/sandbox/fleet.js';
import { UPDATE, usd } from './support/fixtures.js';
import { landedTotal } from './support/sandbox.js';
import { type World, quoteCalls, startWorld } from './support/world.js';

/**
 * A seller whose order endpoint checks the price (`orderChecksPrice`, as the sandbox registers
 * its sellers): SPEC §3 lets the broker order on a cached price without a fresh quote first,
 * because the seller refuses any other total. What a user, the partner and the payment ledger
 * see: no second quote, one order at the price shown; and when prices moved meanwhile, refused
 * attempts (their authorisations voided), a fresh quote, and one order, paid once, at the new price.
 */

const SELLERS = ['pageturner', 'novella'] as const;
type SellerKey = (typeof SELLERS)[number];
const DETAIL = `query Detail($id: ID!) {
  purchaseRequest(id: $id) {
    id status
    bestOffer { total { cents } }
    order { total { cents } }
    attempts { attemptNo state failure offer { total { cents } condition } }
  }
}`;
const LEDGER = `query Ledger($id: ID!) { paymentLedger(requestId: $id) { operation amountCents effective } }`;

let w: World;
let specs: Record<string, SandboxSellerSpec>;

beforeAll(async () => {
  w = await startWorld({ sellers: SELLERS.map((key) => ({ key })) });
  specs = await w.sandbox.specs();
});
afterAll(async () => {
  await w?.close();
});

const landed = (seller: SellerKey, itemCents: number) => landedTotal(specs[seller]!, itemCents);

async function detail(id: string): Promise<any> {
  const res = await w.server.gql(DETAIL, { id });
  expect(res.errors).toBeUndefined();
  return res.data.purchaseRequest;
}

/** The payment calls that took effect for the request: [operation, amount]. */
async function payments(id: string): Promise<Array<[string, number | null]>> {
  const res = await w.server.gql(LEDGER, { id }, w.server.tokens.admin);
  expect(res.errors).toBeUndefined();
  return res.data.paymentLedger.filter((c: any) => c.effective).map((c: any) => [c.operation, c.amountCents]);
}

const ordersFor = async (seller: SellerKey, id: string) => (await w.sandbox.ledger(seller)).filter((e) => e.requestId === id).map((e) => e.totalCents);

async function raiseBudget(id: string, cents: number): Promise<any> {
  const res = await w.server.gql(UPDATE, { id, input: { maxTotalPrice: usd(cents) } });
  expect(res.data.updatePurchaseRequest.userErrors).toEqual([]);
  return w.until(id, (x) => ['ORDERED', 'FAILED'].includes(x.status), 5_000);
}

/** Only `seller` has the book, at these item prices; a request one cent short of the cheapest is QUOTED with it cached. */
async function quoted(seller: SellerKey, isbn: string, prices: { new?: number; used?: number }): Promise<string> {
  for (const other of SELLERS) if (other !== seller) await w.sandbox.setInventory(other, isbn, 0);
  for (const condition of ['new', 'used'] as const) {
    const price = prices[condition];
    if (price === undefined) continue;
    await w.sandbox.setInventory(seller, isbn, 5, condition);
    await w.sandbox.setPrice(seller, isbn, price, condition);
  }
  const cheapest = Math.min(...Object.values(prices).map((p) => landed(seller, p)));
  const id = await w.create({ book: { isbn }, conditions: prices.used === undefined ? ['NEW'] : ['NEW', 'USED'], maxTotalPrice: usd(cheapest - 1) });
  const r = await w.until(id, (x) => x.status === 'QUOTED');
  expect(r.bestOffer.total.cents).toBe(cheapest);
  return id;
}

describe('a seller that checks the price at order time', () => {
  it('is ordered from on its cached price without being quoted again', async () => {
    const isbn = '9780141439518';
    const id = await quoted('pageturner', isbn, { new: 1000 });
    const total = landed('pageturner', 1000);
    const before = await quoteCalls(w.sandbox);

    expect((await raiseBudget(id, total)).status).toBe('ORDERED');
    expect((await quoteCalls(w.sandbox)).pageturner).toBe(before.pageturner);
    expect(await ordersFor('pageturner', id)).toEqual([total]);
    const d = await detail(id);
    expect(d.order.total.cents).toBe(total);
    expect(d.attempts.map((a: any) => a.state)).toEqual(['SUCCEEDED']);
    expect(await payments(id)).toEqual([
      ['authorize', total],
      ['capture', total],
    ]);
  });

  it('refuses a cached price that has moved: the request quotes again and orders once, at the new price', async () => {
    const isbn = '9780451524935';
    const id = await quoted('pageturner', isbn, { new: 1000 });
    const [total, newTotal] = [landed('pageturner', 1000), landed('pageturner', 1100)];
    await w.sandbox.setPrice('pageturner', isbn, 1100, 'new');
    const before = await quoteCalls(w.sandbox);

    expect((await raiseBudget(id, newTotal)).status).toBe('ORDERED');
    // The order at the cached total was refused (409 price_changed) and nothing was placed; the
    // refusal dropped the cached answer, so the next search asked the seller again.
    const d = await detail(id);
    expect(d.attempts.map((a: any) => [a.state, a.offer.total.cents])).toEqual([
      ['FAILED', total],
      ['SUCCEEDED', newTotal],
    ]);
    expect((await quoteCalls(w.sandbox)).pageturner).toBe(before.pageturner! + 1);
    expect(await ordersFor('pageturner', id)).toEqual([newTotal]);
    expect(d.order.total.cents).toBe(newTotal);
    expect(await payments(id)).toEqual([
      ['authorize', total],
      ['void', null],
      ['authorize', newTotal],
      ['capture', newTotal],
    ]);
  });

  it('does not give up on a seller whose every cached price moved: each refusal is of a price, not of the seller', async () => {
    const isbn = '9780061120084';
    // A new and a used copy, both cached; then both prices move.
    const id = await quoted('novella', isbn, { new: 1000, used: 800 });
    const [oldUsed, oldNew] = [landed('novella', 800), landed('novella', 1000)];
    await w.sandbox.setPrice('novella', isbn, 1100, 'new');
    await w.sandbox.setPrice('novella', isbn, 900, 'used');
    const newUsed = landed('novella', 900);

    expect((await raiseBudget(id, landed('novella', 1100))).status).toBe('ORDERED');
    const d = await detail(id);
    expect(d.attempts.map((a: any) => [a.state, a.offer.condition, a.offer.total.cents])).toEqual([
      ['FAILED', 'USED', oldUsed],
      ['FAILED', 'NEW', oldNew],
      ['SUCCEEDED', 'USED', newUsed],
    ]);
    expect(await ordersFor('novella', id)).toEqual([newUsed]);
    expect(await payments(id)).toEqual([
      ['authorize', oldUsed],
      ['void', null],
      ['authorize', oldNew],
      ['void', null],
      ['authorize', newUsed],
      ['capture', newUsed],
    ]);
  });
});
