import { randomUUID } from 'node:crypto';
import type { Db } from '../db/client.js';
import { type AttemptRow, type RequestRow, type SellerRow } from '../db/schema.js';
import { attemptsForRequests, insertAttempt, nextAttemptNo } from '../db/queries/attempts.js';
import type { InventoryGuard } from '../infra/inventory.js';
import type { Metrics } from '../infra/metrics.js';
import type { ParsedOffer } from '../partners/mapping.js';
import type { PartnerConnector } from '../partners/connector.js';
import type { Clock } from '../domain/clock.js';
import { bookOf, money } from '../domain/books.js';
import type { RequestService } from '../services/requests.js';
import type { AttemptDriver, AttemptOutcome } from './attempt-driver.js';
import type { OfferCache } from './offer-cache.js';
import { type SeenOffer, askedCondition, evaluate, isValid, snapshot, toSeenOffer } from './offers.js';
import { quoteRef, recordCall } from './round.js';
import type { SellerDirectory } from './seller-directory.js';
import type { SellerGates } from './seller-gate.js';

export interface OrderingDeps {
  db: Db;
  requests: RequestService;
  driver: AttemptDriver;
  connector: Pick<PartnerConnector, 'quote'>;
  inventory: InventoryGuard;
  gates: SellerGates;
  cache: OfferCache;
  directory: SellerDirectory;
  clock: Clock;
  /** This instance, as named in leases. */
  owner: string;
  callbackUrl: (sellerId: string) => string;
  /** Waits for an asynchronous quote answered by callback (a seller that answers 202). */
  awaitQuote: (ref: string, ms: number, since: number) => Promise<readonly ParsedOffer[] | null>;
  metrics?: Metrics;
}

/** What became of a request handed to ordering with its candidate offers. */
export type OrderingResult =
  /** An order was placed and paid. */
  | 'ordered'
  /** Payment was declined: the request FAILED. */
  | 'failed'
  /** An attempt's outcome is unknown: the reconciler finishes it. */
  | 'in_doubt'
  /** Attempts were made and refused; the request went back to searching (or FAILED at the deadline). */
  | 'refused'
  /** No attempt could start (no inventory left, prices moved, request changed): nothing was written. */
  | 'not_started';

const LIVE_TARGETS = new Set(['SEARCHING', 'QUOTED', 'ORDERING']);

/**
 * Placing orders exactly once (SPEC §4). Every step is written to the attempt's row before the
 * next external call, with the attempt's idempotency key on every call, so `drive` can resume
/**
 * Picks what to order for a request: the candidates cheapest first, each revalidated when it
 * came from the cache, each started as an attempt in one transaction with the request's move to
 * ORDERING, then handed to the attempt driver.
 */
export class OrderingService {
  constructor(private readonly d: OrderingDeps) {}


  /**
   * Tries the candidates, cheapest first, until one is ordered or none is left. Offers this
   * request's attempts were already refused on (same seller, offer and total) are not tried again.
   */
  async orderFirst(request: RequestRow, candidates: readonly SeenOffer[]): Promise<OrderingResult> {
    const refusedBefore = new Set(
      (await attemptsForRequests(this.d.db, [request.id]))
        .filter((a) => a.state === 'failed')
        .map((a) => offerKey(a.sellerId, a.offer.offerId, a.offer.totalCents)),
    );
    let attempted = false;
    for (const candidate of candidates) {
      if (this.d.clock.now() >= request.expiresAt) break;
      if (refusedBefore.has(offerKey(candidate.sellerId, candidate.offerId, candidate.totalCents))) continue;
      const seller = await this.d.directory.get(candidate.sellerId);
      // A seller whose breaker is open is not offered new orders until a probe succeeds.
      if (!seller || !seller.enabled || !this.d.gates.get(seller).available()) continue;
      const reservation = `${seller.id}|${request.bookKey}|${candidate.condition}|${candidate.offerId ?? ''}`;
      if (!(await this.d.inventory.reserve(reservation, candidate.inventory, Date.parse(candidate.quotedAt)))) continue;

      let outcome: AttemptOutcome | 'not_started' = 'not_started';
      try {
        const offer = candidate.fromCache ? await this.revalidate(seller, request, candidate) : candidate;
        // The request as passed in is current only for the first attempt.
        const attempt = offer && (await this.start(request.id, seller, offer, attempted ? undefined : request));
        if (attempt) {
          attempted = true;
          outcome = await this.d.driver.drive(attempt, request);
        } else if (offer) {
          // The request moved on (canceled, budget lowered, deadline) or another attempt exists.
          break;
        }
      } finally {
        // An order in doubt keeps its unit: it may well have been placed. A newer quote resets the count.
        await this.d.inventory.release(reservation, outcome === 'succeeded' || outcome === 'unknown');
      }
      if (outcome === 'succeeded') return 'ordered';
      if (outcome === 'declined') return 'failed';
      if (outcome === 'unknown') return 'in_doubt';
      if (outcome === 'rejected') refusedBefore.add(offerKey(candidate.sellerId, candidate.offerId, candidate.totalCents));
    }
    if (!attempted) return 'not_started';
    await this.d.driver.afterRefusals(request.id);
    return 'refused';
  }

