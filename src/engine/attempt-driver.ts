import { batchLoader, inLayers } from '../db/batch-loader.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db, Executor } from '../db/client.js';
import { advanceAttempt, type AttemptChanges, attemptsForRequests, findAttempt, findAttemptByKey } from '../db/queries/attempts.js';
import { findOpenDeadLetter, insertDeadLetter } from '../db/queries/dead-letters.js';
import type { AttemptRow, RequestRow, SellerRow } from '../db/schema.js';
import { type AttemptStep, advanceAttempts } from '../db/queries/attempt-steps.js';
import { retryLockRaces } from '../db/errors.js';
import type { Metrics } from '../infra/metrics.js';
import { inSpan } from '../infra/tracing.js';
import { type OrderMapping, parseOrderResponse } from '../partners/mapping.js';
import { isOrderRejected, isSuccess } from '../partners/answers.js';
import type { Refused, SellerPipeline } from '../partners/pipeline.js';
import { PaymentConflictError, type PaymentGateway } from '../payments/gateway.js';
import type { Clock } from '../domain/clock.js';
import { toError } from '../domain/errors.js';
import { bookOf } from '../domain/books.js';
import { NO_SELLER_BEFORE_DEADLINE, events } from '../domain/events.js';
import { type LiveAttemptState, canMoveAttempt, isAttemptLive } from '../domain/lifecycle.js';
import type { AttemptState } from '../domain/types.js';
import type { Change, RequestService } from '../services/requests.js';
import type { OfferCache } from './offer-cache.js';
import type { SellerDirectory } from './seller-directory.js';

export interface AttemptDriverDeps {
  db: Db;
  requests: RequestService;
  /** Orders and status checks go through the one seller-call pipeline (gate, caps, stats); it never repeats an order. */
  pipeline: Pick<SellerPipeline, 'order' | 'orderStatus'>;
  gateway: PaymentGateway;
  cache: OfferCache;
  directory: SellerDirectory;
  clock: Clock;
  log: Logger;
  /** This instance, as named in leases. */
  owner: string;
  /** How long an attempt stays leased to the instance driving it, beyond the seller's own timeout. */
  leaseMs: number;
  /** Waits before re-checking an attempt whose outcome is unknown: one per try, the last repeating. */
  unknownBackoffMs: readonly number[];
  /** Unknown outcomes retried in place (same key) before leaving the attempt to the reconciler. */
  inlineRetries: number;
  /** Tries after which an unresolved attempt is flagged for an operator (it keeps being retried). */
  attentionAfterTries: number;
  metrics?: Metrics;
}

/** How one attempt ended, as far as this call could take it. */
export type AttemptOutcome = 'succeeded' | 'declined' | 'rejected' | 'unknown';

/** What a drive knows besides the row, fixed for the whole drive (but what it has not written yet). */
interface DriveContext {
  readonly seller: SellerRow;
  readonly request: RequestRow;
  /** Unknown outcomes retried in place so far in this drive. */
  inline: number;
  /** The attempt's state as its row holds it: moves carried in memory since are written with the next write. */
  written: AttemptState;
  /** What the moves carried since the last write changed: the next write (from `written`) includes it. */
  carried: Omit<AttemptChanges, 'state'>;
}

/**
 * What one step did: wrote the attempt's next row (null: another driver moved it first, so
 * continue from what that one wrote), or stopped the drive with an outcome.
 */
type StepResult = { readonly next: AttemptRow | null } | { readonly stop: AttemptOutcome };

/** One step per live attempt state: it makes that state's external call and writes the move. */
type Steps = { readonly [S in LiveAttemptState]: (a: AttemptRow, ctx: DriveContext) => Promise<StepResult> };

/** Thrown when code asks for an attempt move ATTEMPT_TRANSITIONS forbids: a bug, never written. */
export class IllegalAttemptMoveError extends Error {
  constructor(
    readonly attemptId: string,
    readonly from: AttemptState,
    readonly to: AttemptState,
  ) {
    super(from === to ? `order attempt ${attemptId} is ${from}: a finished attempt is never written again` : `illegal order attempt move ${from} → ${to} (attempt ${attemptId})`);
    this.name = 'IllegalAttemptMoveError';
  }
}

