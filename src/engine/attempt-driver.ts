import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../db/client.js';
import { advanceAttempt, type AttemptChanges, attemptsForRequests, findAttempt, findAttemptByKey } from '../db/queries/attempts.js';
import { findRequestById } from '../db/queries/requests.js';
import { findOpenDeadLetter, insertDeadLetter } from '../db/queries/dead-letters.js';
import type { AttemptRow, RequestRow, SellerRow } from '../db/schema.js';
import type { Metrics } from '../infra/metrics.js';
import { type OrderMapping, parseOrderResponse } from '../partners/mapping.js';
import type { OrderOutcome, PartnerConnector } from '../partners/connector.js';
import type { PaymentGateway } from '../payments/gateway.js';
import type { Clock } from '../domain/clock.js';
import { toError } from '../domain/errors.js';
import { bookOf, money } from '../domain/books.js';
import type { AttemptState } from '../domain/types.js';
import type { Change, RequestService } from '../services/requests.js';
import type { OfferCache } from './offer-cache.js';
import { recordCall } from './round.js';
import type { SellerDirectory } from './seller-directory.js';
import { OpenCircuitError, type SellerGates } from './seller-gate.js';

export interface AttemptDriverDeps {
  db: Db;
  requests: RequestService;
  connector: Pick<PartnerConnector, 'order' | 'orderStatus'>;
  gateway: PaymentGateway;
  gates: SellerGates;
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

/**
 * Drives order attempts exactly once (SPEC §4). Every step is written to the attempt's row
 * before the next external call, with the attempt's idempotency key on every call, so `drive`
 * can resume any attempt from its row — after a timeout, a crash, or on another instance — and
 * a repeated step never orders or charges twice.
 */
export class AttemptDriver {
  constructor(private readonly d: AttemptDriverDeps) {}