  /**
   * A cached price is never ordered on: ask the seller again and take its fresh offer for the
   * same condition if it still fits the request.
   */
  private async revalidate(seller: SellerRow, request: RequestRow, cached: SeenOffer): Promise<SeenOffer | null> {
    const now = this.d.clock.now().getTime();
    const ref = quoteRef(seller.id, askedCondition(request.conditions), request.bookKey);
    const outcome = await this.d.connector.quote(seller, {
      book: bookOf(request),
      condition: askedCondition(request.conditions),
      requestId: request.id,
      quoteRef: ref,
      callbackUrl: this.d.callbackUrl(seller.id),
    });
    recordCall(this.d.metrics, seller, 'quote', outcome);
    let offers: readonly ParsedOffer[];
    if (outcome.kind === 'offers') offers = outcome.offers;
    else if (outcome.kind === 'not_carried') offers = [];
    else if (outcome.kind === 'pending') {
      // An asynchronous seller answers by callback: the fresh quote is worth the wait.
      const arrived = await this.d.awaitQuote(ref, seller.timeoutMs, now);
      if (!arrived) return null;
      offers = arrived;
    } else return null;
    this.d.cache.set(request.bookKey, seller.id, {
      offers,
      condition: askedCondition(request.conditions),
      quotedAt: now,
      expiresAt: now + seller.offerTtlSeconds * 1000,
    });
    const fresh = offers
      .filter((o) => o.available && (o.inventory === null || o.inventory > 0))
      .map((o) => toSeenOffer(seller.id, o, now, false));
    const sameOffer = fresh.filter((o) => cached.offerId !== null && o.offerId === cached.offerId);
    const { valid } = evaluate(sameOffer.length > 0 ? sameOffer : fresh, request);
    return valid[0] ?? null;
  }

  /**
   * Step 1 of SPEC §4, in one transaction: the request may still order (status, deadline,
   * budget), the attempt row is inserted with its idempotency key, and the request is ORDERING.
   * The unique index on live attempts refuses a second one.
   */
  private async start(requestId: string, seller: SellerRow, offer: SeenOffer, known?: RequestRow): Promise<AttemptRow | null> {
    let attempt: AttemptRow | null = null;
    try {
      await this.d.requests.commit(requestId, (cur) => {
        const now = this.d.clock.now();
        if (!LIVE_TARGETS.has(cur.status) || now >= cur.expiresAt || !isValid(offer, cur)) return null;
        return {
          to: 'ORDERING',
          type: 'ORDER_STARTED',
          message: `Ordering from ${seller.name} for ${money(offer.totalCents, offer.currency)}`,
          // The offer being ordered is the cheapest valid one, hence the best seen.
          changes: { nextRunAt: null, bestOffer: snapshot(offer) },
          data: { sellerId: seller.id, totalCents: offer.totalCents },
          effects: async (tx) => {
            const attemptNo = await nextAttemptNo(tx, requestId);
            attempt = await insertAttempt(tx, {
              id: randomUUID(),
              requestId,
              attemptNo,
              sellerId: seller.id,
              offer: snapshot(offer),
              idempotencyKey: `${requestId}:${attemptNo}`,
              state: 'authorizing',
              paymentState: 'none',
              leaseOwner: this.d.owner,
              leaseExpiresAt: new Date(now.getTime() + this.d.driver.leaseFor(seller)),
              nextCheckAt: new Date(now.getTime() + this.d.driver.leaseFor(seller)),
              createdAt: now,
              updatedAt: now,
            });
          },
        };
      }, known);
    } catch (e) {
      // A live attempt already exists (unique index): never start a second one.
      if (isUniqueViolation(e)) return null;
      throw e;
    }
    return attempt;
  }
}

function offerKey(sellerId: string, offerId: string | null, totalCents: number): string {
  return `${sellerId}|${offerId ?? ''}|${totalCents}`;
}

function isUniqueViolation(e: unknown): boolean {
  for (let cur: unknown = e; cur; cur = (cur as { cause?: unknown }).cause) {
    if ((cur as { code?: unknown }).code === '23505') return true;
  }
  return false;
}
