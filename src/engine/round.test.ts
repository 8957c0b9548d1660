import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { SellerRow } from '../db/schema.js';
import { systemClock } from '../domain/clock.js';
import type { QuoteOutcome } from '../partners/connector.js';
import type { ParsedOffer } from '../partners/mapping.js';
import { SellerStats } from '../partners/seller-stats.js';
import { MemoryOfferCache } from './offer-cache.js';
import { type RoundMember, type RoundResult, RoundCoordinator } from './round.js';
import { SellerDirectory } from './seller-directory.js';

/**
 * The round's takeable rule, unit by unit: which offers each member may take, in the order
 * members joined, and when the round stops asking. Sellers answer when the test says so.
 */

function seller(id: string, tier: number): SellerRow {
  return { id, name: id, tier, enabled: true, offerTtlSeconds: 60, timeoutMs: 1_000, maxConcurrency: 8 } as unknown as SellerRow;
}

function offer(totalCents: number, inventory: number | null = null, offerId = 'o1'): ParsedOffer {
  return { offerId, condition: 'NEW', itemCents: totalCents, shippingCents: 0, taxCents: 0, feesCents: 0, totalCents, currency: 'USD', inventory, available: true };
}

/** A pipeline whose quotes resolve when the test answers them; it records who was asked. */
function scriptedPipeline() {
  const waiting = new Map<string, (o: QuoteOutcome) => void>();
  const asked: string[] = [];
  return {
    asked,
    answer(sellerId: string, offers: ParsedOffer[]) {
      const reply = waiting.get(sellerId);
      if (!reply) throw new Error(`${sellerId} was not asked`);
      waiting.delete(sellerId);
      reply({ kind: 'offers', offers, latencyMs: 1 });
    },
    isAsked: (sellerId: string) => waiting.has(sellerId),
    pipeline: {
      quote: (s: { id: string }, _p: unknown, o: { onSend?: () => void; signal?: AbortSignal } = {}) =>
        new Promise<QuoteOutcome>((resolve) => {
          asked.push(s.id);
          o.onSend?.();
          waiting.set(s.id, resolve);
          o.signal?.addEventListener('abort', () => resolve({ kind: 'failed', cause: { kind: 'aborted' }, reason: 'aborted', status: null, retryAfterMs: null, latencyMs: 0 } as unknown as QuoteOutcome));
        }),
    },
  };
}

function coordinator(sellers: SellerRow[], cache = new MemoryOfferCache(), maxSellersPerRound?: number) {
  const script = scriptedPipeline();
  const rounds = new RoundCoordinator({
    directory: new SellerDirectory(async () => sellers),
    pipeline: script.pipeline as never,
    cache,
    stats: new SellerStats(),
    clock: systemClock,
    log: pino({ level: 'silent' }),
    improvementWindowMs: 0,
    ...(maxSellersPerRound === undefined ? {} : { maxSellersPerRound }),
    callbackUrl: () => 'http://127.0.0.1/cb',
    onOffersChanged: () => {},
  });
  return { rounds, script, cache };
}

const BOOK = { bookKey: 'isbn:9780141439518', isbn: '9780141439518', title: null, author: null };
const member = (requestId: string, extra: Partial<RoundMember> = {}): RoundMember => ({
  requestId,
  conditions: ['NEW'],
  currency: 'USD',
  maxTotalCents: 5_000,
  ...extra,
});
const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setImmediate(r));
  expect(check()).toBe(true);
};
const totals = (r: RoundResult) => r.takeable.map((o) => [o.sellerId, o.totalCents]);

