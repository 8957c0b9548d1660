import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxSellerSpec } from '../src/partners/sandbox/fleet.js';
import { usd } from './support/fixtures.js';
import { eventually } from './support/server.js';
import { landedTotal } from './support/sandbox.js';
import { type World, startWorld } from './support/world.js';

/**
 * Takeable, not just valid (SPEC §3): a request is satisfied only by an offer it can still take,
 * and when the cheapest one cannot be taken — the seller refuses, the last copies go to other
 * requests, a shown price is gone — the next-best offer is bought at once, not at the next
 * recheck. Rechecks are left at their production default (a minute), so a request that waited
 * for one would miss every deadline below.
 *
 * Sellers: PageTurner and Inkwell (tier 1), Dog-Ear (tier 2, cached for a minute), Remainders
 * (tier 3, never cached). Each test uses its own book and stocks every seller for it.
 */

const SELLERS = ['pageturner', 'inkwell', 'dogear', 'remainders'] as const;
type SellerKey = (typeof SELLERS)[number];

const DETAIL = `query Detail($id: ID!) {
  purchaseRequest(id: $id) {
    id status
    maxTotalPrice { cents }
    bestOffer { total { cents } seller { id } }
    order { total { cents } seller { id } }
    events { type status message }
    attempts { attemptNo state seller { id } offer { total { cents } } }
  }
}`;
const UPDATE = `mutation($id: ID!, $input: UpdatePurchaseRequestInput!) {
  updatePurchaseRequest(id: $id, input: $input) { purchaseRequest { status } userErrors { code message } }
}`;

let w: World;
let specs: Record<string, SandboxSellerSpec>;

beforeAll(async () => {
  w = await startWorld({
    // Generous timeouts: on a busy machine a slowed quote must still be an answer, not a failure.
    sellers: [
      { key: 'pageturner', tier: 1, timeoutMs: 5_000 },
      { key: 'inkwell', tier: 1, timeoutMs: 5_000 },
      { key: 'dogear', tier: 2, offerTtlSeconds: 60, timeoutMs: 5_000 },
      { key: 'remainders', tier: 3, offerTtlSeconds: 0, timeoutMs: 5_000 },
    ],
    env: { IMPROVEMENT_WINDOW_MS: '0', RECHECK_INTERVAL_MS: '60000' },
  });
  specs = await w.sandbox.specs();
});
afterAll(async () => {
  await w?.close();
});
afterEach(async () => {
  for (const key of SELLERS) await w.sandbox.configure(key, { script: [], rejectOrderRate: 0 });
});

const landed = (seller: SellerKey, itemCents: number) => landedTotal(specs[seller]!, itemCents);

/** Stocks a book at every seller: new copies as [item price, copies], none where not given (used copies never). */
async function stock(isbn: string, offers: Partial<Record<SellerKey, [number, number]>>): Promise<void> {
  for (const seller of SELLERS) {
    const o = offers[seller];
    await w.sandbox.setInventory(seller, isbn, 0);
    if (!o) continue;
    await w.sandbox.setInventory(seller, isbn, o[1], 'new');
    await w.sandbox.setPrice(seller, isbn, o[0], 'new');
  }
}

/** Every quote to `seller` takes `ms` more (real time) for the next `calls` calls. */
async function slowQuotes(seller: SellerKey, ms: number, calls = 50): Promise<void> {
  await w.sandbox.configure(seller, { script: Array.from({ length: calls }, () => ({ endpoint: 'quote' as const, fault: 'slow' as const, ms })) });
}

const sellerKeyOf = (id: string) => Object.entries(w.sellerIds).find(([, s]) => s === id)?.[0];

