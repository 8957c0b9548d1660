import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { SellerRow } from '../db/schema.js';
import type { BookRef, QuoteOutcome } from '../partners/connector.js';
import type { ParsedOffer } from '../partners/mapping.js';
import type { Clock } from '../domain/clock.js';
import type { CachedQuote, OfferCache } from './offer-cache.js';
import { type OfferCriteria, type SeenOffer, askedCondition, isValid, toSeenOffer } from './offers.js';
import type { OfferSnapshot } from '../domain/types.js';
import type { SellerDirectory } from './seller-directory.js';
import type { SellerPipeline } from '../partners/pipeline.js';
import type { SellerStats } from '../partners/seller-stats.js';
import type { Metrics } from '../infra/metrics.js';
import { inSpan } from '../infra/tracing.js';

export interface RoundBook extends BookRef {
  bookKey: string;
}

export interface RoundMember extends OfferCriteria {
  requestId: string;
  /** Offers this request must not take: ones a seller already refused it, copies it lost. */
  excludes?: (o: OfferSnapshot) => boolean;
  /**
   * The best offer the user was last shown. A dearer offer does not satisfy the request until
   * that seller has been heard from in this round (cached or fresh): what was shown is never
   * silently beaten by a dearer order.
   */
  shown?: Pick<OfferSnapshot, 'sellerId' | 'totalCents'> | null;
}

export interface RoundResult {
  /** Every in-stock offer seen for the book, cached or fresh, in arrival order. */
  offers: SeenOffer[];
  /**
   * The offers this request can take, cheapest first: valid for it, not excluded, and not a
   * last copy that requests ahead of it in the round are taking.
   */
  takeable: SeenOffer[];
  /** Sellers that gave an answer (offers or "not carried"), fresh or from the cache. */
  answered: number;
  /** Sellers whose call failed (error, timeout, unreadable answer). */
  failed: number;
  /** Sellers that cannot answer this query (400/422: a title search they do not support). */
  unanswerable: number;
  /** Sellers that will answer later through a callback. */
  pending: number;
  /** Sellers consulted in all (answered + failed + pending). */
  consulted: number;
  /**
   * Sellers the round's call budget left unasked while this request still lacked an offer: a
   * later round asks them first. 0 when the round asked everyone it needed.
   */
  notAsked: number;
  /** True when the request left the round before it decided (canceled, expired, shutting down). */
  detached: boolean;
}

export interface RoundDeps {
  directory: SellerDirectory;
  /** Every seller call goes through it: breaker, adaptive concurrency, Retry-After, global cap, retries, stats. */
  pipeline: Pick<SellerPipeline, 'quote'>;
  cache: OfferCache;
  /** Live seller statistics (kept by the pipeline), to order the calls of a tier. */
  stats: SellerStats;
  clock: Clock;
  log: Logger;
  /** After the first valid offer, how long calls in flight may still beat it. 0 = decide at once. */
  improvementWindowMs: number;
  /**
   * The most sellers one round hears from: fresh cached answers (free, always all taken) count
   * first, calls make up the rest. Sellers beyond it are left to the next round for the book,
   * which asks them first. Absent: no limit.
   */
  maxSellersPerRound?: number;
  callbackUrl: (sellerId: string) => string;
  /** A seller's answer for a book changed from what was cached: watchers of the book may care. */
  onOffersChanged: (bookKey: string) => void;
  metrics?: Metrics;
  /** Rounds shared with other instances (Redis); absent: every round is this instance's own. */
  fleet?: RoundFleet;
}

/** How a round for a book runs across the fleet: it leads (calls the sellers), attaches to another instance's, or runs alone. */
export type RoundClaim = { kind: 'lead'; /** Ends the lease and tells attached rounds. */ end(): void } | { kind: 'attach' } | { kind: 'local' };

/**
 * One round per book across instances: one instance calls the sellers, the others attach and
 * take its answers from the shared cache as they land. Every method falls back (nothing warmed,
 * a local round) when the registry cannot be reached.
 */