/**
 * Every write of an attempt row goes through here. A move (`to` differs from the state the row
 * was read in) is checked against ATTEMPT_TRANSITIONS before anything is written; `to` equal to
 * the current state keeps the attempt where it is (a lease, a due time, a count of tries). The
 * row is written only if still in the state it was read in: null when another writer moved it.
 */
export async function advance(
  ex: Executor,
  a: Pick<AttemptRow, 'id' | 'state'>,
  to: AttemptState,
  changes: Omit<AttemptChanges, 'state'> & { updatedAt: Date },
): Promise<AttemptRow | null> {
  return advanceAttempt(ex, a.id, a.state, checkedMove(a, to, changes));
}

/** The changes of a move the attempt table allows; an illegal one throws before anything is written. */
function checkedMove(
  a: Pick<AttemptRow, 'id' | 'state'>,
  to: AttemptState,
  changes: Omit<AttemptChanges, 'state'> & { updatedAt: Date },
): AttemptChanges & { updatedAt: Date } {
  if (to === a.state ? !isAttemptLive(to) : !canMoveAttempt(a.state, to)) throw new IllegalAttemptMoveError(a.id, a.state, to);
  return to === a.state ? changes : { ...changes, state: to };
}

/**
 * An operator re-drives an attempt left for attention: it becomes due now with a fresh count of
 * tries, and the next reconciliation pass (any instance's) drives it from its row. A function of
 * the row rather than of a running driver, so an instance without the engine can re-drive too.
 * 'finished' when the attempt was resolved meanwhile.
 */
export async function redriveAttempt(ex: Executor, attemptId: string, now: Date): Promise<'due' | 'finished'> {
  const a = await findAttempt(ex, attemptId);
  if (!a) throw new Error('the attempt no longer exists');
  if (!isAttemptLive(a.state)) return 'finished';
  const moved = await advance(ex, a, a.state, { tries: 0, needsAttention: false, nextCheckAt: now, leaseOwner: null, leaseExpiresAt: null, updatedAt: now });
  if (!moved) throw new Error('the attempt changed while being re-driven; try again');
  return 'due';
}

/**
 * Drives order attempts exactly once (SPEC §4). Every external call carries the attempt's
 * idempotency key, and the attempt's row always holds a state from which the drive can be resumed
 * — after a timeout, a crash, or on another instance — with a repeated step never ordering or
 * charging twice. A step is written before the next external call unless repeating it from the
 * row's state gives the same answer and sends nothing more (`carry`: the authorisation); a
 * confirmed order is always written before the capture. Any stop writes what it knows.
 */
export class AttemptDriver {
  /** The attempt lifecycle's live states, one step each (ATTEMPT_TRANSITIONS says where each may go). */
  private readonly steps: Steps = {
    authorizing: (a, ctx) => this.authorize(a, ctx),
    ordering: (a, ctx) => this.order(a, ctx),
    unknown: (a, ctx) => this.askStatus(a, ctx),
    capturing: (a, ctx) => this.capture(a, ctx),
    voiding: (a, ctx) => this.voidAuthorization(a, ctx),
  };

  constructor(private readonly d: AttemptDriverDeps) {}

  /**
   * Takes an attempt as far as it can go from the state in its row. Returns 'unknown' when it
   * must wait (outcome unknown, provider unreachable): the row then says when to look again.
   */
  drive(start: AttemptRow, knownRequest?: RequestRow): Promise<AttemptOutcome> {
    const attributes = { 'broker.attempt.id': start.id, 'broker.attempt.no': start.attemptNo, 'broker.request.id': start.requestId };
    return inSpan('attempt', attributes, async (span) => {
      const outcome = await this.driveSteps(start, knownRequest);
      span.setAttribute('broker.attempt.outcome', outcome);
      return outcome;
    });
  }

