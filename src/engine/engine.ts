import type { Logger } from 'pino';
import type { Db } from '../db/client.js';
import { attemptsForRequests, claimDueAttempts, orphanedOrdering } from '../db/queries/attempts.js';
import { batchLoader } from '../db/batch-loader.js';
import { type Release, cutAttemptHolds, handBackRequests, releaseAttempts, releaseRequests } from '../db/queries/releases.js';
import { retryLockRaces } from '../db/errors.js';
import { claimDueRequests, extendLeases, findExpiredActive, nextDue, wakeWatchers } from '../db/queries/work.js';
import type { RequestRow, SellerRow } from '../db/schema.js';
import type { Channel } from '../infra/channel.js';
import type { Metrics } from '../infra/metrics.js';
import type { PubSub } from '../infra/pubsub.js';
import type { Clock } from '../domain/clock.js';
import { isTerminal, canTransition } from '../domain/lifecycle.js';
import { OfferExclusions, evaluate, snapshot } from './offers.js';
import { bookOf, money } from '../domain/books.js';
import { SEARCHABLE } from '../domain/statuses.js';
import { events } from '../domain/events.js';
import type { AttemptDriver } from './attempt-driver.js';
import type { OrderingService } from './ordering.js';
import type { Change, NewWork, RequestService, WorkLease } from '../services/requests.js';
import type { RoundCoordinator, RoundResult, RoundTicket } from './round.js';
import type { SellerDirectory } from './seller-directory.js';
import type { OfferCache } from './offer-cache.js';
import { parseQuoteRef } from './round.js';
import { type ParsedOffer, type QuoteMapping, parseQuoteResponse } from '../partners/mapping.js';
import type { OfferSnapshot, RequestStatus } from '../domain/types.js';
import { ROOT_CONTEXT, context, trace } from '@opentelemetry/api';
import { inSpan, tracer } from '../infra/tracing.js';

export interface EngineConfig {
  /** Longest wait between looks at the database for due work (work on other instances, missed signals). */
  pollMs: number;
  /** Requests in a round or ordering at once on this instance; the rest wait, PENDING, in the database. */
  maxActive: number;
  /** How long a claimed request stays leased without a heartbeat before another instance may take it. */
  leaseMs: number;
  /** First recheck of a QUOTED / OUT_OF_STOCK request; doubles per quiet recheck up to recheckMaxMs. */
  recheckBaseMs: number;
  recheckMaxMs: number;
  /** How often unfinished order attempts are looked for (start-up runs one at once). */
  reconcileIntervalMs: number;
}

export interface EngineDeps {
  db: Db;
  requests: RequestService;
  rounds: RoundCoordinator;
  ordering: OrderingService;
  driver: AttemptDriver;
  directory: SellerDirectory;
  cache: OfferCache;
  pubsub: PubSub;
  clock: Clock;
  log: Logger;
  owner: string;
  config: EngineConfig;
  metrics?: Metrics;
}

/** Cross-instance nudges: new or changed work is due, or a request no longer needs offers. */
type Signal = { type: 'wake' } | { type: 'closed'; id: string };
const SIGNALS = 'engine:signals';
/** Asynchronous quotes received by any instance, for every instance's cache and waiting rounds. */
interface QuoteArrival {
  ref: string;
  sellerId: string;
  condition: 'new' | 'used' | 'any';
  bookKey: string;
  quotedAt: number;
  ttlMs: number;
  offers: ParsedOffer[];
}
const QUOTES = 'engine:quotes';
/** Wakes closer together than this share one tick: its claim takes up to 100 requests at once. */
const MIN_TICK_SPACING_MS = 25;

/** Rounds in one claim of a request when what it meant to take keeps slipping away. */
const SEARCH_PASSES = 3;
/** Recheck of a request whose offers within budget were held by others. */
const BLOCKED_RECHECK_MS = 2_000;
/** A request whose processing failed (a dependency down) is tried again after this, doubling per failure up to the max, jittered. */
const FAILURE_RETRY_MS = 250;
const FAILURE_RETRY_MAX_MS = 5_000;
/** Requests whose failures are counted at once; past it the oldest counts are forgotten (they restart at the shortest delay). */
const MAX_FAILURE_COUNTS = 10_000;

interface Active {
  ticket: RoundTicket | null;
  closed: boolean;
}

/**
 * The resolution engine's loop (SPEC §3): claims due requests from the database under a lease,
 * runs their rounds, decides, and hands valid offers to ordering; expires requests at their
 * deadline; finishes order attempts left unresolved. The database holds every bit of state:
 * this object can vanish at any moment and another instance (or this one, restarted) resumes.
 */