export interface RoundFleet {
  /** Loads into the local cache, in one read, the answers other instances got for the book and this one lacks. */
  warm(bookKey: string, condition: 'new' | 'used' | 'any', sellerIds: readonly string[]): Promise<void>;
  claim(round: string): Promise<RoundClaim>;
  /**
   * Waits while another instance leads the round: `onAnswer` hears of each answer for the book
   * that lands here; resolves when the leader announces the end, its lease is gone, or `signal` aborts.
   */
  attend(round: string, bookKey: string, onAnswer: (sellerId: string, quote: CachedQuote) => void, signal: AbortSignal): Promise<void>;
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
  private attached = 0;

  /**
   * Per book and condition, the sellers that rounds cut short by the call budget have asked: the
   * next round asks the others first, so repeated rounds cover the whole fleet. Forgotten when a
   * round is not cut short; the oldest entry goes first past MAX_REMEMBERED_BOOKS.
   */
  private readonly askedBefore = new Map<string, Set<string>>();

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
      round = new Round(this.deps, book, condition, () => this.rounds.delete(key), this.counters, this.waitForQuote, this.coverage(key));
      this.rounds.set(key, round);
      void round.run();
    }
    return round.add(member);
  }

  /** How a round for `key` learns which sellers earlier cut-short rounds asked, and records its own. */
  private coverage(key: string): RoundCoverage {
    return {
      askedBefore: this.askedBefore.get(key) ?? EMPTY,
      record: (asked, cutShort, sellerCount) => {
        if (!cutShort) {
          this.askedBefore.delete(key);
          return;
        }
        let set = this.askedBefore.get(key);
        // Everyone has had a turn: start the rotation again.
        if (!set || set.size >= sellerCount) set = new Set();
        for (const id of asked) set.add(id);
        this.askedBefore.delete(key);
        this.askedBefore.set(key, set);
        if (this.askedBefore.size > MAX_REMEMBERED_BOOKS) this.askedBefore.delete(this.askedBefore.keys().next().value!);
      },
    };
  }

  /** Rounds running now. */
  active(): number {
    return this.rounds.size;
  }

  /**
   * Totals since start: seller calls made, answers served from cache (the fleet's included),
   * requests that joined a running round, rounds attached to one another instance led.
   */
  totals(): { calls: number; cacheHits: number; joined: number; attached: number } {
    return { calls: this.calls, cacheHits: this.cacheHits, joined: this.joined, attached: this.attached };
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
    skipped: (n = 1) => {
      this.deps.metrics?.callsSkipped.inc(n);
    },
    attached: () => {
      this.attached += 1;
      this.deps.metrics?.roundsAttached.inc();
    },
  };
}

interface RoundCoverage {
  /** Sellers asked by earlier rounds for the book that the call budget cut short. */
  askedBefore: ReadonlySet<string>;
  /** The sellers this round called, whether the budget cut it short, and how many sellers it could ask. */
  record(asked: readonly string[], cutShort: boolean, sellerCount: number): void;
}

const EMPTY: ReadonlySet<string> = new Set();

/**
 * Why a round's calls and waits still running are cut: one value for every round, since nothing
 * reads more than the abort itself. (`abort()` with no reason builds a DOMException, stack trace
 * and all, for each round: half a percent of the broker's CPU in the fan-out benchmark.)
 */
const ROUND_OVER = new DOMException('The round is over', 'AbortError');

interface MemberState {
  spec: RoundMember;
  resolve: (r: RoundResult) => void;
  /** Offers it can take now, cheapest first; frozen once it is decided. */
  candidates: SeenOffer[];
  /** When it first had a takeable offer (its improvement window runs from then); null while it has none. */
  satisfiedAt: number | null;
  timer: NodeJS.Timeout | null;
  decided: boolean;
  /** Left before deciding: it takes no copy. */
  detached: boolean;
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
  /** Seller calls this round sent, retries included; answers it took from the cache; calls it avoided. */
  private sent = 0;
  private cacheHits = 0;
  private skippedCalls = 0;
  /** Calls still waiting for an answer, and how many of them the round's end cut short. */
  private callsInFlight = 0;
  private abortedCalls = 0;
  private unanswerable = 0;
  /** Sellers the call budget left unasked while a member still lacked an offer. */
  private notAsked = 0;
  private failed = 0;
  private pending = 0;
  /** Sellers whose part in this round has ended, however it ended. */
  private readonly heardFrom = new Set<string>();
  /** The sellers this round may ask, once the directory has been read. */
  private sellerIds: ReadonlySet<string> | null = null;
  private wakeAllDecided: (() => void) | null = null;