  private async driveSteps(start: AttemptRow, knownRequest?: RequestRow): Promise<AttemptOutcome> {
    let a = start;
    const seller = await this.d.directory.get(a.sellerId);
    // Only fields fixed at creation are read (payment token, address, book): a known row will do.
    const request = knownRequest ?? (await this.d.requests.read(a.requestId));
    if (!seller || !request) throw new Error(`attempt ${a.id} names a missing seller or request`);
    const ctx: DriveContext = { seller, request, inline: 0, written: a.state, carried: {} };
    if (isAttemptLive(a.state) && !this.held(a, seller)) {
      // Hold the attempt for as long as this seller's calls can take before the first one.
      a = (await this.move(a, ctx, a.state, {})) ?? (await this.reload(a, ctx));
    }
    for (;;) {
      const state = a.state;
      // Finished: make sure the request says so too (a crash may have come in between).
      if (!isAttemptLive(state)) return this.settle(a, seller);
      const current = a;
      const result = await inSpan(`attempt.${state}`, { 'broker.attempt.state': state, 'broker.seller': seller.name }, async (span) => {
        const r = await this.steps[state](current, ctx);
        const step = 'stop' in r ? `stop:${r.stop}` : (r.next?.state ?? 'moved elsewhere');
        span.setAttribute('broker.attempt.step', 'next' in r && r.next && r.next.state !== ctx.written ? `${step} (carried)` : step);
        return r;
      });
      if ('stop' in result) return result.stop;
      // Another driver moved the attempt first: continue from what it wrote.
      a = result.next ?? (await this.reload(a, ctx));
    }
  }

  private async authorize(a: AttemptRow, ctx: DriveContext): Promise<StepResult> {
    const { request } = ctx;
    let auth;
    try {
      auth = await this.d.gateway.authorize({ key: a.idempotencyKey, amountCents: a.offer.totalCents, currency: a.offer.currency, token: request.paymentToken });
    } catch (e) {
      // A conflict is the provider's final word (this key holds another amount): fail once, never loop.
      if (e instanceof PaymentConflictError) return { next: await this.move(a, ctx, 'failed', { failure: `payment conflict: ${e.message}` }) };
      return this.defer(a, ctx, `payment provider: ${toError(e).message}`);
    }
    if (auth.status === 'declined') {
      return { next: await this.move(a, ctx, 'failed', { paymentState: 'declined', failure: `payment declined: ${auth.reason}` }) };
    }
    // Carried, not written: should the drive stop before its next write, authorising again with
    // the same key gives the same authorisation.
    return { next: await this.carry(a, ctx, 'ordering', { paymentState: 'authorized', authorizationId: auth.authorizationId }) };
  }

  private async order(a: AttemptRow, ctx: DriveContext): Promise<StepResult> {
    const { seller, request } = ctx;
    const placed = await this.d.pipeline.order(seller, {
      book: bookOf(request),
      requestId: a.requestId,
      idempotencyKey: a.idempotencyKey,
      offerId: a.offer.offerId,
      totalCents: a.offer.totalCents,
      currency: a.offer.currency,
      shipping: request.shippingAddress,
    });
    // Nothing was sent: the attempt stays where it is and is tried again after the backoff.
    if (placed.kind === 'refused') return this.defer(a, ctx, unavailable(seller, placed, a.lastError));
    if (placed.kind === 'confirmed') {
      // Written before anything else is called: from here on, nothing may send the order again.
      return {
        next: await this.move(a, ctx, 'capturing', { sellerOrderId: placed.orderId, orderTotalCents: placed.totalCents, deliveryEta: placed.deliveryEta }),
      };
    }
    if (placed.kind === 'rejected') {
      this.d.cache.invalidate(request.bookKey, seller.id);
      return { next: await this.move(a, ctx, 'voiding', { failure: `${seller.name} refused the order (${placed.status}): ${placed.reason}` }) };
    }
    const why = placed.kind === 'pending' ? 'the seller will confirm later' : `${placed.reason}${placed.status ? ` (HTTP ${placed.status})` : ''}`;
    const next = await this.move(a, ctx, 'unknown', { lastError: why });
    if (next && (placed.kind === 'pending' || ctx.inline >= this.d.inlineRetries)) return this.defer(next, ctx, why);
    ctx.inline += 1;
    return { next };
  }

