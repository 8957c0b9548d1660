import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxSellerSpec } from '../src/partners/sandbox/fleet.js';
import { UPDATE, usd } from './support/fixtures.js';
import { type World, quoteCalls, startWorld } from './support/world.js';

/**
 * A seller whose order endpoint checks the price (`orderChecksPrice`, as the sandbox registers
 * its sellers): SPEC §3 lets the broker order on a cached price without a fresh quote first,
 * because the seller refuses any other total. What a user and the partner see: no second quote,
 * one order at the price shown; and when the price moved meanwhile, a refused attempt, a fresh
 * quote, and one order at the new price.
 */

const SELLER = 'pageturner';
const DETAIL = `query Detail($id: ID!) {
  purchaseRequest(id: $id) {
    id status
    bestOffer { total { cents } }
    order { total { cents } }
    events { type }
    attempts { attemptNo state failure offer { total { cents } } }
  }
}`;

let w: World;
let spec: SandboxSellerSpec;

beforeAll(async () => {
  w = await startWorld({ sellers: [{ key: SELLER }] });
  const res = await fetch(`${w.sandbox.url}/_admin/specs`);
  spec = ((await res.json()) as SandboxSellerSpec[]).find((s) => s.key === SELLER)!;
});
afterAll(async () => {
  await w?.close();
});

/** The landed total the seller charges for a new copy at `itemCents`. */
const landed = (itemCents: number) => itemCents + spec.shippingCents + Math.round(itemCents * spec.taxRate) + spec.feeCents;

async function detail(id: string): Promise<any> {
  const res = await w.server.gql(DETAIL, { id });
  expect(res.errors).toBeUndefined();
  return res.data.purchaseRequest;
}

async function raiseBudget(id: string, cents: number): Promise<void> {
  const res = await w.server.gql(UPDATE, { id, input: { maxTotalPrice: usd(cents) } });
  expect(res.data.updatePurchaseRequest.userErrors).toEqual([]);
}

async function quoted(isbn: string, itemCents: number): Promise<{ id: string; total: number }> {
  await w.sandbox.setInventory(SELLER, isbn, 5, 'new');
  await w.sandbox.setPrice(SELLER, isbn, itemCents, 'new');
  const total = landed(itemCents);
  // One cent short: QUOTED, with the seller's answer in the cache.
  const id = await w.create({ book: { isbn }, conditions: ['NEW'], maxTotalPrice: usd(total - 1) });
  const r = await w.until(id, (x) => x.status === 'QUOTED');
  expect(r.bestOffer.total.cents).toBe(total);
  return { id, total };
}

describe('a seller that checks the price at order time', () => {
  it('is ordered from on its cached price without being quoted again', async () => {
    const isbn = '9780141439518';
    const { id, total } = await quoted(isbn, 1000);
    const before = await quoteCalls(w.sandbox);

    await raiseBudget(id, total);
    const r = await w.until(id, (x) => ['ORDERED', 'FAILED'].includes(x.status), 5_000);
    expect(r.status).toBe('ORDERED');
    expect((await quoteCalls(w.sandbox))[SELLER]).toBe(before[SELLER]);
    expect((await w.sandbox.ledger(SELLER)).filter((e) => e.requestId === id).map((e) => e.totalCents)).toEqual([total]);
    const d = await detail(id);
    expect(d.order.total.cents).toBe(total);
    expect(d.attempts.map((a: any) => a.state)).toEqual(['SUCCEEDED']);
  });

  it('refuses a cached price that has moved: the request quotes again and orders once, at the new price', async () => {
    const isbn = '9780451524935';
    const { id, total } = await quoted(isbn, 1000);
    await w.sandbox.setPrice(SELLER, isbn, 1100, 'new');
    const newTotal = landed(1100);
    const before = await quoteCalls(w.sandbox);

    await raiseBudget(id, newTotal);
    const r = await w.until(id, (x) => ['ORDERED', 'FAILED'].includes(x.status), 5_000);
    expect(r.status).toBe('ORDERED');
    // The order at the cached total was refused (409 price_changed) and nothing was placed; the
    // refusal dropped the cached answer, so the next search asked the seller again.
    const d = await detail(id);
    expect(d.attempts.map((a: any) => [a.state, a.offer.total.cents])).toEqual([
      ['FAILED', total],
      ['SUCCEEDED', newTotal],
    ]);
    expect((await quoteCalls(w.sandbox))[SELLER]).toBe(before[SELLER]! + 1);
    expect((await w.sandbox.ledger(SELLER)).filter((e) => e.requestId === id).map((e) => e.totalCents)).toEqual([newTotal]);
    expect(d.order.total.cents).toBe(newTotal);
  });
});