  constructor(
    private readonly deps: RoundDeps,
    private readonly book: RoundBook,
    private readonly condition: 'new' | 'used' | 'any',
    private readonly onDone: () => void,
    private readonly counters: { call(): void; cacheHit(): void; skipped(n?: number): void; attached(): void },
    private readonly waitForQuote: (ref: string, ms: number, signal: AbortSignal, since: number) => Promise<readonly ParsedOffer[] | null>,
    private readonly coverage: RoundCoverage,
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
    const m: MemberState = { spec, resolve, candidates: [], satisfiedAt: null, timer: null, decided: false, detached: false };
    // A second ticket for the same request replaces nothing: each ticket is its own member.
    const id = `${spec.requestId}#${this.members.size}`;
    this.members.set(id, m);
    this.undecided += 1;
    this.reassign();
    return { result, detach: () => this.decide(m, true) };
  }

  /** Runs the round in its span (a child of the request that started it). */
  run(): Promise<void> {
    return inSpan('round', { 'broker.book': this.book.bookKey, 'broker.condition': this.condition }, async (span) => {
      try {
        await this.runRound();
      } finally {
        span.setAttributes({
          'broker.round.members': this.members.size,
          'broker.round.calls': this.sent,
          'broker.round.cache_hits': this.cacheHits,
          'broker.round.calls_skipped': this.skippedCalls,
          'broker.round.calls_aborted': this.abortedCalls,
          'broker.round.early_exit': this.skippedCalls + this.abortedCalls > 0,
        });
      }
    });
  }

  private async runRound(): Promise<void> {
    const fleet = this.deps.fleet;
    let endLead: (() => void) | null = null;
    try {
      const tiers = await this.deps.directory.tiers();
      this.sellerIds = new Set(tiers.flat().map((seller) => seller.id));
      await fleet?.warm(this.book.bookKey, this.condition, [...this.sellerIds]);
      // Fresh cached answers of every tier cost nothing: take them all before anyone decides, so
      // early exit never picks a dearer offer over a cheaper one that was equally at hand. Tiers
      // order only the calls.
      // One read of the book's answers, not one lookup per registered seller.
      const cached = this.deps.cache.answers(this.book.bookKey, this.condition, this.deps.clock.now().getTime());
      this.batching = true;
      let uncachedTiers = tiers.map((tier) => tier.filter((s) => !this.takeCached(s.id, cached.get(s.id) ?? null)));
      this.batching = false;
      this.reassign();
      if (fleet && this.needsMore() && uncachedTiers.some((tier) => tier.length > 0)) {
        endLead = await this.lead(fleet);
        uncachedTiers = uncachedTiers.map((tier) => tier.filter((s) => !this.heardFrom.has(s.id)));
      }
      // Sellers never asked because every request was satisfied first: the early exit's savings.
      let unasked = uncachedTiers.reduce((n, tier) => n + tier.length, 0);
      // Best-ranked first; sellers that earlier rounds cut short by the budget asked go last.
      const before = this.coverage.askedBefore;
      const rank = (s: SellerRow) => (before.has(s.id) ? 1e9 : 0) + this.deps.stats.score(s.id);
      const ranked = uncachedTiers.map((tier) => [...tier].sort((a, b) => rank(a) - rank(b)));
      const next = ranked.map(() => 0);
      // Answers at hand count against the budget: once a book's cache holds that many, its rounds
      // call nobody until they expire, however many requests come, as with a small fleet.
      const budget = Math.max(0, (this.deps.maxSellersPerRound ?? Infinity) - this.heardFrom.size);
      const asked: string[] = [];
      // Waves, breadth-first across tiers: each tier's first wave, in tier order, before any
      // tier's second, and so on with waves twice the size. A wave is asked only while some
      // request still lacks an offer, and only within the round's budget of sellers, so a round costs
      // about the same with 8 sellers (every tier fits in its first wave: tier by tier, as always)
      // or 1,000, where a book only lower tiers carry no longer waits for every tier-1 seller to
      // say no first, and a book nobody has within budget is not asked of every seller at once.
      for (let size = FIRST_WAVE; this.needsMore() && asked.length < budget && ranked.some((tier, t) => next[t]! < tier.length); size *= 2) {
        for (let t = 0; t < ranked.length && this.needsMore() && asked.length < budget; t++) {
          const from = next[t]!;
          const wave = ranked[t]!.slice(from, from + Math.min(size, budget - asked.length));
          if (wave.length === 0) continue;
          next[t] = from + wave.length;
          unasked -= wave.length;
          for (const s of wave) asked.push(s.id);
          const allAsked = Promise.allSettled(wave.map((s) => this.ask(s)));
          const allDecided = new Promise<void>((resolve) => (this.wakeAllDecided = resolve));
          await Promise.race([allAsked, allDecided]);
          this.wakeAllDecided = null;
        }
      }
      const cutShort = unasked > 0 && this.needsMore();
      if (cutShort) this.notAsked = unasked;
      else if (unasked > 0) this.skip(unasked);
      this.coverage.record(asked, cutShort, this.sellerIds.size);
    } catch (e) {
      this.deps.log.error({ err: e, bookKey: this.book.bookKey }, 'round failed');
    } finally {
      this.finish();
      endLead?.();
    }
  }