  private async askStatus(a: AttemptRow, ctx: DriveContext): Promise<StepResult> {
    const { seller, request } = ctx;
    // Ask the seller what became of the order; without a status endpoint, repeating the
    // order with the same key is the question (the seller answers with the same order).
    if (!seller.orderStatus) return { next: await this.move(a, ctx, 'ordering', {}) };
    const status = await this.d.pipeline.orderStatus(seller, {
      book: bookOf(request),
      requestId: a.requestId,
      idempotencyKey: a.idempotencyKey,
      sellerOrderId: a.sellerOrderId,
    });
    if (status.kind === 'refused') return this.defer(a, ctx, unavailable(seller, status, a.lastError));
    if (status.kind === 'placed') {
      return {
        next: await this.move(a, ctx, 'capturing', { sellerOrderId: status.orderId, orderTotalCents: status.totalCents, deliveryEta: status.deliveryEta }),
      };
    }
    if (status.kind === 'not_placed') return { next: await this.move(a, ctx, 'ordering', {}) };
    return this.defer(a, ctx, `order status unknown: ${status.reason}`);
  }

  private async capture(a: AttemptRow, ctx: DriveContext): Promise<StepResult> {
    try {
      await this.d.gateway.capture({ key: a.idempotencyKey, amountCents: a.offer.totalCents });
    } catch (e) {
      // The seller has the order but the provider will never capture it: an operator's case, raised once.
      return this.defer(a, ctx, `capture: ${toError(e).message}`, e instanceof PaymentConflictError);
    }
    // The attempt's success and the request's ORDERED commit together: one transaction.
    if (await this.completeOrder(a, ctx)) return { stop: 'succeeded' };
    return { next: await this.move(a, ctx, 'succeeded', { paymentState: 'captured', nextCheckAt: null, leaseOwner: null, leaseExpiresAt: null }) };
  }

  private async voidAuthorization(a: AttemptRow, ctx: DriveContext): Promise<StepResult> {
    try {
      await this.d.gateway.void({ key: a.idempotencyKey });
    } catch (e) {
      return this.defer(a, ctx, `void: ${toError(e).message}`, e instanceof PaymentConflictError);
    }
    const paymentState = a.paymentState === 'authorized' ? 'voided' : a.paymentState;
    return { next: await this.move(a, ctx, 'failed', { paymentState, nextCheckAt: null, leaseOwner: null, leaseExpiresAt: null }) };
  }

  /**
   * Marks a captured attempt succeeded and its request ORDERED in one transaction. False when
   * the request is not ORDERING (the caller then finishes the attempt alone) or the attempt had
   * already moved (another driver finished it).
   */
  private async completeOrder(a: AttemptRow, ctx: DriveContext): Promise<boolean> {
    const { seller, request: known } = ctx;
    const now = this.d.clock.now();
    // The move is checked against the attempt table like any other, though written with the request's.
    checkedMove(a, 'succeeded', { updatedAt: now });
    // False when the request is not ORDERING (the caller then finishes the attempt alone) or the
    // attempt had already moved (another driver finished it): then nothing was written.
    const written = await this.d.requests.commitWithAttempt(a.requestId, (cur) =>
      cur.status === 'ORDERING' ? { ...orderedChange(a, seller, now), attempt: { complete: { id: a.id, from: a.state } } } : null,
      // The row the driver was given; if the request moved since, the write misses and reads it afresh.
      known,
    );
    if (!written?.attempt) return false;
    this.d.metrics?.attempts.inc({ state: 'succeeded', payment: 'captured' });
    return true;
  }


