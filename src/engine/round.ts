import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { LimitFunction } from 'p-limit';
import type { SellerRow } from '../db/schema.js';
import type { BookRef, PartnerConnector, QuoteOutcome } from '../partners/connector.js';
import type { ParsedOffer } from '../partners/mapping.js';
import type { Clock } from '../domain/clock.js';
import type { OfferCache } from './offer-cache.js';
import { type OfferCriteria, type SeenOffer, askedCondition, isValid, toSeenOffer } from './offers.js';
import type { SellerDirectory } from './seller-directory.js';
import { retryDecision } from './retry.js';
import { OpenCircuitError, type SellerGate, type SellerGates } from './seller-gate.js';
import type { SellerStats } from './seller-stats.js';
import type { Metrics } from '../infra/metrics.js';

export interface RoundBook extends BookRef {
  bookKey: string;
}

export interface RoundMember extends OfferCriteria {
  requestId: string;
}

export interface RoundResult {
  /** Every in-stock offer seen for the book, cached or fresh, in arrival order. */
  offers: SeenOffer[];
  /** Sellers that gave an answer (offers or "not carried"), fresh or from the cache. */
  answered: number;
  /** Sellers whose call failed (error, timeout, unreadable answer). */
  failed: number;
  /** Sellers that will answer later through a callback. */
  pending: number;
  /** Sellers consulted in all (answered + failed + pending). */
  consulted: number;
  /** True when the request left the round before it decided (canceled, expired, shutting down). */
  detached: boolean;
}

export interface RoundDeps {
  directory: SellerDirectory;
  connector: Pick<PartnerConnector, 'quote'>;
  cache: OfferCache;
  stats: SellerStats;
  clock: Clock;
  log: Logger;
  /** Cap on seller calls in flight across all sellers. */
  globalLimit: LimitFunction;
  /** Per seller: breaker, adaptive concurrency, Retry-After pauses. */
  gates: SellerGates;
  /** After the first valid offer, how long calls in flight may still beat it. 0 = decide at once. */
  improvementWindowMs: number;
  callbackUrl: (sellerId: string) => string;
  /** A seller's answer for a book changed from what was cached: watchers of the book may care. */
  onOffersChanged: (bookKey: string) => void;
  metrics?: Metrics;
}

export interface RoundTicket {
  result: Promise<RoundResult>;
  /** The request no longer needs offers: resolve it now, and stop calling sellers if nobody else does. */
  detach(): void;
}

/**
 * Rounds of quotes, coalesced by book: concurrent requests for the same book (and asked
 * condition) share one set of seller calls, each applying its own budget and conditions.
 */
export class RoundCoordinator {
  private readonly rounds = new Map<string, Round>();
  private calls = 0;
  private cacheHits = 0;
  private joined = 0;

  /** Rounds waiting for asynchronous quotes, by quote reference. */
  private readonly awaiting = new Map<string, Set<(offers: readonly ParsedOffer[]) => void>>();

  constructor(private readonly deps: RoundDeps) {}

  /** An asynchronous quote arrived (on this instance or another): wake the rounds waiting for it. */
  deliver(ref: string, offers: readonly ParsedOffer[]): void {
    const waiters = this.awaiting.get(ref);
    if (!waiters) return;
    this.awaiting.delete(ref);
    for (const w of waiters) w(offers);
  }

  /** Waits for an asynchronous quote to arrive by callback; null after `ms` or on abort. */
  readonly waitForQuote = (ref: string, ms: number, signal: AbortSignal = NEVER, since = 0): Promise<readonly ParsedOffer[] | null> =>
    new Promise((resolve) => {
      let set = this.awaiting.get(ref);
      if (!set) {
        set = new Set();
        this.awaiting.set(ref, set);
      }
      const waiters = set;
      const done = (offers: readonly ParsedOffer[] | null) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        waiters.delete(got);
        if (waiters.size === 0 && this.awaiting.get(ref) === waiters) this.awaiting.delete(ref);
        resolve(offers);
      };
      const got = (offers: readonly ParsedOffer[]) => done(offers);
      const onAbort = () => done(null);
      const timer = setTimeout(() => done(null), ms);
      waiters.add(got);
      signal.addEventListener('abort', onAbort, { once: true });
      // The callback may have landed before we started waiting: it is in the cache then.
      const parsed = parseQuoteRef(ref);
      const cached = parsed && this.deps.cache.get(parsed.bookKey, parsed.sellerId, parsed.condition, this.deps.clock.now().getTime());
      if (cached && cached.quotedAt >= since) done(cached.offers);
    });

  search(book: RoundBook, member: RoundMember): RoundTicket {
    const condition = askedCondition(member.conditions);
    const key = `${book.bookKey}|${condition}`;
    let round = this.rounds.get(key);
    if (round && round.accepting()) {
      this.joined += 1;
      this.deps.metrics?.roundMembers.inc({ how: 'joined' });
    } else {
      this.deps.metrics?.roundsStarted.inc();
      this.deps.metrics?.roundMembers.inc({ how: 'started' });
      round = new Round(this.deps, book, condition, () => this.rounds.delete(key), this.counters, this.waitForQuote);
      this.rounds.set(key, round);
      void round.run();
    }
    return round.add(member);
  }

  /** Rounds running now. */
  active(): number {
    return this.rounds.size;
  }

  /** Totals since start: seller calls made, answers served from cache, requests that joined a running round. */
  totals(): { calls: number; cacheHits: number; joined: number } {
    return { calls: this.calls, cacheHits: this.cacheHits, joined: this.joined };
  }

  private readonly counters = {
    call: () => {
      this.calls += 1;
      this.deps.metrics?.cacheLookups.inc({ result: 'miss' });
    },
    cacheHit: () => {
      this.cacheHits += 1;
      this.deps.metrics?.cacheLookups.inc({ result: 'hit' });
    },
    skipped: () => {
      this.deps.metrics?.callsSkipped.inc();
    },
  };
}

