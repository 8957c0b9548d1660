import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { Channel } from '../infra/channel.js';
import type { PubSub } from '../infra/pubsub.js';
import type { SharedOffers } from '../infra/redis-offers.js';
import { ASKED_CONDITIONS, type CachedQuote, MemoryOfferCache, type OfferCache, type SetScope } from './offer-cache.js';

/** What instances tell each other about quotes, on one topic. */
export type FleetMessage =
  | { type: 'set'; from: string; bookKey: string; sellerId: string; quote: CachedQuote }
  | { type: 'invalidate'; from: string; bookKey: string; sellerId: string }
  /** A round this instance led has ended: rounds attached to it on other instances go on by themselves. */
  | { type: 'ended'; from: string; round: string };

export const FLEET_OFFERS = 'engine:offers';

type Arrival = (bookKey: string, sellerId: string, quote: CachedQuote) => void;

/**
 * The offer cache of a fleet (SPEC §11: a quote one instance received is a cache hit on every
 * other). Reads stay local and synchronous; every answer this instance stores is published to the
 * others (and written to Redis, when there is one, for instances that start later), and every
 * answer they publish lands here. Losing a message costs a seller call (or a refused order at a
 * seller that checks prices itself), never a wrong price: each entry keeps its own expiry, and
 * orders revalidate cached prices anyway.
 */
export class FleetOfferCache implements OfferCache {
  private readonly local: MemoryOfferCache;
  private readonly arrivals = new Set<Arrival>();
  private readonly endings = new Set<(round: string) => void>();
  private channel: Channel<FleetMessage> | null = null;
  /** Resolves once messages from other instances are being received. */
  readonly listening: Promise<void>;

  constructor(
    private readonly o: {
      pubsub: PubSub;
      /** Redis: answers outlive the instances that received them. Null: the fleet is whoever is running. */
      shared: SharedOffers | null;
      /** This instance's name: its own messages come back to it and are skipped. */
      instance: string;
      clock: Clock;
      log: Logger;
      maxEntries?: number;
    },
  ) {
    this.local = new MemoryOfferCache(o.maxEntries);
    this.listening = o.pubsub.subscribe<FleetMessage>(FLEET_OFFERS).then(
      (ch) => {
        this.channel = ch;
        void this.listen(ch);
      },
      (err: unknown) => o.log.warn({ err }, 'offers from other instances are not received: the subscription failed'),
    );
  }

  get(bookKey: string, sellerId: string, condition: 'new' | 'used' | 'any', now: number): CachedQuote | null {
    return this.local.get(bookKey, sellerId, condition, now);
  }

  answers(bookKey: string, condition: 'new' | 'used' | 'any', now: number): ReadonlyMap<string, CachedQuote> {
    return this.local.answers(bookKey, condition, now);
  }

  set(bookKey: string, sellerId: string, quote: CachedQuote, scope: SetScope = 'fleet'): boolean {
    const changed = this.local.set(bookKey, sellerId, quote);
    if (scope === 'fleet') {
      this.publish({ type: 'set', from: this.o.instance, bookKey, sellerId, quote });
      this.o.shared?.put(entryKey(bookKey, sellerId, quote.condition), quote, quote.expiresAt - this.o.clock.now().getTime());
    }
    this.arrived(bookKey, sellerId, quote);
    return changed;
  }

  invalidate(bookKey: string, sellerId: string): void {
    this.local.invalidate(bookKey, sellerId);
    this.publish({ type: 'invalidate', from: this.o.instance, bookKey, sellerId });
    this.o.shared?.remove(ASKED_CONDITIONS.map((c) => entryKey(bookKey, sellerId, c)));
  }

  size(): number {
    return this.local.size();
  }

  /**
   * Loads from Redis, in one read, the answers other instances got for a book that this instance
   * does not have (it started after they were received, or missed their messages).
   */
  async warm(bookKey: string, condition: 'new' | 'used' | 'any', sellerIds: readonly string[]): Promise<void> {
    const shared = this.o.shared;
    if (!shared) return;
    const now = this.o.clock.now().getTime();
    const asked = condition === 'any' ? (['any'] as const) : ([condition, 'any'] as const);
    const keys = sellerIds.filter((id) => !this.local.get(bookKey, id, condition, now)).flatMap((id) => asked.map((c) => ({ id, key: entryKey(bookKey, id, c) })));
    if (keys.length === 0) return;
    const values = await shared.getMany(keys.map((k) => k.key));
    const at = this.o.clock.now().getTime();
    values.forEach((v, i) => {
      if (isCachedQuote(v) && v.expiresAt > at) this.local.set(bookKey, keys[i]!.id, v);
    });
  }

  /** Calls `fn` with every answer stored here from now on, this instance's and the others' (a TTL of 0 included). */
  onArrival(fn: Arrival): () => void {
    this.arrivals.add(fn);
    return () => this.arrivals.delete(fn);
  }

  /** Calls `fn` with every round another instance announces ended. */
  onEnded(fn: (round: string) => void): () => void {
    this.endings.add(fn);
    return () => this.endings.delete(fn);
  }

  announceEnded(round: string): void {
    this.publish({ type: 'ended', from: this.o.instance, round });
  }

  close(): void {
    this.channel?.close();
  }

  private publish(message: FleetMessage): void {
    void this.o.pubsub.publish(FLEET_OFFERS, message).catch((err: unknown) => this.o.log.debug({ err }, 'could not publish to other instances'));
  }

  private arrived(bookKey: string, sellerId: string, quote: CachedQuote): void {
    for (const fn of [...this.arrivals]) fn(bookKey, sellerId, quote);
  }

  /** Applies what other instances publish; the watchers of a changed book were woken by the instance that got the answer. */
  private async listen(ch: Channel<FleetMessage>): Promise<void> {
    for await (const m of ch) {
      if (m.from === this.o.instance) continue;
      switch (m.type) {
        case 'set':
          if (!isCachedQuote(m.quote)) break;
          this.local.set(m.bookKey, m.sellerId, m.quote);
          this.arrived(m.bookKey, m.sellerId, m.quote);
          break;
        case 'invalidate':
          this.local.invalidate(m.bookKey, m.sellerId);
          break;
        case 'ended':
          for (const fn of [...this.endings]) fn(m.round);
          break;
        default: {
          const never: never = m;
          this.o.log.debug({ message: never }, 'unknown message from another instance');
        }
      }
    }
  }
}

/** One seller's answer for one book and asked condition, in Redis. */
function entryKey(bookKey: string, sellerId: string, condition: 'new' | 'used' | 'any'): string {
  return `${bookKey}|${sellerId}|${condition}`;
}

/** What came over the wire is a cached answer (another version of the broker may have sent it). */
function isCachedQuote(v: unknown): v is CachedQuote {
  if (typeof v !== 'object' || v === null) return false;
  const q = v as Partial<CachedQuote>;
  return (
    Array.isArray(q.offers) &&
    (q.condition === 'new' || q.condition === 'used' || q.condition === 'any') &&
    typeof q.quotedAt === 'number' &&
    typeof q.expiresAt === 'number'
  );
}