  /**
   * One round per book across the fleet: leads it (returns how to end the lead), or, while
   * another instance leads it, calls nobody and takes that round's answers as they land here.
   * When the leader ends (or vanishes) and members here still lack an offer, the sellers not
   * heard from are this round's to call: it leads, or attaches to whoever took over first.
   */
  private async lead(fleet: RoundFleet): Promise<(() => void) | null> {
    const round = `${this.book.bookKey}|${this.condition}`;
    let attached = false;
    for (;;) {
      const claim = await fleet.claim(round);
      if (claim.kind === 'lead') return claim.end;
      if (claim.kind === 'local' || this.isDone()) return null;
      if (!attached) {
        attached = true;
        this.counters.attached();
      }
      // Answers that landed while the claim was in flight: in the cache already, as cached answers.
      for (const id of this.sellerIds ?? []) if (!this.heardFrom.has(id)) this.fromCache(id);
      // Answers to the leader's calls, landing while this round runs: as fresh as a local member's
      // share of its own round's calls (an order on them needs no revalidation).
      await fleet.attend(round, this.book.bookKey, (sellerId, quote) => this.fromFleet(sellerId, quote), this.controller.signal);
      if (this.isDone() || !this.needsMore()) return null;
      if (![...(this.sellerIds ?? [])].some((id) => !this.heardFrom.has(id))) return null;
    }
  }

  /**
   * An answer the leader's round got for this book landed here. Taken from the message, not the
   * cache: a seller whose TTL is 0 is cached nowhere, and its answer still serves this round.
   */
  private fromFleet(sellerId: string, quote: CachedQuote): void {
    if (this.isDone() || this.heardFrom.has(sellerId) || !this.sellerIds?.has(sellerId)) return;
    // An answer to 'any' serves every round; one to 'new' or 'used' only the same.
    if (quote.condition !== this.condition && quote.condition !== 'any') return;
    this.cacheHits += 1;
    this.counters.cacheHit();
    this.heard(sellerId, quote.unanswerable ? 'unanswerable' : 'answered');
    this.take(sellerId, quote.offers, quote.quotedAt, false);
  }

  private skip(n = 1): void {
    this.skippedCalls += n;
    this.counters.skipped(n);
  }

  private needsMore(): boolean {
    for (const m of this.members.values()) if (!m.decided && m.satisfiedAt === null) return true;
    return false;
  }

  /** Takes the seller's cached answer if there is a fresh one. */
  private fromCache(sellerId: string): boolean {
    return this.takeCached(sellerId, this.deps.cache.get(this.book.bookKey, sellerId, this.condition, this.deps.clock.now().getTime()));
  }

  private takeCached(sellerId: string, cached: CachedQuote | null): boolean {
    if (!cached) return false;
    this.cacheHits += 1;
    this.counters.cacheHit();
    this.heard(sellerId, cached.unanswerable ? 'unanswerable' : 'answered');
    this.take(sellerId, cached.offers, cached.quotedAt, true);
    return true;
  }

  private async ask(seller: SellerRow): Promise<void> {
    if (!this.needsMore()) {
      this.skippedAny = true;
      this.skip();
      return;
    }
    await this.call(seller);
  }

