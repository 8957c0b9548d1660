import { sleep } from '../domain/clock.js';

/**
 * Calls per second to one key (a seller): no more than `perSecond` calls start in any one-second
 * window. A sliding-window log of bookings: a call books the earliest start that keeps every
 * window within the limit and waits until then, so callers over the limit queue in the order they
 * booked rather than all retrying at each freed slot. One interface; this in-process adapter
 * serves one instance, the Redis one (redis-call-rate.ts) every instance together.
 *
 * Why a booking never crowds a window: it starts at `max(now, nth + SPACING_MS)`, where `nth` is
 * the `perSecond`-th latest booking and SPACING_MS is a second or more. A one-second window holding
 * the new start begins after `nth`, so besides the new start it holds only bookings later than
 * `nth`: at most `perSecond - 1` of them. Cancelling a booking only empties windows, so the rule
 * stays sound with holes in the log.
 *
 * SPACING_MS is a second and GUARD_MS: a call starts a little after its booked time (up to
 * LATE_MS, see CallTurn) and reaches the seller a little later still, and the seller counts what
 * arrives, by its own clock. The guard costs 5% of the rate and keeps that jitter off its count.
 */
export interface CallRateLimiter {
  /** Books one call's start; resolves with how long to wait for it. Never rejects. */
  book(key: string, perSecond: number): Promise<Booking>;
  /** Gives back a booking whose call was never made, so its slot serves someone else. */
  cancel(key: string, booking: Booking): void;
}

export interface Booking {
  readonly id: string;
  /** From when the booking was answered until the call may start. */
  readonly waitMs: number;
}

export const WINDOW_MS = 1_000;
export const GUARD_MS = 50;
/** Between a booking and the one `perSecond` places after it. */
export const SPACING_MS = WINDOW_MS + GUARD_MS;

/**
 * A seller's Retry-After, told to every instance: a pause one instance was asked for holds on all.
 * Without an adapter (one instance), the seller's gate alone keeps the pause.
 */
export interface SharedPauses {
  /** Pauses calls to `key` for `ms` everywhere; a longer pause already in force stands. */
  publish(key: string, ms: number): void;
  /** The pause in force for `key`, in ms from now (0: none), as read a moment ago at most. */
  remaining(key: string): number | Promise<number>;
  /** An operator lifted the pause by hand: it is not read back from the shared store. */
  clear(key: string): void;
  /** The pause in force for `key` read from the shared store now, sharing no cached read (for operators' views). */
  current?(key: string): Promise<number>;
}

interface Entry {
  id: string;
  at: number;
}

export class MemoryCallRate implements CallRateLimiter {
  /** Per key, bookings in start order. */
  private readonly logs = new Map<string, Entry[]>();
  private seq = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  async book(key: string, perSecond: number): Promise<Booking> {
    return this.bookNow(key, perSecond);
  }

  /** `book` without the promise (the Redis adapter falls back on it within one call). */
  bookNow(key: string, perSecond: number): Booking {
    const now = this.now();
    let log = this.logs.get(key);
    if (!log) {
      log = [];
      this.logs.set(key, log);
    }
    // Bookings a full spacing old can hold back no start from now on.
    let gone = 0;
    while (gone < log.length && log[gone]!.at <= now - SPACING_MS) gone++;
    if (gone > 0) log.splice(0, gone);
    const at = log.length < perSecond ? now : Math.max(now, log[log.length - perSecond]!.at + SPACING_MS);
    const entry = { id: `m${this.seq++}`, at };
    // Usually the latest booking; after cancellations it may fall between two others.
    let i = log.length;
    while (i > 0 && log[i - 1]!.at > at) i--;
    log.splice(i, 0, entry);
    return { id: entry.id, waitMs: at - now };
  }

  cancel(key: string, booking: Booking): void {
    const log = this.logs.get(key);
    if (!log) return;
    const i = log.findIndex((e) => e.id === booking.id);
    if (i >= 0) log.splice(i, 1);
    if (log.length === 0) this.logs.delete(key);
  }
}

/**
 * Beyond this, a call held after its booked start (in queues, or by a slow answer to the booking)
 * books again: a late start could put more than the limit into one window with the calls booked
 * after it. Lateness is counted from when the booking was asked for, so it is never underrated.
 */
export const LATE_MS = 20;

/**
 * One call's place in a key's schedule: booked and waited for before the caller queues for its
 * concurrency slots, so nobody holds a slot while waiting its turn; `claim` just before sending.
 */
export class CallTurn {
  private booking: Booking;
  private due: number;
  private used = false;

  private constructor(
    private readonly limiter: CallRateLimiter,
    private readonly key: string,
    private readonly perSecond: number,
    booking: Booking,
    askedAt: number,
  ) {
    this.booking = booking;
    this.due = askedAt + booking.waitMs;
  }

  /** Books a start and waits for it (or until `signal` aborts). */
  static async take(limiter: CallRateLimiter, key: string, perSecond: number, signal?: AbortSignal): Promise<CallTurn> {
    const askedAt = performance.now();
    const turn = new CallTurn(limiter, key, perSecond, await limiter.book(key, perSecond), askedAt);
    await sleep(turn.due - performance.now(), signal);
    return turn;
  }

  /**
   * Called just before the call starts. A turn the queues held past its start books again and
   * waits once more (rare: the caller holds its slots meanwhile). True: the call starts now;
   * false: `needed` said no after the wait (the booking goes back).
   */
  async claim(needed: () => boolean, signal?: AbortSignal): Promise<boolean> {
    if (performance.now() - this.due > LATE_MS) {
      this.limiter.cancel(this.key, this.booking);
      const askedAt = performance.now();
      this.booking = await this.limiter.book(this.key, this.perSecond);
      this.due = askedAt + this.booking.waitMs;
      await sleep(this.due - performance.now(), signal);
    }
    if (!needed()) return false;
    this.used = true;
    return true;
  }

  /** After the call, or instead of it: a booking never used goes back. */
  release(): void {
    if (!this.used) this.limiter.cancel(this.key, this.booking);
    this.used = true;
  }
}