export class Engine implements NewWork {
  private phase: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private readonly active = new Map<string, Active>();
  private readonly running = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private reconcileTimer: NodeJS.Timeout | null = null;
  private ticking = false;
  private again = false;
  private lastTick = 0;
  /** The earliest deadline of an active request as the last tick read it; null: unknown, so look. */
  private earliestExpiry: number | null = null;
  private reconciling = false;
  /** Consecutive failed runs per request, for the backoff of its next one. */
  private readonly failures = new Map<string, number>();
  private signals: Channel<Signal> | null = null;
  private quotes: Channel<QuoteArrival> | null = null;
  /** A wake for other instances, due shortly, while this one hands work back as it stops. */
  private handover: NodeJS.Timeout | null = null;
  /** Leases given to requests being created here, each with the hold `stop` waits for. */
  private readonly adopting = new Map<WorkLease, () => void>();
  /** A request created while the engine was full may still be waiting in the database: creates go through the claim. */
  private backlog = false;

  constructor(private readonly d: EngineDeps) {}

  /** Leases handed back in one tick, by every request this instance finished with, in one statement. */
  private readonly releases = batchLoader<Release, void>(
    async (batch) => {
      await retryLockRaces(() => releaseRequests(this.d.db, batch));
      return batch.map(() => undefined);
    },
    { maxBatchSize: 200 },
  );

  /** The wakes of every round that ended in one tick, in one statement; each learns how many that statement woke. */
  private readonly wakes = batchLoader<{ bookKey: string; at: Date }, number>(
    async (batch) => {
      const woken = await retryLockRaces(() => wakeWatchers(this.d.db, batch));
      return batch.map(() => woken);
    },
    { maxBatchSize: 200 },
  );

  async start(): Promise<void> {
    if (this.phase !== 'idle') throw new Error(`engine cannot start from ${this.phase}`);
    this.phase = 'running';
    this.signals = await this.d.pubsub.subscribe<Signal>(SIGNALS);
    void this.listen(this.signals);
    this.quotes = await this.d.pubsub.subscribe<QuoteArrival>(QUOTES);
    void this.listenQuotes(this.quotes);
    this.heartbeat = setInterval(() => void this.beat(), Math.max(100, Math.floor(this.d.config.leaseMs / 3)));
    this.reconcileTimer = setInterval(() => void this.reconcile(), this.d.config.reconcileIntervalMs);
    this.heartbeat.unref();
    this.reconcileTimer.unref();
    void this.reconcile();
    this.wake();
  }

