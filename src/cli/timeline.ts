import type { RequestStatus } from '../domain/types.js';
import type { TrackedEvent, TrackedRequest } from './operations.js';

/** What one new state of the request adds to what the user has already been shown. */
export interface Change {
  request: TrackedRequest;
  /** The status before this state; null for the first state shown. */
  previousStatus: RequestStatus | null;
  /** Events not shown before, oldest first. */
  events: TrackedEvent[];
  /** The best offer, when it differs from the last one shown (by seller, condition or total). */
  bestOffer: NonNullable<TrackedRequest['bestOffer']> | null;
}

/**
 * Turns the stream of full request states into changes to print. Each state carries the whole
 * history, so a state that was coalesced or arrived after a reconnect still shows every event
 * exactly once, next to the status it led to; a state no newer than the last one is dropped.
 */
export class Timeline {
  private last: TrackedRequest | null = null;
  private readonly shown = new Set<string>();
  private lastOffer: string | null = null;

  get current(): TrackedRequest | null {
    return this.last;
  }

  apply(request: TrackedRequest): Change | null {
    if (this.last && request.revision <= this.last.revision) return null;
    const previousStatus = this.last?.status ?? null;
    this.last = request;
    // A state's events are read when it is resolved, so they may run ahead of its own status and
    // revision: an event newer than the state waits for the state it belongs to.
    const events = request.events.filter((e) => e.revision <= request.revision && !this.shown.has(e.id));
    for (const e of events) this.shown.add(e.id);
    const offer = request.bestOffer;
    const offerKey = offer ? `${offer.seller.id}|${offer.condition}|${offer.total.cents}|${offer.total.currency}` : null;
    const offerChanged = offerKey !== null && offerKey !== this.lastOffer;
    if (offerKey !== null) this.lastOffer = offerKey;
    return { request, previousStatus, events, bestOffer: offerChanged ? offer : null };
  }
}

/** "+0.04s", "+12.3s", "+2m05s", "+1h02m": time from the request's creation to `at`. */
export function offset(createdAt: string, at: string): string {
  const ms = Math.max(0, Date.parse(at) - Date.parse(createdAt));
  if (ms < 10_000) return `+${(ms / 1000).toFixed(2)}s`;
  if (ms < 60_000) return `+${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `+${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `+${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** "in 59m", "in 2h05m", "in 3d": how long until `when`, for deadlines. */
export function until(now: Date, when: string): string {
  const s = Math.max(0, Math.round((Date.parse(when) - now.getTime()) / 1000));
  if (s < 60) return `in ${s}s`;
  const m = Math.round(s / 60);
  if (m < 60) return `in ${m}m`;
  if (m < 24 * 60) return `in ${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
  return `in ${Math.round(m / (24 * 60))}d`;
}