describe('takeable offers', () => {
  it('a refusal from the cheapest seller falls back at once to a slower, dearer seller', async () => {
    const isbn = '9780060850524';
    await stock(isbn, { pageturner: [1000, 5], inkwell: [1500, 5] });
    await w.sandbox.configure('pageturner', { rejectOrderRate: 1 });
    // Inkwell quotes 150 ms after PageTurner: with pure early exit its call would be aborted.
    await slowQuotes('inkwell', 150);

    const id = await w.create({ book: { isbn }, maxTotalPrice: usd(4000) });
    const r = await w.until(id, (x) => x.status === 'ORDERED', 10_000, DETAIL);

    expect(r.order).toMatchObject({ seller: { id: w.sellerIds.inkwell }, total: { cents: landed('inkwell', 1500) } });
    expect(r.attempts.map((a: any) => [sellerKeyOf(a.seller.id), a.state])).toEqual([
      ['pageturner', 'FAILED'],
      ['inkwell', 'SUCCEEDED'],
    ]);
    // It never went back to watching on the refused offer.
    expect(r.events.map((e: any) => e.status)).not.toContain('QUOTED');
    expect(await w.sandbox.ledger('pageturner')).toEqual([]);
    expect((await w.sandbox.ledger('inkwell')).filter((o) => o.requestId === id)).toHaveLength(1);
  });

  it('20 requests for a book with 3 known copies at the cheapest seller: 3 are ordered there, 17 at the next, no fourth attempt there', async () => {
    const isbn = '9780547928227';
    await stock(isbn, { pageturner: [900, 3], inkwell: [1400, 100] });
    await slowQuotes('inkwell', 150, 200);

    const ids = await Promise.all(Array.from({ length: 20 }, () => w.create({ book: { isbn }, maxTotalPrice: usd(4000) })));
    const done = await Promise.all(ids.map((id) => w.until(id, (x) => x.status === 'ORDERED', 20_000, DETAIL)));

    const orderedAt = done.map((r) => sellerKeyOf(r.order.seller.id));
    expect(orderedAt.filter((s) => s === 'pageturner')).toHaveLength(3);
    expect(orderedAt.filter((s) => s === 'inkwell')).toHaveLength(17);
    const attemptsAtFirst = done.flatMap((r) => r.attempts).filter((a: any) => sellerKeyOf(a.seller.id) === 'pageturner');
    expect(attemptsAtFirst).toHaveLength(3);
    expect(attemptsAtFirst.every((a: any) => a.state === 'SUCCEEDED')).toBe(true);
    expect((await w.sandbox.ledger('pageturner')).filter((o) => o.isbn === isbn)).toHaveLength(3);
    expect((await w.sandbox.ledger('inkwell')).filter((o) => o.isbn === isbn)).toHaveLength(17);
  });

  it("QUOTED at a lower tier's cached price, then the budget raised: ordered at that price", async () => {
    const isbn = '9781451673319';
    // Dog-Ear (tier 2) is cheapest; PageTurner (tier 1) is a little dearer.
    await stock(isbn, { pageturner: [1150, 5], dogear: [1000, 5] });
    const shown = landed('dogear', 1000);
    expect(landed('pageturner', 1150)).toBeGreaterThan(shown);

    const id = await w.create({ book: { isbn }, maxTotalPrice: usd(shown - 100) });
    const quoted = await w.until(id, (x) => x.status === 'QUOTED', 10_000, DETAIL);
    expect(quoted.bestOffer).toMatchObject({ total: { cents: shown }, seller: { id: w.sellerIds.dogear } });

    const res = await w.server.gql(UPDATE, { id, input: { maxTotalPrice: usd(shown + 2000) } });
    expect(res.data.updatePurchaseRequest.userErrors).toEqual([]);
    const r = await w.until(id, (x) => x.status === 'ORDERED', 10_000, DETAIL);
    expect(r.order).toMatchObject({ seller: { id: w.sellerIds.dogear }, total: { cents: shown } });
  });

  it('a shown offer from a seller with no cache is asked for again before a dearer offer is ordered', async () => {
    const isbn = '9780141441146';
    // Remainders (tier 3, no cache) is cheapest; PageTurner (tier 1) would do within the raised budget.
    await stock(isbn, { pageturner: [2200, 5], remainders: [1000, 5] });
    const shown = landed('remainders', 1000);
    expect(landed('pageturner', 2200)).toBeGreaterThan(shown);

    const id = await w.create({ book: { isbn }, maxTotalPrice: usd(shown - 100) });
    const quoted = await w.until(id, (x) => x.status === 'QUOTED', 10_000, DETAIL);
    expect(quoted.bestOffer).toMatchObject({ total: { cents: shown }, seller: { id: w.sellerIds.remainders } });

    await w.server.gql(UPDATE, { id, input: { maxTotalPrice: usd(shown + 2000) } });
    const r = await w.until(id, (x) => x.status === 'ORDERED', 10_000, DETAIL);
    expect(r.order).toMatchObject({ seller: { id: w.sellerIds.remainders }, total: { cents: shown } });
  });

  it('when the shown offer is gone, the dearer order says so with both prices', async () => {
    const isbn = '9780679734505';
    await stock(isbn, { pageturner: [2200, 5], remainders: [1000, 5] });
    const shown = landed('remainders', 1000);
    const id = await w.create({ book: { isbn }, maxTotalPrice: usd(shown - 100) });
    await w.until(id, (x) => x.status === 'QUOTED', 10_000, DETAIL);

    // Remainders sells out before the user raises the budget.
    await w.sandbox.setInventory('remainders', isbn, 0);
    await w.server.gql(UPDATE, { id, input: { maxTotalPrice: usd(shown + 2000) } });
    const r = await w.until(id, (x) => x.status === 'ORDERED', 10_000, DETAIL);

    const paid = landed('pageturner', 2200);
    expect(r.order).toMatchObject({ seller: { id: w.sellerIds.pageturner }, total: { cents: paid } });
    const started = r.events.find((e: any) => e.type === 'ORDER_STARTED');
    expect(started.message).toContain(`$${(paid / 100).toFixed(2)}`);
    expect(started.message).toContain(`$${(shown / 100).toFixed(2)}`);
    expect(started.message).toMatch(/no longer available/);
  });
});