  /**
   * Stops at once taking new work, hands back at once the requests in a round (quotes are safe
   * to ask again: another instance runs the round anew), and lets steps already under way —
   * an order attempt's calls above all — finish within `graceMs`. What is still running then is
   * handed back too (`handBack`). Other instances are told to look for work as it is handed back.
   */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.phase !== 'running') return;
    this.phase = 'stopping';
    // The heartbeat goes on: the requests still being worked on stay this instance's until handed back.
    for (const t of [this.timer, this.reconcileTimer]) if (t) clearTimeout(t);
    this.signals?.close();
    this.quotes?.close();
    for (const a of this.active.values()) a.ticket?.detach();
    const deadline = Date.now() + graceMs;
    while (this.running.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.running]),
        new Promise((r) => (timer = setTimeout(r, deadline - Date.now()))),
      ]);
      clearTimeout(timer);
    }
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.running.size > 0) await this.handBack();
    if (this.handover) clearTimeout(this.handover);
    // Not awaited: with the bus down the wake is lost, and other instances poll anyway.
    void this.signal({ type: 'wake' });
    this.phase = 'stopped';
  }

  /**
   * The grace is over and steps are still running: their requests are handed back now (lease
   * ended, due now), and the holds on attempts being driven are cut to their calls' deadlines
   * (`cutAttemptHolds` says why not sooner). Whatever this instance writes after this is guarded
   * like any writer's: by state and revision, and a lease another instance took is never undone.
   */
  private async handBack(): Promise<void> {
    const { db, owner, clock, log } = this.d;
    const now = clock.now();
    const ids = [...this.active.keys()];
    const [requests, attempts] = await Promise.allSettled([
      retryLockRaces(() => handBackRequests(db, { owner, ids, now })),
      retryLockRaces(() => cutAttemptHolds(db, { owner, now })),
    ]);
    for (const r of [requests, attempts]) if (r.status === 'rejected') log.error({ err: r.reason }, 'could not hand work back; its leases lapse instead');
    log.warn(
      {
        running: this.running.size,
        requests: requests.status === 'fulfilled' ? requests.value : null,
        attempts: attempts.status === 'fulfilled' ? attempts.value : null,
      },
      'work still running at the end of the shutdown grace was handed back',
    );
  }

  /** Work this instance is doing that `stop` waits for; call the returned function when it is done. */
  private hold(): () => void {
    let done!: () => void;
    const work = new Promise<void>((resolve) => (done = resolve));
    this.running.add(work);
    return () => {
      this.running.delete(work);
      done();
    };
  }

  /**
   * After `stop`, work still running fails as the pools close under it: that is the shutdown
   * cutting it off (what it held was handed back), not a failure to retry or to alert on.
   */
  private cutOff(err: unknown, fields: Record<string, unknown>): boolean {
    if (this.phase !== 'stopped') return false;
    this.d.log.debug({ err, ...fields }, 'work cut off by the shutdown');
    return true;
  }

  /** Work was handed back while stopping: other instances look now, not at their next poll. */
  private announceHandover(): void {
    if (this.handover) return;
    this.handover = setTimeout(() => {
      this.handover = null;
      void this.signal({ type: 'wake' });
    }, MIN_TICK_SPACING_MS);
  }

  /**
   * Claim-on-create (NewWork): a request created on this instance is written leased to this
   * engine while it runs and has room, counting the creates in flight, so that it starts at once.
   * Once the engine had no room for one, not until a claim has taken all the due work there was
   * (`backlog`): new requests queue behind the ones written before them, through the claim, in due
   * order. A crash before it starts leaves a lease that lapses, as one taken by a claim would.
   * Due rechecks alone do not hold new requests back: a new request's first search comes first.
   */
  lease(): WorkLease | null {
    if (this.phase !== 'running' || this.backlog) return null;
    if (this.active.size + this.adopting.size >= this.d.config.maxActive) {
      // This request waits for a claim; those created after it wait behind it.
      this.backlog = true;
      return null;
    }
    const lease = { owner: this.d.owner, until: new Date(this.d.clock.now().getTime() + this.d.config.leaseMs) };
    this.adopting.set(lease, this.hold());
    return lease;
  }

  taken(lease: WorkLease, row: RequestRow | null): void {
    const done = this.adopting.get(lease);
    if (!done) return;
    this.adopting.delete(lease);
    try {
      // Already being worked on here (claimed after its lease lapsed): nothing to start or hand back.
      if (!row || this.active.has(row.id)) return done();
      // Started only with a lease the heartbeat can renew in time: a create that waited long for
      // its statement hands the request back, due now, rather than race a claim of a lapsed lease.
      const left = lease.until.getTime() - this.d.clock.now().getTime();
      if (this.phase === 'running' && left > this.d.config.leaseMs / 2) {
        // Its own trace, as a claimed request's: the create's operation is over when it answers.
        const claim = tracer().startSpan('engine.claim', { attributes: { 'broker.claimed': 1, 'broker.claim.on_create': true } }, ROOT_CONTEXT);
        claim.end();
        context.with(trace.setSpan(ROOT_CONTEXT, claim), () => this.launch(row));
        this.d.metrics?.requestsTaken.inc({ how: 'on_create' });
        return done();
      }
      // Began to stop while the request was being written, or the lease ran short.
      void this.releaseUnstarted([row])
        .catch((err: unknown) => this.d.log.warn({ err, requestId: row.id }, 'could not hand back a new request; its lease lapses instead'))
        .finally(done);
    } catch (err) {
      done();
      throw err;
    }
  }

  /** Hooked to every committed request change on this instance. */
  onCommitted(row: RequestRow, change: Change): void {
    // A request created leased to this engine is already being worked on: nobody need look.
    if (change.type === 'CREATED' && row.leaseOwner === this.d.owner) return;
    if (change.type === 'CREATED' || change.type === 'UPDATED') void this.signal({ type: 'wake' });
    else if (isTerminal(row.status)) void this.signal({ type: 'closed', id: row.id });
  }

  /** Requests this instance is working on now. */
  activeCount(): number {
    return this.active.size;
  }

  roundsInFlight(): number {
    return this.d.rounds.active();
  }

  wake(): void {
    if (this.phase !== 'running') return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.schedule(this.lastTick + MIN_TICK_SPACING_MS - this.d.clock.now().getTime());
  }

  private async signal(s: Signal): Promise<void> {
    await this.d.pubsub.publish(SIGNALS, s).catch((err: unknown) => this.d.log.warn({ err }, 'could not publish engine signal'));
  }

  private async listen(ch: Channel<Signal>): Promise<void> {
    for await (const s of ch) {
      if (s.type === 'wake') this.wake();
      else {
        const a = this.active.get(s.id);
        if (a) {
          a.closed = true;
          a.ticket?.detach();
        }
      }
    }
  }

  private async listenQuotes(ch: Channel<QuoteArrival>): Promise<void> {
    for await (const q of ch) {
      // Every instance receives the callback itself: stored here only, not passed on again.
      const changed = this.d.cache.set(
        q.bookKey,
        q.sellerId,
        { offers: q.offers, condition: q.condition, quotedAt: q.quotedAt, expiresAt: q.quotedAt + q.ttlMs },
        'here',
      );
      this.d.rounds.deliver(q.ref, q.offers);
      if (changed) void this.offersChanged(q.bookKey);
    }
  }

  /**
   * A partner's asynchronous quote (callback). It fills the cache and any round waiting for it,
   * on every instance; late ones still update the cache and wake watchers of the book, but
   * never start anything for a closed or expired request (only active requests are woken).
   */
  async quoteCallback(seller: SellerRow, ref: string, body: unknown): Promise<'applied' | 'ignored'> {
    const parsed = parseQuoteRef(ref);
    if (!parsed || parsed.sellerId !== seller.id) return 'ignored';
    const result = parseQuoteResponse(body, seller.quote.response as unknown as QuoteMapping);
    if (!result.ok) throw new Error(`unreadable quote callback: ${result.reason}`);
    const arrival: QuoteArrival = {
      ref,
      ...parsed,
      quotedAt: this.d.clock.now().getTime(),
      ttlMs: seller.offerTtlSeconds * 1000,
      offers: result.offers,
    };
    await this.d.pubsub.publish(QUOTES, arrival);
    return 'applied';
  }

  /** A partner's asynchronous order result: settles the attempt, then the reconciler finishes it. */
  async orderCallback(seller: SellerRow, idempotencyKey: string, status: number, body: unknown): Promise<'applied' | 'ignored'> {
    const result = await this.d.driver.orderCallback(seller, idempotencyKey, status, body);
    if (result === 'applied') setImmediate(() => void this.reconcile());
    return result;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), Math.max(0, delayMs));
  }

  private async tick(): Promise<void> {
    if (this.phase !== 'running') return;
    this.ticking = true;
    const done = this.hold();
    this.lastTick = this.d.clock.now().getTime();
    this.again = false;
    let delay = this.d.config.pollMs;
    try {
      const now = this.d.clock.now();
      // The earliest deadline read by the last tick says whether any can have passed since:
      // no expiry scan on ticks where none can.
      if (this.earliestExpiry === null || now.getTime() >= this.earliestExpiry) await this.expireDue(now);
      const capacity = this.d.config.maxActive - this.active.size - this.adopting.size;
      if (capacity > 0) {
        const claimStart = Date.now();
        const rows = await claimDueRequests(this.d.db, {
          owner: this.d.owner,
          now,
          leaseUntil: new Date(now.getTime() + this.d.config.leaseMs),
          limit: Math.min(capacity, 100),
        });
        // A claim's span only when it claimed something: polls that find nothing are no trace's
        // business. A trace of its own, whatever work scheduled this tick.
        const claim = rows.length > 0 ? tracer().startSpan('engine.claim', { startTime: claimStart, attributes: { 'broker.claimed': rows.length } }, ROOT_CONTEXT) : null;
        claim?.end();
        const within = claim ? trace.setSpan(ROOT_CONTEXT, claim) : ROOT_CONTEXT;
        let handedBack = 0;
        // Claimed as this instance began to stop: handed back untouched, due as they were.
        if (this.phase !== 'running') await this.releaseUnstarted(rows);
        else {
          // A row already worked on here (its lease lapsed and was taken again) is no new start.
          const fresh = rows.filter((row) => !this.active.has(row.id));
          // Requests created on their own lease while the claim was in flight took room it
          // counted on: what no longer fits goes back at once, due as it was, first in line.
          const room = Math.max(0, this.d.config.maxActive - this.active.size - this.adopting.size);
          const excess = fresh.splice(room);
          if (fresh.length > 0) this.d.metrics?.requestsTaken.inc({ how: 'claim' }, fresh.length);
          for (const row of fresh) context.with(within, () => this.launch(row));
          handedBack = excess.length;
          if (handedBack > 0) {
            // Due work is waiting: new requests queue behind it.
            this.backlog = true;
            await this.releaseUnstarted(excess);
          }
        }
        // Fewer than it could take: no due work is left waiting, and new requests may start as
        // they are created again.
        if (rows.length < Math.min(capacity, 100) && handedBack === 0) this.backlog = false;
        else if (handedBack === 0) this.again = true;
      }
      this.earliestExpiry = null;
      if (this.active.size < this.d.config.maxActive) {
        const next = await nextDue(this.d.db, now);
        // Another instance may create a request with an earlier deadline meanwhile: the tick
        // after the next read sees it, and a claimed request checks its deadline itself.
        this.earliestExpiry = next.expiry?.getTime() ?? Number.POSITIVE_INFINITY;
        for (const at of [next.work, next.expiry]) if (at) delay = Math.min(delay, at.getTime() - this.d.clock.now().getTime());
      }
    } catch (err) {
      this.d.log.error({ err }, 'engine tick failed');
    } finally {
      this.ticking = false;
      done();
    }
    if (this.phase === 'running') this.schedule(this.again ? this.lastTick + MIN_TICK_SPACING_MS - this.d.clock.now().getTime() : Math.max(delay, 0));
  }

  private launch(row: RequestRow): void {
    const entry: Active = { ticket: null, closed: false };
    this.active.set(row.id, entry);
    const work = inSpan('engine.request', { 'broker.request.id': row.id, 'broker.request.status': row.status }, () => this.process(row, entry))
      .then(() => void this.failures.delete(row.id))
      .catch(async (err: unknown) => {
        if (this.cutOff(err, { requestId: row.id })) return;
        // Due again within seconds, not at a recheck interval: the failure is ours (or a
        // dependency's), not the sellers' answer.
        const retryInMs = this.failureBackoff(row.id);
        this.d.log.error({ err, requestId: row.id, retryInMs }, 'request processing failed; will retry');
        await this.releases.load({
          id: row.id,
          owner: this.d.owner,
          seenRevision: row.revision,
          nextRunAt: new Date(this.d.clock.now().getTime() + retryInMs),
          force: true,
        }).catch(() => {});
      })
      .finally(() => {
        if (this.active.get(row.id) === entry) this.active.delete(row.id);
        this.running.delete(work);
        // A slot freed up: more due work may be waiting for it.
        this.wake();
        if (this.phase === 'stopping') this.announceHandover();
      });
    this.running.add(work);
  }

  private async process(row: RequestRow, entry: Active): Promise<void> {
    const { requests, rounds, directory, clock } = this.d;
    if (clock.now() >= row.expiresAt) {
      await this.expire(row.id);
      return;
    }
    let current: RequestRow = row;
    // A new request's move to SEARCHING is written while its first round runs: the round reads
    // nothing the move changes, and nothing the round found is acted on before the move is in.
    let searching: Promise<RequestRow | null> | null = null;
    if (row.status === 'PENDING') {
      const sellers = (await directory.tiers()).reduce((n, t) => n + t.length, 0);
      searching = requests.commit(row.id, (cur) => (cur.status === 'PENDING' ? { to: 'SEARCHING', ...events.searchStarted({ sellers }) } : null), row);
      // Awaited below, after the round has started; should that throw first, no rejection goes unhandled.
      searching.catch(() => {});
    }
    // Offers this request may no longer take; a new request has none.
    const exclusions = row.status === 'PENDING' ? new OfferExclusions() : OfferExclusions.fromAttempts(await attemptsForRequests(this.d.db, [row.id]));
    for (let pass = 1; ; pass++) {
      const ticket = rounds.search(
        { bookKey: current.bookKey, ...bookOf(current) },
        {
          requestId: current.id,
          conditions: current.conditions,
          currency: current.currency,
          maxTotalCents: current.maxTotalCents,
          excludes: exclusions.excludes,
          shown: current.bestOffer,
        },
      );
      entry.ticket = ticket;
      if (entry.closed || this.phase !== 'running') ticket.detach();
      if (searching) {
        const moved = await searching.catch((e: unknown) => {
          ticket.detach();
          throw e;
        });
        searching = null;
        if (!moved) {
          ticket.detach();
          return this.release(row, null);
        }
        current = moved;
      }
      const result = await ticket.result;
      // Stopping: a round that ended anyway starts no order here; another instance decides anew.
      if (result.detached || this.phase !== 'running') return this.release(current, clock.now());
      const again = await this.decide(current, result, exclusions, pass < SEARCH_PASSES);
      if (!again) return;
      current = again;
    }
  }

  /**
   * After a round: order a takeable offer, or go on watching with the best price seen. Returns
   * the request when offers it meant to take turned out not to be takeable (a last copy gone, a
   * cached price revalidated away) and nothing was written: the caller searches again at once.
   *
   * `known` is the request as this engine last wrote or claimed it. An order is started from it
   * without a read first: the start is guarded by the row's revision, so a change made meanwhile
   * (the user's cancel, a new budget or deadline) makes it miss, and it reads and decides again on
   * what the row has become. Settling without an order reads the row first, as the outcome is
   * written whatever the row's revision.
   */
  private async decide(known: RequestRow, result: RoundResult, exclusions: OfferExclusions, mayRetry: boolean): Promise<RequestRow | null> {
    const { clock, requests, ordering } = this.d;
    const id = known.id;
    // Past the deadline as last seen: the user may have moved the deadline meanwhile.
    let fresh = this.d.clock.now() >= known.expiresAt ? await this.d.requests.read(id) : known;
    if (!fresh || !SEARCHABLE.includes(fresh.status)) return this.release(fresh, null).then(() => null);
    if (clock.now() >= fresh.expiresAt) return this.expire(id).then(() => null);

    const { valid } = evaluate(result.takeable.filter((o) => !exclusions.excludes(o)), fresh);
    if (valid.length > 0) {
      if (fresh.status === 'OUT_OF_STOCK') {
        // Back in stock within budget: the lifecycle goes through SEARCHING to ORDERING.
        const seen = fresh;
        fresh = await requests.commit(id, (cur) =>
          cur.revision === seen.revision ? { to: 'SEARCHING', ...events.searchStarted('back_in_stock') } : null,
        );
        if (!fresh) return this.release(await this.d.requests.read(id), null).then(() => null);
      }
      const lostBefore = exclusions.lostCount;
      const outcome = await ordering.orderFirst(fresh, valid, exclusions);
      // ORDERED and FAILED are written with the lease cleared: nothing to hand back.
      if (outcome === 'ordered' || outcome === 'failed') return null;
      if (outcome !== 'not_started') return this.release(fresh, null).then(() => null);
      fresh = await this.d.requests.read(id);
      if (!fresh || !SEARCHABLE.includes(fresh.status)) return this.release(fresh, null).then(() => null);
      // What it meant to take is gone: the next-best takeable offer is looked for now, not at a recheck.
      if (mayRetry && exclusions.lostCount > lostBefore) return fresh;
    }

    // No order: what it settles on is decided on the row as it is now. A user's change made
    // during the round (a new budget, a deadline) sends it round again at once, if it may.
    if (fresh === known) {
      fresh = await this.d.requests.read(id);
      if (!fresh || !SEARCHABLE.includes(fresh.status)) return this.release(fresh, null).then(() => null);
      if (clock.now() >= fresh.expiresAt) return this.expire(id).then(() => null);
      if (mayRetry && fresh.revision !== known.revision) return fresh;
    }
    // Offers it could not take this time (a copy others hold, a seller not taking orders) are
    // still the prices out there; only what was refused to it is not.
    const seen = evaluate(result.offers.filter((o) => !exclusions.refusedOffer(o)), fresh);
    // Valid offers it could not take: it looks again shortly, not after a recheck interval.
    const blocked = seen.valid.length > 0;
    let bestOffer: OfferSnapshot | null = seen.best ? snapshot(seen.best) : null;
    const unheard = result.failed + result.pending;
    if (!bestOffer && unheard > 0 && fresh.bestOffer && !exclusions.excludes(fresh.bestOffer)) {
      // Sellers that did not answer are not sellers without the book: keep what was shown.
      bestOffer = fresh.bestOffer;
    }
    const target: RequestStatus = bestOffer ? 'QUOTED' : 'OUT_OF_STOCK';
    const quiet = fresh.status === target && sameOffer(fresh.bestOffer, bestOffer);
    const now = clock.now();
    const nextRunAt = this.nextRecheck(now, quiet ? fresh.watchCount : 0, result, blocked, fresh.expiresAt);
    if (quiet) {
      await this.releases.load({ id, owner: this.d.owner, seenRevision: fresh.revision, nextRunAt, watchCount: fresh.watchCount + 1 });
      return null;
    }
    const message = await this.outcomeMessage(fresh, bestOffer, result, blocked);
    let own: RequestRow | undefined = fresh;
    if (fresh.status !== target && !canTransition(fresh.status, target)) {
      // QUOTED ⇄ OUT_OF_STOCK goes through SEARCHING, as the lifecycle table says.
      const from = fresh.status;
      own =
        (await requests.commit(id, (cur) => (cur.status === from ? { to: 'SEARCHING', ...events.searchStarted('offers_changed') } : null), fresh)) ??
        undefined;
    }
    // Our own last write; anything newer is the user's (a raised budget) and asked for prompt work.
    const ownRevision = own?.revision ?? fresh.revision;
    const committed = await requests.commit(id, (cur) => {
      if (!SEARCHABLE.includes(cur.status) || (cur.status !== target && !canTransition(cur.status, target))) return null;
      // Another instance took the request over after our lease lapsed: its decision stands.
      if (cur.leaseOwner !== null && cur.leaseOwner !== this.d.owner) return null;
      return {
        to: target,
        ...events.roundEnded({
          to: target,
          from: cur.status,
          message,
          tally: { answered: result.answered, unanswerable: result.unanswerable, failed: result.failed, pending: result.pending, offers: result.offers.length },
        }),
        changes: { bestOffer, nextRunAt: cur.revision === ownRevision ? nextRunAt : cur.nextRunAt, watchCount: 0, leaseOwner: null, leaseExpiresAt: null },
      };
    }, own);
    if (!committed) await this.release(fresh, now);
    return null;
  }

  /** Counts a failed run of `id` and returns when to try it again: 250 ms doubling to 5 s, jittered. */
  private failureBackoff(id: string): number {
    const failures = (this.failures.get(id) ?? 0) + 1;
    this.failures.delete(id);
    this.failures.set(id, failures);
    if (this.failures.size > MAX_FAILURE_COUNTS) this.failures.delete(this.failures.keys().next().value!);
    const delay = Math.min(FAILURE_RETRY_MS * 2 ** (failures - 1), FAILURE_RETRY_MAX_MS);
    return Math.round(delay * (0.5 + Math.random() * 0.5));
  }

  private nextRecheck(now: Date, watchCount: number, result: RoundResult, blocked: boolean, expiresAt: Date): Date {
    const { recheckBaseMs, recheckMaxMs } = this.d.config;
    // Offers within budget that others hold may come free soon: look again shortly.
    if (blocked) return new Date(Math.min(now.getTime() + Math.min(recheckBaseMs, BLOCKED_RECHECK_MS), expiresAt.getTime()));
    // Sellers that did not answer: look again without backing off. Sellers the round's call budget
    // left are asked at the next look, which backs off as usual: a book nobody has within budget
    // costs about the same with many sellers as with a few.
    const steps = result.failed > 0 ? 0 : Math.min(watchCount, 20);
    const delay = Math.min(recheckBaseMs * 2 ** steps, recheckMaxMs) * (0.9 + Math.random() * 0.2);
    return new Date(Math.min(now.getTime() + delay, expiresAt.getTime()));
  }

  /** What the round found, in words true to what happened. */
  private async outcomeMessage(r: RequestRow, best: OfferSnapshot | null, result: RoundResult, blocked: boolean): Promise<string> {
    if (best) {
      const seller = await this.d.directory.get(best.sellerId);
      const where = `${money(best.totalCents, best.currency)} from ${seller?.name ?? 'a seller'}`;
      if (blocked) return `Offers within budget are being taken by other requests or could not be taken; best now ${where}`;
      if (best.totalCents <= r.maxTotalCents) return `No seller answered this time; the best offer seen was ${where}`;
      return `Best offer ${where} is over the budget of ${money(r.maxTotalCents, r.currency)}${stillToAsk(result.notAsked)}`;
    }
    return describeNoOffers(result, r.isbn !== null);
  }

  private async expire(id: string): Promise<void> {
    const now = this.d.clock.now();
    await this.d.requests.commit(id, (cur) =>
      SEARCHABLE.includes(cur.status) && now >= cur.expiresAt
        ? {
            to: 'EXPIRED',
            ...events.expired(cur.bestOffer),
            changes: { nextRunAt: null, leaseOwner: null, leaseExpiresAt: null },
          }
        : null,
    );
  }

  private async expireDue(now: Date): Promise<void> {
    const ids = await findExpiredActive(this.d.db, now, 200);
    for (const id of ids) {
      try {
        await this.expire(id);
      } catch (err) {
        this.d.log.error({ err, requestId: id }, 'could not expire a request');
        continue;
      }
      const a = this.active.get(id);
      if (a) {
        a.closed = true;
        a.ticket?.detach();
      }
    }
  }

  private async release(row: RequestRow | null, nextRunAt: Date | null): Promise<void> {
    if (!row) return;
    await this.releases.load({ id: row.id, owner: this.d.owner, seenRevision: row.revision, nextRunAt: nextRunAt ?? row.nextRunAt });
  }

  private async releaseUnstarted(rows: readonly RequestRow[]): Promise<void> {
    await Promise.all(rows.map((row) => this.release(row, null)));
    if (rows.length > 0) this.announceHandover();
  }

  private async beat(): Promise<void> {
    if (this.active.size === 0) return;
    const until = new Date(this.d.clock.now().getTime() + this.d.config.leaseMs);
    await extendLeases(this.d.db, this.d.owner, [...this.active.keys()], until).catch((err: unknown) =>
      this.d.log.warn({ err }, 'lease heartbeat failed'),
    );
  }

  /** Finishes order attempts nobody is driving: after a crash, a timeout, an unknown outcome. */
  async reconcile(): Promise<void> {
    if (this.phase !== 'running' || this.reconciling) return;
    this.reconciling = true;
    const done = this.hold();
    try {
      const now = this.d.clock.now();
      const attempts = await claimDueAttempts(this.d.db, {
        owner: this.d.owner,
        now,
        leaseUntil: new Date(now.getTime() + this.d.config.leaseMs),
        limit: 50,
      });
      if (this.phase !== 'running') {
        // Claimed as this instance began to stop: nothing was sent for them yet, so they go back now.
        await releaseAttempts(this.d.db, { owner: this.d.owner, ids: attempts.map((a) => a.id) });
        return;
      }
      await Promise.all(
        attempts.map(async (a) => {
          try {
            const outcome = await this.d.driver.drive(a);
            if (outcome === 'rejected') await this.d.driver.afterRefusals(a.requestId);
          } catch (err) {
            if (this.cutOff(err, { attemptId: a.id, requestId: a.requestId })) return;
            this.d.log.error({ err, attemptId: a.id, requestId: a.requestId }, 'reconciling an order attempt failed');
          }
        }),
      );
      if (this.phase !== 'running') return;
      const orphans = await orphanedOrdering(this.d.db, now, new Date(now.getTime() - this.d.config.leaseMs), 50);
      for (const id of orphans) await this.d.driver.recover(id);
    } catch (err) {
      this.d.log.error({ err }, 'reconciliation pass failed');
    } finally {
      this.reconciling = false;
      done();
    }
  }

  /**
   * Offers for a book changed: requests watching it look again now. Called as the round that saw
   * the change ends, before its members' outcomes are written: the time read here tells those
   * (and anything decided later) from the watchers that have not seen the change.
   */
  async offersChanged(bookKey: string): Promise<void> {
    const woken = await this.wakes.load({ bookKey, at: this.d.clock.now() }).catch(() => 0);
    if (woken > 0) this.wake();
  }
}