interface MemberState {
  spec: RoundMember;
  resolve: (r: RoundResult) => void;
  satisfiedAt: number | null;
  timer: NodeJS.Timeout | null;
  decided: boolean;
}

class Round {
  private readonly members = new Map<string, MemberState>();
  private readonly offers: SeenOffer[] = [];
  private readonly controller = (() => {
    const c = new AbortController();
    // Every call, retry wait and callback wait of the round listens on this one signal.
    setMaxListeners(0, c.signal);
    return c;
  })();
  private phase: 'running' | 'done' = 'running';
  private undecided = 0;
  private offersChanged = false;
  /** While true, offers are collected without deciding anyone (a batch of cached answers). */
  private batching = false;
  /** Set once a seller was passed over because nobody needed it: a newcomer could not rely on the round. */
  private skippedAny = false;
  private answered = 0;
  private failed = 0;
  private pending = 0;
  private wakeAllDecided: (() => void) | null = null;

  constructor(
    private readonly deps: RoundDeps,
    private readonly book: RoundBook,
    private readonly condition: 'new' | 'used' | 'any',
    private readonly onDone: () => void,
    private readonly counters: { call(): void; cacheHit(): void; skipped(): void },
    private readonly waitForQuote: (ref: string, ms: number, signal: AbortSignal, since: number) => Promise<readonly ParsedOffer[] | null>,
  ) {}

  /**
   * A request may join while the round is running and has not passed over any seller: offers
   * already seen are replayed to it, and it hears every answer still to come.
   */
  accepting(): boolean {
    return this.phase === 'running' && !this.skippedAny;
  }

  /** A method, not a field read, so checks after an await are not narrowed away by the compiler. */
  private isDone(): boolean {
    return this.phase === 'done';
  }

  add(spec: RoundMember): RoundTicket {
    let resolve!: (r: RoundResult) => void;
    const result = new Promise<RoundResult>((r) => (resolve = r));
    const m: MemberState = { spec, resolve, satisfiedAt: null, timer: null, decided: false };
    // A second ticket for the same request replaces nothing: each ticket is its own member.
    const id = `${spec.requestId}#${this.members.size}`;
    this.members.set(id, m);
    this.undecided += 1;
    if (this.offers.some((o) => isValid(o, spec))) this.satisfy(m);
    return { result, detach: () => this.decide(m, true) };
  }

  async run(): Promise<void> {
    try {
      const tiers = await this.deps.directory.tiers();
      for (const tier of tiers) {
        if (!this.needsMore()) break;
        const ordered = [...tier].sort((a, b) => this.deps.stats.score(a.id) - this.deps.stats.score(b.id));
        // Cached answers are all here at once: take every one before anyone decides, so early
        // exit never picks a dearer cached offer over a cheaper one that was equally at hand.
        this.batching = true;
        const uncached = ordered.filter((s) => !this.fromCache(s));
        this.batching = false;
        this.satisfyFromSeen();
        const allAsked = Promise.allSettled(uncached.map((s) => this.ask(s)));
        const allDecided = new Promise<void>((resolve) => (this.wakeAllDecided = resolve));
        await Promise.race([allAsked, allDecided]);
        this.wakeAllDecided = null;
      }
    } catch (e) {
      this.deps.log.error({ err: e, bookKey: this.book.bookKey }, 'round failed');
    } finally {
      this.finish();
    }
  }

  private needsMore(): boolean {
    for (const m of this.members.values()) if (!m.decided && m.satisfiedAt === null) return true;
    return false;
  }