describe('round: takeable offers', () => {
  it('a known last copy goes to the members ahead; the ones behind keep the round asking until another seller answers', async () => {
    const { rounds, script } = coordinator([seller('a', 1), seller('b', 1)]);
    const tickets = ['r1', 'r2', 'r3'].map((id) => rounds.search(BOOK, member(id)));
    await until(() => script.isAsked('a') && script.isAsked('b'));
    script.answer('a', [offer(1_000, 2)]);

    const [r1, r2] = await Promise.all([tickets[0]!.result, tickets[1]!.result]);
    expect(totals(r1)).toEqual([['a', 1_000]]);
    expect(totals(r2)).toEqual([['a', 1_000]]);
    // r3 has nothing it can take yet: B's call is still wanted.
    expect(script.isAsked('b')).toBe(true);

    script.answer('b', [offer(1_500, 10)]);
    const r3 = await tickets[2]!.result;
    expect(totals(r3)).toEqual([['b', 1_500]]);
  });

  it('an offer the request was refused on does not satisfy it', async () => {
    const { rounds, script } = coordinator([seller('a', 1), seller('b', 2)]);
    const ticket = rounds.search(BOOK, member('r1', { excludes: (o) => o.sellerId === 'a' }));
    await until(() => script.isAsked('a'));
    script.answer('a', [offer(1_000)]);
    // Tier 2 is asked because tier 1 gave nothing it can take.
    await until(() => script.isAsked('b'));
    script.answer('b', [offer(1_800)]);
    const r = await ticket.result;
    expect(totals(r)).toEqual([['b', 1_800]]);
    expect(r.offers.map((o) => o.sellerId)).toEqual(['a', 'b']);
  });

  it('a dearer offer does not satisfy a request shown a cheaper one until that seller has answered again', async () => {
    const { rounds, script } = coordinator([seller('a', 1), seller('c', 3)]);
    const ticket = rounds.search(BOOK, member('r1', { shown: { sellerId: 'c', totalCents: 900 } }));
    await until(() => script.isAsked('a'));
    script.answer('a', [offer(1_000)]);
    await until(() => script.isAsked('c'));
    script.answer('c', [offer(900)]);
    const r = await ticket.result;
    expect(totals(r)[0]).toEqual(['c', 900]);
  });

  it('fresh cached offers of every tier count before any call, and tiers only order the calls', async () => {
    const cache = new MemoryOfferCache();
    const now = Date.now();
    cache.set(BOOK.bookKey, 'c', { offers: [offer(900)], condition: 'new', quotedAt: now, expiresAt: now + 60_000 });
    cache.set(BOOK.bookKey, 'a', { offers: [offer(1_000)], condition: 'new', quotedAt: now, expiresAt: now + 60_000 });
    const { rounds, script } = coordinator([seller('a', 1), seller('c', 3)], cache);
    const r = await rounds.search(BOOK, member('r1')).result;
    expect(totals(r)).toEqual([
      ['c', 900],
      ['a', 1_000],
    ]);
    expect(script.asked).toEqual([]);
  });
});