/** Why a round found no offers, seller by seller as they answered (or did not). */
export function describeNoOffers(
  result: Pick<RoundResult, 'answered' | 'unanswerable' | 'failed' | 'pending' | 'consulted'> & Partial<Pick<RoundResult, 'notAsked'>>,
  byIsbn: boolean,
): string {
  const { answered, unanswerable, failed, pending, consulted, notAsked = 0 } = result;
  if (consulted === 0 && notAsked === 0) return 'No sellers are configured';
  if (answered === consulted && notAsked > 0) return `None of the ${sellers(answered)} asked so far has the book${stillToAsk(notAsked)}`;
  if (answered === consulted) return `None of the ${sellers(answered)} has the book`;
  if (answered === 0 && unanswerable === 0) return `No seller answered (${sellers(failed + pending)} did not answer yet); checking again shortly`;
  const parts: string[] = [];
  if (answered > 0) parts.push(`${sellers(answered)} ${answered === 1 ? 'does' : 'do'} not have the book`);
  if (unanswerable > 0) parts.push(`${sellers(unanswerable)} cannot ${byIsbn ? 'answer this query' : 'search by title'}`);
  if (failed > 0) parts.push(`${sellers(failed)} did not answer`);
  if (pending > 0) parts.push(`${sellers(pending)} will answer later`);
  return `No offers: ${parts.join(', ')}${stillToAsk(notAsked)}`;
}

/** The part of an outcome message about sellers a round's call budget left for the next look. */
function stillToAsk(notAsked: number): string {
  if (notAsked === 0) return '';
  return `; ${notAsked} more ${notAsked === 1 ? 'seller is' : 'sellers are'} asked at the next look`;
}

function sellers(n: number): string {
  return `${n} ${n === 1 ? 'seller' : 'sellers'}`;
}

function sameOffer(a: OfferSnapshot | null, b: OfferSnapshot | null): boolean {
  if (a === null || b === null) return a === b;
  return a.sellerId === b.sellerId && a.totalCents === b.totalCents && a.condition === b.condition && a.offerId === b.offerId;
}
