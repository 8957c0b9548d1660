import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { busiestWindow } from '../../test/support/call-rate.js';
import { freePort } from '../../test/support/broker-process.js';
import { type Booking, type CallRateLimiter, CallTurn, GUARD_MS, LATE_MS, MemoryCallRate, SPACING_MS } from './call-rate.js';
import { RedisCallRate } from './redis-call-rate.js';

describe('busiestWindow', () => {
  it('counts starts in half-open one-second windows', () => {
    expect(busiestWindow([])).toBe(0);
    expect(busiestWindow([0, 999, 1000, 1999])).toBe(2);
    expect(busiestWindow([0, 1, 2, 998, 999])).toBe(5);
    expect(busiestWindow([5, 0, 1000, 500])).toBe(3);
  });
});

describe('MemoryCallRate', () => {
  it('lets the first N start at once, then books each next start a second (and the guard) after the N-th latest', async () => {
    expect(SPACING_MS).toBe(1_000 + GUARD_MS);
    let now = 10_000;
    const rate = new MemoryCallRate(() => now);
    const waits = [];
    for (let i = 0; i < 7; i++) waits.push((await rate.book('s', 3)).waitMs);
    const d = SPACING_MS;
    expect(waits).toEqual([0, 0, 0, d, d, d, 2 * d]);
    now += 1_500;
    // Starts at 0 ×3, d ×3 and 2d (from 10000): the third latest is at d, so the next goes at 2d.
    expect((await rate.book('s', 3)).waitMs).toBe(2 * d - 1_500);
    now += 1_000;
    // By now only the two starts at 2d can hold a new one back.
    expect((await rate.book('s', 3)).waitMs).toBe(0);
    expect((await rate.book('other', 3)).waitMs).toBe(0);
  });

  it('gives a cancelled booking back to the next caller', async () => {
    const now = 0;
    const rate = new MemoryCallRate(() => now);
    const first = await rate.book('s', 1);
    const second = await rate.book('s', 1);
    expect([first.waitMs, second.waitMs]).toEqual([0, SPACING_MS]);
    rate.cancel('s', second);
    expect((await rate.book('s', 1)).waitMs).toBe(SPACING_MS);
    rate.cancel('s', first);
    rate.cancel('s', first); // twice is harmless
  });

  it('never lets more than N calls start in any one-second window (arrivals, limits and cancellations at random)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.array(
          fc.record({ gap: fc.integer({ min: 0, max: 400 }), cancelAfter: fc.option(fc.integer({ min: 0, max: 2_000 }), { nil: null }) }),
          { minLength: 1, maxLength: 120 },
        ),
        async (limit, arrivals) => {
          let now = 0;
          const rate = new MemoryCallRate(() => now);
          const starts: number[] = [];
          let pending: Array<{ booking: Booking; at: number; cancelAt: number | null }> = [];
          // Bookings whose start has come are used; a caller that stops needing its call before
          // then gives the booking back.
          const settle = () => {
            pending = pending.filter((p) => {
              if (p.cancelAt !== null && p.cancelAt <= now && p.cancelAt < p.at) {
                rate.cancel('s', p.booking);
                return false;
              }
              if (p.at > now) return true;
              starts.push(p.at);
              return false;
            });
          };
          for (const a of arrivals) {
            now += a.gap;
            settle();
            const booking = await rate.book('s', limit);
            pending.push({ booking, at: now + booking.waitMs, cancelAt: a.cancelAfter === null ? null : now + a.cancelAfter });
          }
          now = Infinity;
          settle();
          expect(busiestWindow(starts)).toBeLessThanOrEqual(limit);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('serves a queue of callers in the order they booked, at the full rate', async () => {
    const now = 0;
    const rate = new MemoryCallRate(() => now);
    const waits: number[] = [];
    for (let i = 0; i < 20; i++) waits.push((await rate.book('s', 5)).waitMs);
    expect(waits).toEqual([...waits].sort((a, b) => a - b));
    // Twenty calls at five per second: the last starts three seconds (and guards) in, not later.
    expect(waits.at(-1)).toBe(3 * SPACING_MS);
    expect(busiestWindow(waits)).toBe(5);
  });
});

/** A limiter whose answers the test scripts, recording what it was asked. */
class ScriptedLimiter implements CallRateLimiter {
  readonly booked: string[] = [];
  readonly cancelled: string[] = [];
  waits: number[] = [];
  async book(): Promise<Booking> {
    const id = `b${this.booked.length}`;
    this.booked.push(id);
    return { id, waitMs: this.waits.shift() ?? 0 };
  }
  cancel(_key: string, booking: Booking): void {
    this.cancelled.push(booking.id);
  }
}

describe('CallTurn', () => {
  afterEach(() => vi.useRealTimers());

  it('waits for its booked start, and a call that starts on time keeps its booking', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const limiter = new ScriptedLimiter();
    limiter.waits = [300];
    let taken = false;
    const turn = CallTurn.take(limiter, 's', 1).then((t) => ((taken = true), t));
    await vi.advanceTimersByTimeAsync(299);
    expect(taken).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const t = await turn;
    expect(await t.claim(() => true)).toBe(true);
    t.release();
    expect(limiter.booked).toEqual(['b0']);
    expect(limiter.cancelled).toEqual([]);
  });

  it('books again when the queues held it past its start, and gives back what it did not use', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const limiter = new ScriptedLimiter();
    limiter.waits = [0, 200];
    const t = await CallTurn.take(limiter, 's', 1);
    await vi.advanceTimersByTimeAsync(LATE_MS + 1);
    let claimed: boolean | null = null;
    const claim = t.claim(() => true).then((c) => (claimed = c));
    await vi.advanceTimersByTimeAsync(199);
    expect(claimed).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    await claim;
    expect(claimed).toBe(true);
    expect(limiter.booked).toEqual(['b0', 'b1']);
    expect(limiter.cancelled).toEqual(['b0']);

    // Not needed after its wait: the booking goes back.
    const unused = await CallTurn.take(limiter, 's', 1);
    expect(await unused.claim(() => false)).toBe(false);
    unused.release();
    expect(limiter.cancelled).toEqual(['b0', 'b2']);
  });

  it('stops waiting when the caller aborts', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const limiter = new ScriptedLimiter();
    limiter.waits = [60_000];
    const controller = new AbortController();
    const turn = CallTurn.take(limiter, 's', 1, controller.signal);
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    const t = await turn;
    expect(await t.claim(() => !controller.signal.aborted)).toBe(false);
    t.release();
    expect(limiter.cancelled).toEqual(['b0']);
  });
});

describe('RedisCallRate with Redis unreachable', () => {
  it('falls back to this instance’s own log at once: calls are limited, never failed', async () => {
    const rate = new RedisCallRate(`redis://127.0.0.1:${await freePort()}`, { prefix: 'down:' });
    try {
      const waits: number[] = [];
      for (let i = 0; i < 4; i++) waits.push((await rate.book('s', 2)).waitMs);
      // Two at once, the next two a second after them (less the moments between the bookings).
      expect(waits.slice(0, 2)).toEqual([0, 0]);
      for (const w of waits.slice(2)) expect(w).toBeGreaterThan(900);
      rate.cancel('s', { id: 'm3', waitMs: 0 });
      // Pauses: none shared (each seller's gate here still keeps the ones it was asked for).
      rate.publish('s', 5_000);
      expect(await rate.remaining('s')).toBe(0);
      rate.clear('s');
    } finally {
      await rate.close();
    }
  });
});