  /**
   * Brings the request in line with a finished attempt: ORDERED for a success, FAILED for a
   * declined payment, a note for a refusal (the caller decides what comes next). Idempotent.
   */
  private async settle(a: AttemptRow, seller: SellerRow): Promise<AttemptOutcome> {
    if (a.state === 'succeeded') {
      await this.d.requests.commit(a.requestId, (cur) => (cur.status === 'ORDERING' ? orderedChange(a, seller, a.updatedAt) : null));
      this.d.metrics?.attempts.inc({ state: a.state, payment: a.paymentState });
      return 'succeeded';
    }
    if (a.paymentState === 'declined') {
      const reason = a.failure ?? 'payment declined';
      await this.d.requests.commit(a.requestId, (cur) =>
        cur.status === 'ORDERING'
          ? { to: 'FAILED', ...events.paymentDeclined(reason), changes: { failureReason: reason, nextRunAt: null, leaseOwner: null, leaseExpiresAt: null } }
          : null,
      );
      this.d.metrics?.attempts.inc({ state: a.state, payment: a.paymentState });
      return 'declined';
    }
    await this.d.requests.commit(a.requestId, (cur) =>
      cur.status === 'ORDERING' ? events.orderRefused({ attemptNo: a.attemptNo, failure: a.failure }) : null,
    );
    this.d.metrics?.attempts.inc({ state: a.state, payment: a.paymentState });
    return 'rejected';
  }

  /**
   * A request left in ORDERING with no live attempt (a crash between two steps): finish it from
   * its attempts — ORDERED if one succeeded, FAILED if payment was declined — else search again.
   */
  async recover(requestId: string): Promise<void> {
    const attempts = await attemptsForRequests(this.d.db, [requestId]);
    const last = attempts.at(-1);
    const succeeded = attempts.find((a) => a.state === 'succeeded');
    const finished = succeeded ?? (last?.paymentState === 'declined' ? last : null);
    if (finished) {
      const seller = await this.d.directory.get(finished.sellerId);
      if (seller) {
        await this.settle(finished, seller);
        return;
      }
    }
    await this.afterRefusals(requestId);
  }

  /**
   * A seller's asynchronous order result (callback). It only settles an attempt whose outcome we
   * do not know yet; for any other attempt (finished, or already resolved by a retry or a status
   * check) it is a duplicate or late, and changes nothing. Returns whether it changed anything.
   */
  async orderCallback(seller: SellerRow, idempotencyKey: string, status: number, body: unknown): Promise<'applied' | 'ignored'> {
    const a = await findAttemptByKey(this.d.db, idempotencyKey);
    if (!a || a.sellerId !== seller.id || a.state !== 'unknown') return 'ignored';
    const now = this.d.clock.now();
    const due = { nextCheckAt: now, leaseOwner: null, leaseExpiresAt: null, updatedAt: now };
    let moved: AttemptRow | null = null;
    if (isSuccess(status)) {
      const parsed = parseOrderResponse(body, seller.order.response as OrderMapping);
      if (!parsed.orderId) return 'ignored';
      moved = await this.step(a, 'capturing', {
        ...due,
        sellerOrderId: parsed.orderId,
        orderTotalCents: parsed.totalCents,
        deliveryEta: parsed.deliveryEta,
      });
    } else if (isOrderRejected(status)) {
      const request = await this.d.requests.read(a.requestId);
      if (request) this.d.cache.invalidate(request.bookKey, seller.id);
      moved = await this.step(a, 'voiding', { ...due, failure: `${seller.name} refused the order (${status})` });
    }
    return moved ? 'applied' : 'ignored';
  }

  /**
   * All candidates were refused. With time left the request searches again (refused offers
   * were dropped from the cache); at the deadline it FAILED: no seller could take the order.
   */
  async afterRefusals(requestId: string): Promise<void> {
    const now = this.d.clock.now();
    await this.d.requests.commit(requestId, (cur) => {
      if (cur.status !== 'ORDERING') return null;
      if (now >= cur.expiresAt) {
        return { to: 'FAILED', ...events.noSellerBeforeDeadline(), changes: { failureReason: NO_SELLER_BEFORE_DEADLINE, nextRunAt: null } };
      }
      return { to: 'SEARCHING', ...events.searchStarted('after_refusals'), changes: { nextRunAt: now } };
    });
  }

