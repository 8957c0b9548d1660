import { randomUUID } from 'node:crypto';
import type { Db } from '../db/client.js';
import { isUniqueViolation } from '../db/errors.js';
import { type AttemptRow, type RequestRow, type SellerRow } from '../db/schema.js';
import type { InventoryGuard } from '../infra/inventory.js';
import type { Metrics } from '../infra/metrics.js';
import type { ParsedOffer } from '../partners/mapping.js';
import type { SellerPipeline } from '../partners/pipeline.js';
import type { Clock } from '../domain/clock.js';
import { bookOf } from '../domain/books.js';
import { events } from '../domain/events.js';
import type { RequestService } from '../services/requests.js';
import type { AttemptDriver, AttemptOutcome } from './attempt-driver.js';
import type { OfferCache } from './offer-cache.js';
import { OfferExclusions, type SeenOffer, askedCondition, evaluate, isValid, snapshot, toSeenOffer } from './offers.js';
import { quoteRef } from './round.js';
import type { SellerDirectory } from './seller-directory.js';
import type { SellerGates } from '../partners/seller-gate.js';

export interface OrderingDeps {
  db: Db;
  requests: RequestService;
  driver: AttemptDriver;
  /** Revalidation quotes go through the one seller-call pipeline, like a round's. */
  pipeline: Pick<SellerPipeline, 'quote'>;
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
 * Picks what to order for a request (SPEC §4): the candidates cheapest first, each revalidated
 * when it came from the cache (by a fresh quote, or by the seller's own price check at order
 * time), each started as an attempt in one transaction with the request's move to ORDERING, then
 * handed to the attempt driver.
 */
export class OrderingService {
  constructor(private readonly d: OrderingDeps) {}

  /**
   * Tries the candidates, cheapest first, until one is ordered or none is left. What cannot be
   * taken is noted in `exclusions` — a refusal, a last copy other requests hold, a cached price
   * revalidated away — so the caller can search again at once without it.
   */
  async orderFirst(request: RequestRow, candidates: readonly SeenOffer[], exclusions: OfferExclusions): Promise<OrderingResult> {
    let attempted = false;
    for (const candidate of candidates) {
      if (this.d.clock.now() >= request.expiresAt) break;
      if (exclusions.excludes(candidate)) continue;
      const seller = await this.d.directory.get(candidate.sellerId);
      // A seller whose breaker is open is not offered new orders until a probe succeeds.
      if (!seller || !seller.enabled || !this.d.gates.get(seller).available()) {
        exclusions.lose(candidate);
        continue;
      }
      const reservation = `${seller.id}|${request.bookKey}|${candidate.condition}|${candidate.offerId ?? ''}`;
      if (!(await this.d.inventory.reserve(reservation, candidate.inventory, Date.parse(candidate.quotedAt)))) {
        exclusions.lose(candidate);
        continue;
      }

      let outcome: AttemptOutcome | 'not_started' = 'not_started';
      // A seller that checks the price at order time revalidates a cached one itself (SPEC §3):
      // its refusal drops the cached answer, and the request searches again at once.
      const unquoted = candidate.fromCache && seller.orderChecksPrice;
      try {
        const offer = candidate.fromCache && !unquoted ? await this.revalidate(seller, request, candidate) : candidate;
        // The request as passed in is current only for the first attempt.
        const started = offer && (await this.start(request.id, seller, offer, unquoted, attempted ? undefined : request));
        if (started) {
          attempted = true;
          // The request as ORDERING wrote it: the driver's ORDERED needs no read first.
          outcome = await this.d.driver.drive(started.attempt, started.request);
        } else if (offer) {
          // The request moved on (canceled, budget lowered, deadline) or another attempt exists.
          break;
        } else {
          exclusions.lose(candidate);
        }
      } finally {
        // An order in doubt keeps its unit: it may well have been placed. A newer quote resets the count.
        await this.d.inventory.release(reservation, outcome === 'succeeded' || outcome === 'unknown');
      }
      if (outcome === 'succeeded') return 'ordered';
      if (outcome === 'declined') return 'failed';
      if (outcome === 'unknown') return 'in_doubt';
      if (outcome === 'rejected') {
        if (unquoted) exclusions.refusePrice(candidate);
        else exclusions.refuse(candidate);
      }
    }
    if (!attempted) return 'not_started';
    await this.d.driver.afterRefusals(request.id);
    return 'refused';
  }

  /**
   * A cached price is not ordered on as it is (unless the seller checks it at order time): ask
   * the seller again and take its fresh offer for the same condition if it still fits the request.
   */
  private async revalidate(seller: SellerRow, request: RequestRow, cached: SeenOffer): Promise<SeenOffer | null> {
    const now = this.d.clock.now().getTime();
    const ref = quoteRef(seller.id, askedCondition(request.conditions), request.bookKey);
    const outcome = await this.d.pipeline.quote(seller, {
      book: bookOf(request),
      condition: askedCondition(request.conditions),
      requestId: request.id,
      quoteRef: ref,
      callbackUrl: this.d.callbackUrl(seller.id),
    });
    let offers: readonly ParsedOffer[];
    if (outcome.kind === 'offers') offers = outcome.offers;
    // A query the seller cannot answer (400/422) is, for this request, a seller without the book.
    else if (outcome.kind === 'not_carried' || outcome.kind === 'unanswerable') offers = [];
    else if (outcome.kind === 'pending') {
      // An asynchronous seller answers by callback: the fresh quote is worth the wait.
      const arrived = await this.d.awaitQuote(ref, seller.timeoutMs, now);
      if (!arrived) return null;
      offers = arrived;
    } else return null; // failed, or refused by the seller's gate (breaker open, Retry-After)
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
  private async start(
    requestId: string,
    seller: SellerRow,
    offer: SeenOffer,
    unquoted: boolean,
    known?: RequestRow,
  ): Promise<{ attempt: AttemptRow; request: RequestRow } | null> {
    let written;
    try {
      written = await this.d.requests.commitWithAttempt(requestId, (cur) => {
        const now = this.d.clock.now();
        if (!LIVE_TARGETS.has(cur.status) || now >= cur.expiresAt || !isValid(offer, cur)) return null;
        const shown = cur.bestOffer;
        // Dearer than what the user was shown: only because that offer is gone, and the event says so.
        const dearer = shown !== null && shown.currency === offer.currency && offer.totalCents > shown.totalCents;
        const heldUntil = new Date(now.getTime() + this.d.driver.leaseFor(seller));
        return {
          to: 'ORDERING',
          ...events.orderStarted({ seller, totalCents: offer.totalCents, currency: offer.currency, shown: dearer ? shown : null }),
          // The offer being ordered is the cheapest valid one, hence the best seen.
          changes: { nextRunAt: null, bestOffer: snapshot(offer) },
          attempt: {
            start: { id: randomUUID(), sellerId: seller.id, offer: unquoted ? { ...snapshot(offer), priceCheckedAtOrder: true } : snapshot(offer), leaseOwner: this.d.owner, leaseExpiresAt: heldUntil, nextCheckAt: heldUntil },
          },
        };
      }, known);
    } catch (e) {
      // A live attempt already exists (unique index): never start a second one.
      if (isUniqueViolation(e)) return null;
      throw e;
    }
    return written?.attempt ? { attempt: written.attempt, request: written.row } : null;
  }

}