  /** One seller's part in the round, through the seller-call pipeline (gate, caps, retries, stats). */
  private async call(seller: SellerRow): Promise<void> {
    const { clock } = this.deps;
    const signal = this.controller.signal;
    let askedAt = 0;
    let inFlight = false;
    const outcome = await this.deps.pipeline.quote(seller, this.quoteParams(seller), {
      signal,
      stillNeeded: () => this.needsMore(),
      onSend: () => {
        this.counters.call();
        this.sent += 1;
        if (!inFlight) this.callsInFlight += 1;
        inFlight = true;
        askedAt = clock.now().getTime();
      },
    });
    if (inFlight) this.callsInFlight -= 1;
    if (outcome.kind === 'refused') {
      if (outcome.why === 'not_needed') {
        // Queued behind the caps until nobody needed it any more.
        this.skippedAny = true;
        this.skip();
      } else {
        // Breaker open or the seller asked us to back off: skipped this round instead of piling on.
        this.heard(seller.id, 'failed');
      }
      return;
    }
    if (this.isDone()) {
      // Nobody waits for this answer any more, but it is still a fresh quote: keep it.
      this.remember(seller, outcome, askedAt);
      return;
    }
    switch (outcome.kind) {
      case 'pending': {
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
      case 'offers':
      case 'not_carried': {
        const { offers, quotedAt } = this.remember(seller, outcome, askedAt);
        this.heard(seller.id, 'answered');
        this.take(seller.id, offers, quotedAt, false);
        return;
      }
      case 'unanswerable':
        // No offers from it for this query, and not its fault (the pipeline counted it toward nothing).
        this.remember(seller, outcome, askedAt);
        this.heard(seller.id, 'unanswerable');
        return;
      case 'failed':
        if (outcome.cause.kind !== 'aborted') this.heard(seller.id, 'failed');
        return;
      default: {
        const never: never = outcome;
        throw new Error(`unexpected quote outcome ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * Caches a seller's answer; watchers of the book are woken when it differs from the last one.
   * A query the seller cannot answer is cached too: the same book key asks the same query.
   */
  private remember(seller: SellerRow, outcome: QuoteOutcome, quotedAt: number): { offers: readonly ParsedOffer[]; quotedAt: number } {
    if (outcome.kind !== 'offers' && outcome.kind !== 'not_carried' && outcome.kind !== 'unanswerable') return { offers: [], quotedAt };
    const offers = outcome.kind === 'offers' ? outcome.offers : [];
    const changed = this.deps.cache.set(this.book.bookKey, seller.id, {
      offers,
      condition: this.condition,
      quotedAt,
      expiresAt: quotedAt + seller.offerTtlSeconds * 1000,
      ...(outcome.kind === 'unanswerable' ? { unanswerable: true } : {}),
    });
    if (changed) {
      // Watchers of the book are woken once, when the round ends, however many answers changed.
      if (this.isDone()) this.deps.onOffersChanged(this.book.bookKey);
      else this.offersChanged = true;
    }
    return { offers, quotedAt };
  }

  /**
   * Counts how a seller's part in the round ended: an answer (cached or fresh), a query it
   * cannot answer, a failure, or a callback still to come.
   */
  private heard(sellerId: string, how: 'answered' | 'unanswerable' | 'failed' | 'pending'): void {
    this.heardFrom.add(sellerId);
    if (how === 'answered') this.answered += 1;
    else if (how === 'unanswerable') this.unanswerable += 1;
    else if (how === 'failed') this.failed += 1;
    else this.pending += 1;
    // An answer's offers follow in take(), which reassigns with them in hand.
    if (how !== 'answered') this.reassign();
  }

  /**
   * Works out, member by member in the order they joined, which offers each can still take:
   * valid for it, not excluded for it, and — where the seller told its inventory — not a copy
   * that members ahead of it are taking (each member's cheapest takeable offer claims one copy).
   * A member is satisfied once it has one, and, when it was shown a cheaper offer before, once
   * that seller has been heard from too; the round keeps asking while any member is not.
   */
  private reassign(): void {
    if (this.batching) return;
    const sorted = [...this.offers].sort(cheapestFirst);
    const claimed = new Map<string, number>();
    const changed: MemberState[] = [];
    for (const m of this.members.values()) {
      if (m.detached) continue;
      if (!m.decided) {
        m.candidates = sorted.filter(
          (o) => isValid(o, m.spec) && !m.spec.excludes?.(o) && (o.inventory === null || (claimed.get(copyKey(o)) ?? 0) < o.inventory),
        );
      }
      const pick = m.candidates[0];
      if (pick && pick.inventory !== null) claimed.set(copyKey(pick), (claimed.get(copyKey(pick)) ?? 0) + 1);
      if (!m.decided && this.isSatisfied(m) !== (m.satisfiedAt !== null)) changed.push(m);
    }
    // Decisions wait until every member's candidates are worked out: deciding may end the round.
    for (const m of changed) {
      if (m.decided) continue;
      if (m.satisfiedAt === null) this.satisfy(m);
      else this.unsatisfy(m);
    }
  }

  private isSatisfied(m: MemberState): boolean {
    const pick = m.candidates[0];
    if (!pick) return false;
    const shown = m.spec.shown;
    if (!shown || pick.totalCents <= shown.totalCents || this.heardFrom.has(shown.sellerId)) return true;
    // A seller no longer configured will not be heard from: what it showed is gone.
    return this.sellerIds !== null && !this.sellerIds.has(shown.sellerId);
  }

  private take(sellerId: string, offers: readonly ParsedOffer[], quotedAt: number, fromCache: boolean): void {
    for (const o of offers) {
      if (!o.available || (o.inventory !== null && o.inventory <= 0)) continue;
      this.offers.push(toSeenOffer(sellerId, o, quotedAt, fromCache));
    }
    this.reassign();
  }

  private satisfy(m: MemberState): void {
    m.satisfiedAt = this.deps.clock.now().getTime();
    if (this.deps.improvementWindowMs <= 0) {
      this.decide(m, false);
      return;
    }
    m.timer = setTimeout(() => this.decide(m, false), this.deps.improvementWindowMs);
  }

  /** Its takeable offer went to a member ahead of it: it needs more offers again. */
  private unsatisfy(m: MemberState): void {
    m.satisfiedAt = null;
    if (m.timer) clearTimeout(m.timer);
    m.timer = null;
  }

  private decide(m: MemberState, detached: boolean): void {
    if (m.decided) return;
    m.decided = true;
    m.detached = detached;
    this.undecided -= 1;
    if (m.timer) clearTimeout(m.timer);
    m.resolve({
      offers: this.offers.slice(),
      takeable: detached ? [] : m.candidates.slice(),
      answered: this.answered,
      unanswerable: this.unanswerable,
      failed: this.failed,
      pending: this.pending,
      consulted: this.answered + this.unanswerable + this.failed + this.pending,
      notAsked: this.notAsked,
      detached,
    });
    // A member that left takes no copy: those behind it may take it instead.
    if (detached && this.phase === 'running') this.reassign();
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
    this.abortedCalls = this.callsInFlight;
    this.controller.abort(ROUND_OVER);
    this.deps.metrics?.roundCalls.observe(this.sent);
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

/** Cheapest landed total first; at equal totals a fresh quote before a cached one (it needs no revalidation). */
function cheapestFirst(a: SeenOffer, b: SeenOffer): number {
  return a.totalCents - b.totalCents || Number(a.fromCache) - Number(b.fromCache);
}

/** One seller's stock of one offer: what known inventory counts. */
function copyKey(o: SeenOffer): string {
  return `${o.sellerId}|${o.condition}|${o.offerId ?? ''}`;
}

/** How a quote names its book and seller, so an asynchronous answer finds its way back. */
export function quoteRef(sellerId: string, condition: 'new' | 'used' | 'any', bookKey: string): string {
  return `${sellerId}:${condition}:${bookKey}`;
}

export function parseQuoteRef(ref: string): { sellerId: string; condition: 'new' | 'used' | 'any'; bookKey: string } | null {
  const m = /^([0-9a-f-]{36}):(new|used|any):(.+)$/i.exec(ref);
  return m ? { sellerId: m[1]!.toLowerCase(), condition: m[2] as 'new' | 'used' | 'any', bookKey: m[3]! } : null;
}

const NEVER = new AbortController().signal;
/** Books (and conditions) whose cut-short rounds are remembered, to ask other sellers next time. */
const MAX_REMEMBERED_BOOKS = 10_000;

/** Sellers of each tier asked in the first wave; twice as many in each further wave, while a request still lacks an offer. */
const FIRST_WAVE = 4;
