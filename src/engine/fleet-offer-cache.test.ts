import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { SellerRow } from '../db/schema.js';
import { systemClock } from '../domain/clock.js';
import { MemoryPubSub } from '../infra/pubsub.js';
import type { SharedOffers } from '../infra/redis-offers.js';
import type { QuoteOutcome } from '../partners/connector.js';
import type { ParsedOffer } from '../partners/mapping.js';
import { SellerStats } from '../partners/seller-stats.js';
import { FleetOfferCache } from './fleet-offer-cache.js';
import { FleetRounds } from './fleet-rounds.js';
import type { CachedQuote } from './offer-cache.js';
import { type RoundMember, RoundCoordinator } from './round.js';
import { SellerDirectory } from './seller-directory.js';

/**
 * The fleet's offer cache and rounds, several "instances" in one process: one pub/sub, and a
 * stand-in for Redis that can be taken down.
 */

const log = pino({ level: 'silent' });
const BOOK = { bookKey: 'isbn:9780141439518', isbn: '9780141439518', title: null, author: null };

/** Redis as the fleet uses it, in memory, with expiry on read; `down` makes every command fail over to local. */
class FakeShared implements SharedOffers {
  readonly values = new Map<string, { value: unknown; until: number }>();
  readonly leases = new Map<string, { owner: string; until: number }>();
  down = false;
  reads = 0;

  put(key: string, value: unknown, ttlMs: number): void {
    if (!this.down && ttlMs > 0) this.values.set(key, { value: JSON.parse(JSON.stringify(value)), until: Date.now() + ttlMs });
  }
  remove(keys: readonly string[]): void {
    if (!this.down) for (const k of keys) this.values.delete(k);
  }
  async getMany(keys: readonly string[]): Promise<Array<unknown | null>> {
    this.reads += 1;
    return keys.map((k) => {
      const v = this.down ? undefined : this.values.get(k);
      return v && v.until > Date.now() ? v.value : null;
    });
  }
  async claim(key: string, owner: string, leaseMs: number): Promise<'owner' | { holder: string } | null> {
    if (this.down) return null;
    const held = this.live(key);
    if (held) return { holder: held };
    this.leases.set(key, { owner, until: Date.now() + leaseMs });
    return 'owner';
  }
  async renew(key: string, owner: string, leaseMs: number): Promise<boolean> {
    if (this.down || this.live(key) !== owner) return false;
    this.leases.set(key, { owner, until: Date.now() + leaseMs });
    return true;
  }
  release(key: string, owner: string): void {
    if (!this.down && this.live(key) === owner) this.leases.delete(key);
  }
  async holder(key: string): Promise<string | null> {
    return this.down ? null : this.live(key);
  }
  private live(key: string): string | null {
    const l = this.leases.get(key);
    return l && l.until > Date.now() ? l.owner : null;
  }
}

function offer(totalCents: number, offerId = 'o1'): ParsedOffer {
  return { offerId, condition: 'NEW', itemCents: totalCents, shippingCents: 0, taxCents: 0, feesCents: 0, totalCents, currency: 'USD', inventory: null, available: true };
}

function quote(totalCents: number, ttlMs = 60_000): CachedQuote {
  const now = Date.now();
  return { offers: [offer(totalCents)], condition: 'new', quotedAt: now, expiresAt: now + ttlMs };
}

function seller(id: string): SellerRow {
  return { id, name: id, tier: 1, enabled: true, offerTtlSeconds: 60, timeoutMs: 1_000, maxConcurrency: 8 } as unknown as SellerRow;
}

const member = (requestId: string, extra: Partial<RoundMember> = {}): RoundMember => ({
  requestId,
  conditions: ['NEW'],
  currency: 'USD',
  maxTotalCents: 5_000,
  ...extra,
});