  /**
   * Takes an attempt as far as it can go from the state in its row. Returns 'unknown' when it
   * must wait (outcome unknown, provider unreachable): the row then says when to look again.
   */
  async drive(start: AttemptRow, knownRequest?: RequestRow): Promise<AttemptOutcome> {
    let a = start;
    const seller = await this.d.directory.get(a.sellerId);
    // Only fields fixed at creation are read (payment token, address, book): a known row will do.
    const request = knownRequest ?? (await findRequestById(this.d.db, a.requestId));
    if (!seller || !request) throw new Error(`attempt ${a.id} names a missing seller or request`);
    const heldLongEnough = a.leaseOwner === this.d.owner && (a.leaseExpiresAt?.getTime() ?? 0) > Date.now() + seller.timeoutMs;
    if (a.state !== 'succeeded' && a.state !== 'failed' && !heldLongEnough) {
      // Hold the attempt for as long as this seller's calls can take before the first one.
      a = (await this.advance(a, seller, {})) ?? (await this.reload(a));
    }
    let inline = 0;
    for (;;) {
      const state: AttemptState = a.state;
      let next: AttemptRow | null;
      switch (state) {
        case 'authorizing': {
          let auth;
          try {
            auth = await this.d.gateway.authorize({ key: a.idempotencyKey, amountCents: a.offer.totalCents, currency: a.offer.currency, token: request.paymentToken });
          } catch (e) {
            return this.defer(a, seller, `payment provider: ${toError(e).message}`);
          }
          if (auth.status === 'declined') {
            next = await this.advance(a, seller, { state: 'failed', paymentState: 'declined', failure: `payment declined: ${auth.reason}` });
          } else {
            next = await this.advance(a, seller, { state: 'ordering', paymentState: 'authorized', authorizationId: auth.authorizationId });
          }
          break;
        }
        case 'ordering': {
          let placed: OrderOutcome;
          try {
            placed = await this.d.gates.get(seller).run(
              () =>
                this.d.connector.order(seller, {
                  book: bookOf(request),
                  requestId: a.requestId,
                  idempotencyKey: a.idempotencyKey,
                  offerId: a.offer.offerId,
                  totalCents: a.offer.totalCents,
                  currency: a.offer.currency,
                  shipping: request.shippingAddress,
                }),
              classifyOrder,
            );
            recordCall(this.d.metrics, seller, 'order', placed);
          } catch (e) {
            // Nothing was sent: the attempt stays where it is and is tried again after the backoff.
            if (e instanceof OpenCircuitError) return this.defer(a, seller, `${seller.name} is unavailable (circuit open)`);
            throw e;
          }
          if (placed.kind === 'confirmed') {
            next = await this.advance(a, seller, {
              state: 'capturing',
              sellerOrderId: placed.orderId,
              orderTotalCents: placed.totalCents,
              deliveryEta: placed.deliveryEta,
            });
          } else if (placed.kind === 'rejected') {
            this.d.cache.invalidate(request.bookKey, seller.id);
            next = await this.advance(a, seller, { state: 'voiding', failure: `${seller.name} refused the order (${placed.status}): ${placed.reason}` });
          } else {
            const why = placed.kind === 'pending' ? 'the seller will confirm later' : `${placed.reason}${placed.status ? ` (HTTP ${placed.status})` : ''}`;
            next = await this.advance(a, seller, { state: 'unknown', lastError: why });
            if (next && (placed.kind === 'pending' || inline >= this.d.inlineRetries)) return this.defer(next, seller, why);
            inline += 1;
          }
          break;
        }
        case 'unknown': {
          // Ask the seller what became of the order; without a status endpoint, repeating the
          // order with the same key is the question (the seller answers with the same order).
          if (!seller.orderStatus) {
            next = await this.advance(a, seller, { state: 'ordering' });
            break;
          }
          const status = await this.d.connector.orderStatus(seller, {
            book: bookOf(request),
            requestId: a.requestId,
            idempotencyKey: a.idempotencyKey,
            sellerOrderId: a.sellerOrderId,
          });
          recordCall(this.d.metrics, seller, 'orderStatus', status);
          if (status.kind === 'placed') {
            next = await this.advance(a, seller, { state: 'capturing', sellerOrderId: status.orderId, orderTotalCents: status.totalCents, deliveryEta: status.deliveryEta });
          } else if (status.kind === 'not_placed') {
            next = await this.advance(a, seller, { state: 'ordering' });
          } else {
            return this.defer(a, seller, `order status unknown: ${status.reason}`);
          }
          break;
        }
        case 'capturing': {
          try {
            await this.d.gateway.capture({ key: a.idempotencyKey, amountCents: a.offer.totalCents });
          } catch (e) {
            return this.defer(a, seller, `capture: ${toError(e).message}`);
          }
          // The attempt's success and the request's ORDERED commit together: one transaction.
          if (await this.completeOrder(a, seller)) return 'succeeded';
          next = await this.advance(a, seller, { state: 'succeeded', paymentState: 'captured', nextCheckAt: null, leaseOwner: null, leaseExpiresAt: null });
          break;
        }
        case 'voiding': {
          try {
            await this.d.gateway.void({ key: a.idempotencyKey });
          } catch (e) {
            return this.defer(a, seller, `void: ${toError(e).message}`);
          }
          next = await this.advance(a, seller, { state: 'failed', paymentState: a.paymentState === 'authorized' ? 'voided' : a.paymentState, nextCheckAt: null, leaseOwner: null, leaseExpiresAt: null });
          break;
        }
        case 'succeeded':
        case 'failed':
          // Finished: make sure the request says so too (a crash may have come in between).
          return this.settle(a, seller);
        default: {
          const never: never = state;
          throw new Error(`unknown attempt state ${String(never)}`);
        }
      }
      // Another driver moved the attempt first: continue from what it wrote.
      a = next ?? (await this.reload(a));
    }
  }