  /**
   * Writes one step of the drive: moves the attempt to `to` (or keeps it where it is, when `to`
   * is its state) and, while it is live, holds it for this instance until the seller's calls can
   * have ended; past that the reconciler may pick it up.
   */
  /**
   * A checked move outside any transaction. The moves of one tick, from every attempt this
   * instance drives, go to the database in one statement (group commit).
   */
  private step(a: Pick<AttemptRow, 'id' | 'state'>, to: AttemptState, changes: Omit<AttemptChanges, 'state'> & { updatedAt: Date }): Promise<AttemptRow | null> {
    return this.moves.load({ id: a.id, from: a.state, changes: checkedMove(a, to, changes) });
  }

  private readonly moves = batchLoader<AttemptStep, AttemptRow | null>(
    async (batch) => {
      // One step per attempt per statement; a second one waits for the next.
      const rows = await inLayers(batch, (st) => st.id, (layer) => retryLockRaces(() => advanceAttempts(this.d.db, layer)));
      return rows.map((row) => row ?? null);
    },
    { maxBatchSize: 200 },
  );

  /**
   * Writes the drive's next move: from the state the row holds, with whatever the drive carried
   * since its last write, holding the attempt for this seller's next calls while it is live.
   * Null when another writer moved the attempt first (what was carried is then dropped).
   */
  private async move(a: AttemptRow, ctx: DriveContext, to: AttemptState, changes: Omit<AttemptChanges, 'state'>): Promise<AttemptRow | null> {
    const now = this.d.clock.now();
    const until = new Date(now.getTime() + this.leaseFor(ctx.seller));
    return this.write(a, ctx, to, {
      ...(isAttemptLive(to) ? { leaseOwner: this.d.owner, leaseExpiresAt: until, nextCheckAt: until } : {}),
      ...changes,
      updatedAt: now,
    });
  }

  /** A checked move of the drive, written from the state the row holds with what was carried. */
  private async write(a: AttemptRow, ctx: DriveContext, to: AttemptState, changes: Omit<AttemptChanges, 'state'> & { updatedAt: Date }): Promise<AttemptRow | null> {
    const checked = checkedMove(a, to, changes);
    const row = await this.moves.load({ id: a.id, from: ctx.written, changes: { ...ctx.carried, ...checked, ...(to === ctx.written ? {} : { state: to }) } });
    if (row) {
      ctx.written = row.state;
      ctx.carried = {};
    }
    return row;
  }

  /**
   * A checked move kept in memory and written with the drive's next write: only for a move whose
   * step, repeated after a crash from the state the row still holds, gives the same answer and
   * sends nothing the repeat would not have sent anyway (an authorisation: the order call follows
   * it either way). It saves a write between two external calls; nothing is lost if the drive
   * stops before writing it. Only while the lease held is nearly what a write would give (within
   * a quarter of a lease): otherwise the move is written, renewing it, as it always was.
   */
  private async carry(a: AttemptRow, ctx: DriveContext, to: AttemptState, changes: Omit<AttemptChanges, 'state'>): Promise<AttemptRow | null> {
    const left = (a.leaseExpiresAt?.getTime() ?? 0) - this.d.clock.now().getTime();
    if (a.leaseOwner !== this.d.owner || left < this.leaseFor(ctx.seller) - this.d.leaseMs / 4) return this.move(a, ctx, to, changes);
    const now = this.d.clock.now();
    checkedMove(a, to, { ...changes, updatedAt: now });
    ctx.carried = { ...ctx.carried, ...changes };
    return { ...a, ...changes, state: to, updatedAt: now };
  }

  /** Whether this instance holds the attempt long enough for the seller's longest call. */
  private held(a: AttemptRow, seller: SellerRow): boolean {
    return a.leaseOwner === this.d.owner && (a.leaseExpiresAt?.getTime() ?? 0) > this.d.clock.now().getTime() + seller.timeoutMs;
  }

