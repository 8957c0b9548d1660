import type { SharedOffers } from '../infra/redis-offers.js';
import type { FleetOfferCache } from './fleet-offer-cache.js';
import type { CachedQuote } from './offer-cache.js';
import type { RoundClaim, RoundFleet } from './round.js';

/**
 * One round per book across the fleet (SPEC §3 coalescing, §11): a lease in Redis names the
 * instance that calls the sellers; rounds for the same book on other instances attach to it and
 * take its answers as the shared cache delivers them. The lease is renewed while the round runs,
 * so a leader that dies loses it within `leaseMs` and an attached round takes over.
 */
export class FleetRounds implements RoundFleet {
  private readonly leaseMs: number;
  private readonly checkMs: number;

  constructor(
    private readonly o: {
      cache: FleetOfferCache;
      shared: SharedOffers;
      /** This instance's name in the registry. */
      instance: string;
      /** How long a leader that stopped renewing keeps its round. */
      leaseMs?: number;
      /** How often an attached round checks that its leader still holds the lease. */
      checkMs?: number;
    },
  ) {
    this.leaseMs = o.leaseMs ?? 5_000;
    this.checkMs = o.checkMs ?? Math.max(50, Math.min(1_000, Math.floor(this.leaseMs / 3)));
  }

  warm(bookKey: string, condition: 'new' | 'used' | 'any', sellerIds: readonly string[]): Promise<void> {
    return this.o.cache.warm(bookKey, condition, sellerIds);
  }

  async claim(round: string): Promise<RoundClaim> {
    const { shared, instance, cache } = this.o;
    const got = await shared.claim(round, instance, this.leaseMs);
    if (got === null) return { kind: 'local' };
    if (got !== 'owner') return { kind: 'attach' };
    const renewal = setInterval(() => void shared.renew(round, instance, this.leaseMs), Math.max(50, Math.floor(this.leaseMs / 3)));
    renewal.unref();
    return {
      kind: 'lead',
      end: () => {
        clearInterval(renewal);
        shared.release(round, instance);
        cache.announceEnded(round);
      },
    };
  }

  attend(round: string, bookKey: string, onAnswer: (sellerId: string, quote: CachedQuote) => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const offArrival = this.o.cache.onArrival((b, sellerId, quote) => {
        if (b === bookKey) onAnswer(sellerId, quote);
      });
      const offEnded = this.o.cache.onEnded((r) => {
        if (r === round) done();
      });
      // The leader may have ended before this listened, or died: its lease says so.
      const check = async () => {
        if ((await this.o.shared.holder(round)) === null) done();
      };
      const timer = setInterval(() => void check(), this.checkMs);
      timer.unref();
      signal.addEventListener('abort', done, { once: true });
      void check();
      if (signal.aborted) done();
      function done() {
        offArrival();
        offEnded();
        clearInterval(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}