  /**
   * Marks a captured attempt succeeded and its request ORDERED in one transaction. False when
   * the request is not ORDERING (the caller then finishes the attempt alone) or the attempt had
   * already moved (another driver finished it).
   */
  private async completeOrder(a: AttemptRow, seller: SellerRow): Promise<boolean> {
    const now = this.d.clock.now();
    let done: AttemptRow | null = null;
    try {
      await this.d.requests.commit(a.requestId, (cur) =>
        cur.status === 'ORDERING'
          ? {
              ...orderedChange(a, seller, now),
              effects: async (tx) => {
                done = await advanceAttempt(tx, a.id, a.state, {
                  state: 'succeeded',
                  paymentState: 'captured',
                  nextCheckAt: null,
                  leaseOwner: null,
                  leaseExpiresAt: null,
                  updatedAt: now,
                });
                if (!done) throw new AttemptMoved();
              },
            }
          : null,
      );
    } catch (e) {
      if (e instanceof AttemptMoved) return false;
      throw e;
    }
    if (!done) return false;
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
          ? { to: 'FAILED', type: 'PAYMENT_DECLINED', message: `Payment declined: ${reason}`, changes: { failureReason: reason, nextRunAt: null } }
          : null,
      );
      this.d.metrics?.attempts.inc({ state: a.state, payment: a.paymentState });
      return 'declined';
    }
    await this.d.requests.commit(a.requestId, (cur) =>
      cur.status === 'ORDERING'
        ? { type: 'ORDER_REFUSED', message: a.failure ?? 'the seller refused the order', data: { attemptNo: a.attemptNo } }
        : null,
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
    if (status >= 200 && status <= 299) {
      const parsed = parseOrderResponse(body, seller.order.response as OrderMapping);
      if (!parsed.orderId) return 'ignored';
      moved = await advanceAttempt(this.d.db, a.id, 'unknown', {
        ...due,
        state: 'capturing',
        sellerOrderId: parsed.orderId,
        orderTotalCents: parsed.totalCents,
        deliveryEta: parsed.deliveryEta,
      });
    } else if (status === 409 || status === 410 || status === 422) {
      const request = await findRequestById(this.d.db, a.requestId);
      if (request) this.d.cache.invalidate(request.bookKey, seller.id);
      moved = await advanceAttempt(this.d.db, a.id, 'unknown', { ...due, state: 'voiding', failure: `${seller.name} refused the order (${status})` });
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
        return { to: 'FAILED', type: 'FAILED', message: 'No seller could take the order before the deadline', changes: { failureReason: 'No seller could take the order before the deadline', nextRunAt: null } };
      }
      return { to: 'SEARCHING', type: 'SEARCH_STARTED', message: 'Looking for another offer after sellers refused the order', changes: { nextRunAt: now } };
    });
  }

  private async advance(a: AttemptRow, seller: SellerRow, changes: AttemptChanges): Promise<AttemptRow | null> {
    const now = this.d.clock.now();
    const finished = changes.state === 'succeeded' || changes.state === 'failed';
    return advanceAttempt(this.d.db, a.id, a.state, {
      ...(finished ? {} : { leaseOwner: this.d.owner, leaseExpiresAt: new Date(now.getTime() + this.leaseFor(seller)), nextCheckAt: new Date(now.getTime() + this.leaseFor(seller)) }),
      ...changes,
      updatedAt: now,
    });
  }

  /** Leaves the attempt for the reconciler: due again after a backoff, flagged after many tries. */
  private async defer(a: AttemptRow, seller: SellerRow, why: string): Promise<AttemptOutcome> {
    const now = this.d.clock.now();
    const tries = a.tries + 1;
    const backoff = this.d.unknownBackoffMs[Math.min(tries - 1, this.d.unknownBackoffMs.length - 1)] ?? 1000;
    const needsAttention = tries >= this.d.attentionAfterTries;
    const moved = await advanceAttempt(this.d.db, a.id, a.state, {
      nextCheckAt: new Date(now.getTime() + jitter(backoff)),
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
      await this.d.requests.commit(a.requestId, (cur) =>
        cur.status === 'ORDERING' ? { type: 'ORDER_UNRESOLVED', message: `Still confirming the order with ${seller.name} after ${tries} tries: ${why}` } : null,
      );
    } else if (moved && a.tries === 0) {
      await this.d.requests.commit(a.requestId, (cur) =>
        cur.status === 'ORDERING' ? { type: 'ORDER_IN_DOUBT', message: `Confirming the order with ${seller.name}: ${why}` } : null,
      );
    }
    return 'unknown';
  }

  private async reload(a: AttemptRow): Promise<AttemptRow> {
    const fresh = await findAttempt(this.d.db, a.id);
    if (!fresh) throw new Error(`attempt ${a.id} vanished`);
    return fresh;
  }

  /** How long an attempt is held for one step with this seller. */
  leaseFor(seller: SellerRow): number {
    return this.d.leaseMs + seller.timeoutMs;
  }
}

function classifyOrder(o: OrderOutcome) {
  const failed = o.kind === 'unknown';
  return {
    failed,
    latencyMs: o.latencyMs,
    aborted: failed && o.aborted,
    retryAfterMs: failed ? o.retryAfterMs : null,
    rateLimited: failed && o.status === 429,
  };
}

/** The request's move to ORDERED, with the order's details, for a captured attempt. */
function orderedChange(a: AttemptRow, seller: SellerRow, placedAt: Date): Change {
  const total = a.orderTotalCents ?? a.offer.totalCents;
  return {
    to: 'ORDERED',
    type: 'ORDERED',
    message: `Ordered from ${seller.name} for ${money(total, a.offer.currency)} (order ${a.sellerOrderId})`,
    changes: {
      nextRunAt: null,
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

/** Rolls back a combined commit whose attempt another driver had already moved on. */
class AttemptMoved extends Error {}

function jitter(ms: number): number {
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}