describe('round: a tier of many sellers', () => {
  it('asks a tier in doubling waves (4, then 8…), the next wave only while a request still lacks an offer', async () => {
    const sellers = Array.from({ length: 20 }, (_, i) => seller(`s${String(i).padStart(2, '0')}`, 1));
    const { rounds, script } = coordinator(sellers);
    const ticket = rounds.search(BOOK, member('r1'));
    await until(() => script.asked.length === 4);
    // The first wave has no offer within budget: the second, of 8, is asked.
    for (const id of [...script.asked]) script.answer(id, [offer(9_000)]);
    await until(() => script.asked.length === 12);
    // One answer within budget satisfies the request: the rest of the wave is not waited for, and
    // the last 8 sellers are never asked.
    script.answer(script.asked[4]!, [offer(4_000)]);
    const result = await ticket.result;
    expect(totals(result)).toEqual([[script.asked[4], 4_000]]);
    expect(script.asked).toHaveLength(12);
  });

  it('goes breadth-first across tiers: a book only a lower tier carries is found there before the first tier is exhausted', async () => {
    const tier1 = Array.from({ length: 20 }, (_, i) => seller(`a${String(i).padStart(2, '0')}`, 1));
    const tier2 = Array.from({ length: 20 }, (_, i) => seller(`b${String(i).padStart(2, '0')}`, 2));
    const { rounds, script } = coordinator([...tier1, ...tier2]);
    const ticket = rounds.search(BOOK, member('r1'));
    await until(() => script.asked.length === 4);
    expect(script.asked.every((id) => id.startsWith('a'))).toBe(true);
    // Tier 1's best four do not carry it: tier 2's first wave comes before tier 1's second.
    for (const id of [...script.asked]) script.answer(id, []);
    await until(() => script.asked.length === 8);
    expect(script.asked.slice(4).every((id) => id.startsWith('b'))).toBe(true);
    script.answer(script.asked[5]!, [offer(3_000)]);
    const result = await ticket.result;
    expect(totals(result)).toEqual([[script.asked[5], 3_000]]);
    expect(script.asked).toHaveLength(8);
  });

  it('stops at its call budget, says how many sellers it left, and the next round for the book asks those first', async () => {
    const sellers = Array.from({ length: 30 }, (_, i) => seller(`s${String(i).padStart(2, '0')}`, 1));
    // A TTL of 0: nothing is cached, so the second round's choice is the rotation's alone.
    const { rounds, script } = coordinator(sellers.map((s) => ({ ...s, offerTtlSeconds: 0 })), new MemoryOfferCache(), 10);
    const first = rounds.search(BOOK, member('r1'));
    // Waves of 4 and then 6 (the rest of the budget of 10), each over budget.
    await until(() => script.asked.length === 4);
    for (const id of script.asked) script.answer(id, [offer(9_000)]);
    await until(() => script.asked.length === 10);
    for (const id of script.asked.slice(4)) script.answer(id, [offer(9_000)]);
    const r1 = await first.result;
    expect(r1.consulted).toBe(10);
    expect(r1.notAsked).toBe(20);
    expect(r1.takeable).toEqual([]);
    const firstTen = new Set(script.asked);

    // The next round asks ten sellers the first one did not.
    const second = rounds.search(BOOK, member('r2'));
    await until(() => script.asked.length === 14);
    for (const id of script.asked.slice(10)) script.answer(id, [offer(9_000)]);
    await until(() => script.asked.length === 20);
    for (const id of script.asked.slice(14)) script.answer(id, [offer(9_000)]);
    const r2 = await second.result;
    expect(r2.notAsked).toBe(20);
    const secondTen = script.asked.slice(10);
    expect(secondTen.filter((id) => firstTen.has(id))).toEqual([]);
  });

  it('counts fresh cached answers against its budget: with the cache holding enough, it calls nobody', async () => {
    const sellers = Array.from({ length: 30 }, (_, i) => seller(`s${String(i).padStart(2, '0')}`, 1));
    const cache = new MemoryOfferCache();
    const now = Date.now();
    for (const s of sellers.slice(0, 8)) cache.set(BOOK.bookKey, s.id, { offers: [offer(9_000)], condition: 'new', quotedAt: now, expiresAt: now + 60_000 });
    const { rounds, script } = coordinator(sellers, cache, 10);
    // Eight answers at hand, none within budget: two calls make up the ten.
    const first = rounds.search(BOOK, member('r1'));
    await until(() => script.asked.length === 2);
    for (const id of script.asked) script.answer(id, [offer(9_500)]);
    const r1 = await first.result;
    expect(r1.consulted).toBe(10);
    expect(r1.notAsked).toBe(20);
    expect(r1.offers.map((o) => o.totalCents).sort()).toEqual([...Array(8).fill(9_000), 9_500, 9_500]);
    // Ten answers at hand now: the next request's round calls nobody.
    const second = await rounds.search(BOOK, member('r2')).result;
    expect(second.consulted).toBe(10);
    expect(second.notAsked).toBe(20);
    expect(script.asked).toHaveLength(2);
  });
});