  /**
   * Leaves the attempt for the reconciler: due again after a backoff, flagged after many tries.
   * A definitive failure (a payment conflict) is flagged at once and not due again: only an
   * operator's re-drive picks it up, so it never loops.
   */
  private async defer(a: AttemptRow, ctx: DriveContext, why: string, definitive = false): Promise<StepResult> {
    const { seller } = ctx;
    const now = this.d.clock.now();
    const tries = a.tries + 1;
    const backoff = this.d.unknownBackoffMs[Math.min(tries - 1, this.d.unknownBackoffMs.length - 1)] ?? 1000;
    const needsAttention = definitive || tries >= this.d.attentionAfterTries;
    const moved = await this.write(a, ctx, a.state, {
      nextCheckAt: definitive ? null : new Date(now.getTime() + jitter(backoff)),
      leaseOwner: null,
      leaseExpiresAt: null,
      lastError: why,
      tries,
      needsAttention: a.needsAttention || needsAttention,
      updatedAt: now,
    });
    if (moved && needsAttention && !a.needsAttention) {
      this.d.log.error({ requestId: a.requestId, attemptId: a.id, sellerId: seller.id, tries }, 'order attempt unresolved: needs attention');
      if (!(await findOpenDeadLetter(this.d.db, 'attempt', a.id))) {
        await insertDeadLetter(this.d.db, {
          id: randomUUID(),
          kind: 'attempt',
          ref: a.id,
          payload: { requestId: a.requestId, sellerId: seller.id, state: a.state, tries, idempotencyKey: a.idempotencyKey },
          lastError: why,
          createdAt: now,
        });
      }
      await this.d.requests.commit(a.requestId, (cur) => (cur.status === 'ORDERING' ? events.orderUnresolved({ seller, tries, why }) : null));
    } else if (moved && a.tries === 0) {
      await this.d.requests.commit(a.requestId, (cur) => (cur.status === 'ORDERING' ? events.orderInDoubt({ seller, why }) : null));
    }
    return { stop: 'unknown' };
  }

  /** The attempt as another writer left it: the drive goes on from there, carrying nothing. */
  private async reload(a: AttemptRow, ctx: DriveContext): Promise<AttemptRow> {
    const fresh = await findAttempt(this.d.db, a.id);
    if (!fresh) throw new Error(`attempt ${a.id} vanished`);
    ctx.written = fresh.state;
    ctx.carried = {};
    return fresh;
  }

  /** How long an attempt is held for one step with this seller. */
  leaseFor(seller: SellerRow): number {
    return this.d.leaseMs + seller.timeoutMs;
  }
}

const LAST_ANSWER = '; last answer: ';

/**
 * Why the pipeline sent nothing to the seller, for the attempt's lastError. What the seller last
 * said is kept: the refusal is about the seller's gate, not news about the order.
 */
function unavailable(seller: SellerRow, r: Refused, lastError: string | null): string {
  const why = `${seller.name} is unavailable (${r.why === 'paused' ? 'it asked us to wait' : r.why === 'circuit_open' ? 'circuit open' : 'call not needed'})`;
  const last = lastError?.split(LAST_ANSWER).at(-1);
  return last && !last.startsWith(`${seller.name} is unavailable`) ? `${why}${LAST_ANSWER}${last}` : why;
}

/** The request's move to ORDERED, with the order's details, for a captured attempt. */
function orderedChange(a: AttemptRow, seller: SellerRow, placedAt: Date): Change {
  const total = a.orderTotalCents ?? a.offer.totalCents;
  return {
    to: 'ORDERED',
    ...events.ordered({ seller, totalCents: total, currency: a.offer.currency, sellerOrderId: a.sellerOrderId }),
    // Done: no more work, and no lease for the engine to hand back.
    changes: {
      nextRunAt: null,
      leaseOwner: null,
      leaseExpiresAt: null,
      orderDetails: {
        sellerId: seller.id,
        sellerOrderId: a.sellerOrderId ?? '',
        totalCents: total,
        currency: a.offer.currency,
        deliveryEta: a.deliveryEta?.toISOString() ?? null,
        placedAt: placedAt.toISOString(),
      },
    },
  };
}

function jitter(ms: number): number {
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}