describe('what a round that found nothing says', () => {
  it('a title-only request is bought from a seller that searches by title; one that cannot is not counted as lacking the book', async () => {
    const isbn = '9780374533557'; // Thinking, Fast and Slow
    await stock(isbn, { dogear: [1500, 5] });
    const id = await w.create({ book: { title: 'thinking fast and slow', author: 'Kahneman' }, maxTotalPrice: usd(4000) });
    const r = await w.until(id, (x) => x.status === 'ORDERED', 10_000, DETAIL);
    expect(r.order).toMatchObject({ seller: { id: w.sellerIds.dogear }, total: { cents: landed('dogear', 1500) } });

    const none = '9781400033416'; // Beloved
    await stock(none, {});
    const gone = await w.create({ book: { title: 'Beloved', author: 'Toni Morrison' }, maxTotalPrice: usd(4000) });
    const out = await w.until(gone, (x) => x.status === 'OUT_OF_STOCK', 10_000, DETAIL);
    // Inkwell is ISBN-only: it answered 400, which is neither "does not have it" nor a failure.
    expect(out.events.at(-1).message).toBe('No offers: 3 sellers do not have the book, 1 seller cannot search by title');
  });

  it('a QUOTED request whose sellers stop answering stays QUOTED with the best offer it had', async () => {
    const isbn = '9780385474542'; // Things Fall Apart; only Remainders (never cached) has it
    await stock(isbn, { remainders: [1000, 5] });
    const shown = landed('remainders', 1000);
    const id = await w.create({ book: { isbn }, maxTotalPrice: usd(shown - 200) });
    await w.until(id, (x) => x.status === 'QUOTED', 10_000, DETAIL);

    const before = (await w.sandbox.stats()).remainders!.quote;
    await w.sandbox.configure('remainders', { down: true });
    try {
      // A new budget, still too low, asks again at once; Remainders does not answer.
      await w.server.gql(UPDATE, { id, input: { maxTotalPrice: usd(shown - 100) } });
      await eventually(async () => (await w.sandbox.stats()).remainders!.quote > before);
    } finally {
      await w.sandbox.configure('remainders', { down: false });
    }
    await w.server.gql(UPDATE, { id, input: { maxTotalPrice: usd(shown + 500) } });
    const r = await w.until(id, (x) => x.status === 'ORDERED', 10_000, DETAIL);
    expect(r.order).toMatchObject({ seller: { id: w.sellerIds.remainders }, total: { cents: shown } });
    expect(r.events.map((e: any) => e.status)).not.toContain('OUT_OF_STOCK');
  });
});