  /** Takes the seller's cached answer if there is a fresh one. */
  private fromCache(seller: SellerRow): boolean {
    const cached = this.deps.cache.get(this.book.bookKey, seller.id, this.condition, this.deps.clock.now().getTime());
    if (!cached) return false;
    this.counters.cacheHit();
    this.heard(seller.id, 'answered');
    this.take(seller.id, cached.offers, cached.quotedAt, true);
    return true;
  }

  private async ask(seller: SellerRow): Promise<void> {
    if (!this.needsMore()) {
      this.skippedAny = true;
      this.counters.skipped();
      return;
    }
    const gate = this.deps.gates.get(seller);
    if (!gate.available()) {
      // Breaker open or the seller asked us to back off: skip it this round instead of piling on.
      this.heard(seller.id, 'failed');
      return;
    }
    await this.call(seller, gate);
  }

  private async call(seller: SellerRow, gate: SellerGate): Promise<void> {
    const { stats, connector, clock } = this.deps;
    const signal = this.controller.signal;
    let outcome: QuoteOutcome | null = null;
    let askedAt = 0;
    for (let retry = 1; ; retry++) {
      try {
        outcome = await gate.run(
          () =>
            this.deps.globalLimit(async (): Promise<QuoteOutcome | null> => {
              // Queued behind the caps: by now the call may no longer be needed.
              if (!this.needsMore() || signal.aborted) {
                this.skippedAny = true;
                this.counters.skipped();
                return null;
              }
              this.counters.call();
              stats.started(seller.id);
              askedAt = clock.now().getTime();
              const o = await connector.quote(seller, this.quoteParams(seller), signal);
              const aborted = o.kind === 'failed' && o.aborted;
              stats.finished(seller.id, { ok: o.kind !== 'failed', latencyMs: o.latencyMs, aborted });
              recordCall(this.deps.metrics, seller, 'quote', o);
              return o;
            }),
          classifyQuote,
        );
      } catch (e) {
        if (!(e instanceof OpenCircuitError)) throw e;
        outcome = null;
        this.heard(seller.id, 'failed');
        return;
      }
      if (outcome === null) return;
      if (this.isDone()) {
        // Nobody waits for this answer any more, but it is still a fresh quote: keep it.
        this.remember(seller, outcome, askedAt);
        return;
      }
      if (outcome.kind !== 'failed' || outcome.aborted) break;
      const next = retryDecision(outcome, retry, Math.min(1_000, seller.timeoutMs));
      if (!next.retry || !this.needsMore()) break;
      await sleep(next.delayMs, signal);
      if (signal.aborted) return;
    }
    if (outcome.kind === 'pending') {
      // The seller answers through a callback: wait for it as long as for a direct answer.
      const offers = await this.waitForQuote(quoteRef(seller.id, this.condition, this.book.bookKey), seller.timeoutMs, signal, askedAt);
      if (this.isDone()) return;
      if (offers === null) {
        this.heard(seller.id, 'pending');
        return;
      }
      this.heard(seller.id, 'answered');
      this.take(seller.id, offers, clock.now().getTime(), false);
      return;
    }
    switch (outcome.kind) {
      case 'offers':
      case 'not_carried': {
        const { offers, quotedAt } = this.remember(seller, outcome, askedAt);
        this.heard(seller.id, 'answered');
        this.take(seller.id, offers, quotedAt, false);
        return;
      }
      case 'failed':
        if (!outcome.aborted) this.heard(seller.id, 'failed');
        return;
      default: {
        const never: never = outcome;
        throw new Error(`unexpected quote outcome ${JSON.stringify(never)}`);
      }
    }
  }

  /** Caches a seller's answer; watchers of the book are woken when it differs from the last one. */
  private remember(seller: SellerRow, outcome: QuoteOutcome, quotedAt: number): { offers: readonly ParsedOffer[]; quotedAt: number } {
    if (outcome.kind !== 'offers' && outcome.kind !== 'not_carried') return { offers: [], quotedAt };
    const offers = outcome.kind === 'offers' ? outcome.offers : [];
    const changed = this.deps.cache.set(this.book.bookKey, seller.id, {
      offers,
      condition: this.condition,
      quotedAt,
      expiresAt: quotedAt + seller.offerTtlSeconds * 1000,
    });
    if (changed) {
      // Watchers of the book are woken once, when the round ends, however many answers changed.
      if (this.isDone()) this.deps.onOffersChanged(this.book.bookKey);
      else this.offersChanged = true;
    }
    return { offers, quotedAt };
  }

  /** Counts how a seller's part in the round ended (an answer, cached or fresh; a failure; a callback still to come). */
  private heard(sellerId: string, how: 'answered' | 'failed' | 'pending'): void {
    if (how === 'answered') this.answered += 1;
    else if (how === 'failed') this.failed += 1;
    else this.pending += 1;
  }