async function until(check: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

const opened: FleetOfferCache[] = [];
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

async function cacheOn(pubsub: MemoryPubSub, instance: string, shared: SharedOffers | null): Promise<FleetOfferCache> {
  const cache = new FleetOfferCache({ pubsub, shared, instance, clock: systemClock, log });
  opened.push(cache);
  await cache.listening;
  return cache;
}

describe('FleetOfferCache', () => {
  it('an answer one instance stored is a hit on the others; an invalidation reaches them too', async () => {
    const pubsub = new MemoryPubSub();
    const [a, b] = await Promise.all([cacheOn(pubsub, 'a', null), cacheOn(pubsub, 'b', null)]);
    expect(a.set(BOOK.bookKey, 's1', quote(1_000))).toBe(true);
    await until(() => b.get(BOOK.bookKey, 's1', 'new', Date.now()) !== null);
    expect(b.get(BOOK.bookKey, 's1', 'new', Date.now())!.offers[0]!.totalCents).toBe(1_000);

    b.invalidate(BOOK.bookKey, 's1');
    await until(() => a.get(BOOK.bookKey, 's1', 'new', Date.now()) === null);
  });

  it("an answer stored 'here' (every instance is told already) is not passed on", async () => {
    const pubsub = new MemoryPubSub();
    const shared = new FakeShared();
    const [a, b] = await Promise.all([cacheOn(pubsub, 'a', shared), cacheOn(pubsub, 'b', shared)]);
    a.set(BOOK.bookKey, 's1', quote(1_000), 'here');
    a.set(BOOK.bookKey, 's2', quote(1_100));
    await until(() => b.get(BOOK.bookKey, 's2', 'new', Date.now()) !== null);
    expect(b.get(BOOK.bookKey, 's1', 'new', Date.now())).toBeNull();
    expect([...shared.values.keys()]).toEqual([`${BOOK.bookKey}|s2|new`]);
  });

  it('an instance that starts later warms from Redis, in one read, only what it lacks', async () => {
    const pubsub = new MemoryPubSub();
    const shared = new FakeShared();
    const a = await cacheOn(pubsub, 'a', shared);
    a.set(BOOK.bookKey, 's1', quote(1_000));
    a.set(BOOK.bookKey, 's2', { ...quote(1_100), condition: 'any' });
    a.set(BOOK.bookKey, 's3', quote(1_200, 1)); // expired before it is read
    await new Promise((r) => setTimeout(r, 5));

    const c = await cacheOn(pubsub, 'c', shared);
    expect(c.get(BOOK.bookKey, 's1', 'new', Date.now())).toBeNull();
    await c.warm(BOOK.bookKey, 'new', ['s1', 's2', 's3']);
    expect(shared.reads).toBe(1);
    expect(c.get(BOOK.bookKey, 's1', 'new', Date.now())!.offers[0]!.totalCents).toBe(1_000);
    // An answer to 'any' serves a request for new copies.
    expect(c.get(BOOK.bookKey, 's2', 'new', Date.now())!.offers[0]!.totalCents).toBe(1_100);
    expect(c.get(BOOK.bookKey, 's3', 'new', Date.now())).toBeNull();

    // Everything is here now: no read at all.
    await c.warm(BOOK.bookKey, 'new', ['s1', 's2']);
    expect(shared.reads).toBe(1);
  });

  it('Redis down: answers still reach the other instances over pub/sub, and warming finds nothing', async () => {
    const pubsub = new MemoryPubSub();
    const shared = new FakeShared();
    shared.down = true;
    const [a, b] = await Promise.all([cacheOn(pubsub, 'a', shared), cacheOn(pubsub, 'b', shared)]);
    a.set(BOOK.bookKey, 's1', quote(1_000));
    await until(() => b.get(BOOK.bookKey, 's1', 'new', Date.now()) !== null);
    const c = await cacheOn(pubsub, 'c', shared);
    await c.warm(BOOK.bookKey, 'new', ['s1']);
    expect(c.get(BOOK.bookKey, 's1', 'new', Date.now())).toBeNull();
  });
});

/** A pipeline whose quotes resolve when the test answers them; it records who was asked. */
function scriptedPipeline() {
  const waiting = new Map<string, (o: QuoteOutcome) => void>();
  const asked: string[] = [];
  return {
    asked,
    isAsked: (id: string) => waiting.has(id),
    answer(id: string, offers: ParsedOffer[]) {
      const reply = waiting.get(id);
      if (!reply) throw new Error(`${id} was not asked`);
      waiting.delete(id);
      reply({ kind: 'offers', offers, latencyMs: 1 });
    },
    pipeline: {
      quote: (s: { id: string }, _p: unknown, o: { onSend?: () => void; signal?: AbortSignal } = {}) =>
        new Promise<QuoteOutcome>((resolve) => {
          asked.push(s.id);
          o.onSend?.();
          waiting.set(s.id, resolve);
          o.signal?.addEventListener('abort', () =>
            resolve({ kind: 'failed', cause: { kind: 'aborted' }, reason: 'aborted', status: null, retryAfterMs: null, latencyMs: 0 } as unknown as QuoteOutcome),
          );
        }),
    },
  };
}

/** One broker instance's rounds, sharing the pub/sub and "Redis" of the fleet. */
async function instance(name: string, pubsub: MemoryPubSub, shared: FakeShared, sellers: SellerRow[], leaseMs = 5_000) {
  const cache = await cacheOn(pubsub, name, shared);
  const script = scriptedPipeline();
  const rounds = new RoundCoordinator({
    directory: new SellerDirectory(async () => sellers),
    pipeline: script.pipeline as never,
    cache,
    stats: new SellerStats(),
    clock: systemClock,
    log,
    improvementWindowMs: 0,
    callbackUrl: () => 'http://127.0.0.1/cb',
    onOffersChanged: () => {},
    fleet: new FleetRounds({ cache, shared, instance: name, leaseMs, checkMs: 20 }),
  });
  return { rounds, script, cache };
}

describe('rounds across the fleet', () => {
  it('one round per book: the second instance calls nobody and takes the leader’s answers as fresh', async () => {
    const pubsub = new MemoryPubSub();
    const shared = new FakeShared();
    const sellers = [seller('s1'), seller('s2')];
    const a = await instance('a', pubsub, shared, sellers);
    const b = await instance('b', pubsub, shared, sellers);

    const onA = a.rounds.search(BOOK, member('r1'));
    await until(() => a.script.isAsked('s1') && a.script.isAsked('s2'));
    // B's request for the same book (a lower budget: each member keeps its own rules).
    const onB = b.rounds.search(BOOK, member('r2', { maxTotalCents: 1_000 }));
    await until(() => b.rounds.totals().attached === 1);

    a.script.answer('s1', [offer(1_200)]);
    const ra = await onA.result;
    expect(ra.takeable.map((o) => o.totalCents)).toEqual([1_200]);
    // A's round ended with s2's call aborted; B still lacks an offer within its budget, so s2 is its to call now.
    await until(() => b.script.isAsked('s2'));
    expect(b.script.asked).toEqual(['s2']);
    b.script.answer('s2', [offer(900)]);
    const rb = await onB.result;
    expect(rb.takeable.map((o) => [o.sellerId, o.totalCents])).toEqual([['s2', 900]]);
    expect(rb.offers.find((o) => o.sellerId === 's1')?.fromCache).toBe(false);
    expect(a.script.asked.sort()).toEqual(['s1', 's2']);
    expect(b.rounds.totals()).toMatchObject({ attached: 1, cacheHits: 1, calls: 1 });
  });

  it('a burst on three instances: each seller is asked once in all, every request served', async () => {
    const pubsub = new MemoryPubSub();
    const shared = new FakeShared();
    const sellers = [seller('s1'), seller('s2')];
    const fleet = await Promise.all(['a', 'b', 'c'].map((n) => instance(n, pubsub, shared, sellers)));
    const tickets = [...Array(9)].map((_, i) => fleet[i % 3]!.rounds.search(BOOK, member(`r${i}`)));
    await until(() => fleet.reduce((n, f) => n + f.rounds.totals().attached, 0) === 2);
    const leader = fleet.find((f) => f.script.asked.length > 0)!;
    await until(() => leader.script.isAsked('s1') && leader.script.isAsked('s2'));
    leader.script.answer('s2', [offer(1_100)]);
    leader.script.answer('s1', [offer(1_000)]);
    const results = await Promise.all(tickets.map((t) => t.result));
    for (const r of results) expect(r.takeable.length).toBeGreaterThan(0);
    expect(fleet.flatMap((f) => f.script.asked).sort()).toEqual(['s1', 's2']);
  });

  it('a seller with a TTL of 0 is cached nowhere, yet its answer to the leader serves the attached round', async () => {
    const pubsub = new MemoryPubSub();
    const shared = new FakeShared();
    const sellers = [{ ...seller('s1'), offerTtlSeconds: 0 } as SellerRow];
    const a = await instance('a', pubsub, shared, sellers);
    const b = await instance('b', pubsub, shared, sellers);
    const onA = a.rounds.search(BOOK, member('r1'));
    await until(() => a.script.isAsked('s1'));
    const onB = b.rounds.search(BOOK, member('r2'));
    await until(() => b.rounds.totals().attached === 1);
    a.script.answer('s1', [offer(1_000)]);
    expect((await onA.result).takeable).toHaveLength(1);
    const rb = await onB.result;
    expect(rb.takeable.map((o) => [o.sellerId, o.totalCents, o.fromCache])).toEqual([['s1', 1_000, false]]);
    expect(b.script.asked).toEqual([]);
    expect(b.cache.get(BOOK.bookKey, 's1', 'new', Date.now())).toBeNull();
  });

  it('a leader that vanishes (its lease lapses) is taken over', async () => {
    const pubsub = new MemoryPubSub();
    const shared = new FakeShared();
    const sellers = [seller('s1')];
    // A leader that died: it holds the lease and never answers, renews or announces.
    await shared.claim(`${BOOK.bookKey}|new`, 'dead', 60);
    const b = await instance('b', pubsub, shared, sellers);
    const onB = b.rounds.search(BOOK, member('r1'));
    await until(() => b.rounds.totals().attached === 1);
    expect(b.script.asked).toEqual([]);
    await until(() => b.script.isAsked('s1'));
    b.script.answer('s1', [offer(1_000)]);
    expect((await onB.result).takeable).toHaveLength(1);
  });

  it('Redis down: every instance runs its own round', async () => {
    const pubsub = new MemoryPubSub();
    const shared = new FakeShared();
    shared.down = true;
    const sellers = [seller('s1')];
    const a = await instance('a', pubsub, shared, sellers);
    const b = await instance('b', pubsub, shared, sellers);
    const onA = a.rounds.search(BOOK, member('r1'));
    const onB = b.rounds.search(BOOK, member('r2'));
    await until(() => a.script.isAsked('s1') && b.script.isAsked('s1'));
    a.script.answer('s1', [offer(1_000)]);
    b.script.answer('s1', [offer(1_000)]);
    expect((await onA.result).takeable).toHaveLength(1);
    expect((await onB.result).takeable).toHaveLength(1);
  });
});