  private take(sellerId: string, offers: readonly ParsedOffer[], quotedAt: number, fromCache: boolean): void {
    for (const o of offers) {
      if (!o.available || (o.inventory !== null && o.inventory <= 0)) continue;
      const seen = toSeenOffer(sellerId, o, quotedAt, fromCache);
      this.offers.push(seen);
      if (this.batching) continue;
      for (const m of this.members.values()) {
        if (!m.decided && m.satisfiedAt === null && isValid(seen, m.spec)) this.satisfy(m);
      }
    }
  }

  private satisfyFromSeen(): void {
    for (const m of this.members.values()) {
      if (!m.decided && m.satisfiedAt === null && this.offers.some((o) => isValid(o, m.spec))) this.satisfy(m);
    }
  }

  private satisfy(m: MemberState): void {
    m.satisfiedAt = this.deps.clock.now().getTime();
    if (this.deps.improvementWindowMs <= 0) {
      this.decide(m, false);
      return;
    }
    m.timer = setTimeout(() => this.decide(m, false), this.deps.improvementWindowMs);
  }

  private decide(m: MemberState, detached: boolean): void {
    if (m.decided) return;
    m.decided = true;
    this.undecided -= 1;
    if (m.timer) clearTimeout(m.timer);
    m.resolve({
      offers: this.offers.slice(),
      answered: this.answered,
      failed: this.failed,
      pending: this.pending,
      consulted: this.answered + this.failed + this.pending,
      detached,
    });
    if (this.undecided === 0) {
      this.wakeAllDecided?.();
      // Nobody needs the calls still in flight: abort them rather than wait.
      if (this.phase === 'running') this.finish();
    }
  }

  private finish(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.onDone();
    for (const m of this.members.values()) this.decide(m, false);
    this.controller.abort();
    this.recordPrices();
    if (this.offersChanged) this.deps.onOffersChanged(this.book.bookKey);
  }

  private recordPrices(): void {
    let best = Infinity;
    const bySeller = new Map<string, number>();
    for (const o of this.offers) {
      if (o.fromCache) continue;
      best = Math.min(best, o.totalCents);
      bySeller.set(o.sellerId, Math.min(bySeller.get(o.sellerId) ?? Infinity, o.totalCents));
    }
    if (!Number.isFinite(best) || best <= 0) return;
    for (const [sellerId, total] of bySeller) this.deps.stats.priced(sellerId, total / best);
  }

  private quoteParams(seller: SellerRow) {
    return {
      book: { isbn: this.book.isbn, title: this.book.title, author: this.book.author },
      condition: this.condition,
      requestId: this.firstRequestId(),
      quoteRef: quoteRef(seller.id, this.condition, this.book.bookKey),
      callbackUrl: this.deps.callbackUrl(seller.id),
    };
  }

  private firstRequestId(): string {
    for (const m of this.members.values()) if (!m.decided) return m.spec.requestId;
    return this.members.values().next().value?.spec.requestId ?? '';
  }
}

function classifyQuote(o: QuoteOutcome | null) {
  if (o === null) return { failed: false, latencyMs: 0, aborted: true };
  if (o.kind !== 'failed') return { failed: false, latencyMs: o.latencyMs, aborted: false };
  return { failed: true, latencyMs: o.latencyMs, aborted: o.aborted, retryAfterMs: o.retryAfterMs, rateLimited: o.status === 429 };
}

/** Waits, or stops waiting as soon as the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** How a quote names its book and seller, so an asynchronous answer finds its way back. */
export function quoteRef(sellerId: string, condition: 'new' | 'used' | 'any', bookKey: string): string {
  return `${sellerId}:${condition}:${bookKey}`;
}

export function parseQuoteRef(ref: string): { sellerId: string; condition: 'new' | 'used' | 'any'; bookKey: string } | null {
  const m = /^([0-9a-f-]{36}):(new|used|any):(.+)$/i.exec(ref);
  return m ? { sellerId: m[1]!.toLowerCase(), condition: m[2] as 'new' | 'used' | 'any', bookKey: m[3]! } : null;
}

/** Counts one partner call and its latency, by seller, endpoint and outcome. */
export function recordCall(
  metrics: Metrics | undefined,
  seller: { name: string },
  endpoint: 'quote' | 'order' | 'orderStatus',
  o: { kind: string; latencyMs: number; timedOut?: boolean; aborted?: boolean; status?: number | null },
): void {
  if (!metrics) return;
  const outcome = o.kind === 'failed' || o.kind === 'unknown' ? (o.aborted ? 'aborted' : o.timedOut ? 'timeout' : o.status ? `http_${o.status}` : 'error') : o.kind;
  metrics.sellerCalls.inc({ seller: seller.name, endpoint, outcome });
  if (!o.aborted) metrics.sellerLatency.observe({ seller: seller.name, endpoint }, o.latencyMs / 1000);
}

const NEVER = new AbortController().signal;
