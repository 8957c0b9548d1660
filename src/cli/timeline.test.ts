import { describe, expect, it } from 'vitest';
import type { TrackedEvent, TrackedRequest } from './operations.js';
import { offset, Timeline, until } from './timeline.js';

const T0 = '2026-11-30T10:00:00.000Z';
const at = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();
const ev = (revision: number, status: TrackedEvent['status'], type = status as string): TrackedEvent => ({
  id: String(revision),
  at: at(revision * 10),
  type,
  status,
  message: `${type} message`,
  revision,
});
const offerBy = (seller: string, cents: number) => ({ condition: 'NEW' as const, total: { cents, currency: 'USD' }, seller: { id: seller, name: seller } });

function state(revision: number, events: TrackedEvent[], bestOffer: TrackedRequest['bestOffer'] = null): TrackedRequest {
  return {
    id: 'r1',
    status: events.at(-1)!.status,
    revision,
    createdAt: T0,
    updatedAt: at(revision * 10),
    expiresAt: at(3_600_000),
    failureReason: null,
    book: { isbn: '9780141439518', title: null, author: null },
    maxTotalPrice: { cents: 4500, currency: 'USD' },
    bestOffer,
    order: null,
    events,
  };
}

describe('Timeline', () => {
  const e1 = ev(1, 'PENDING', 'CREATED');
  const e2 = ev(2, 'SEARCHING', 'SEARCH_STARTED');
  const e3 = ev(3, 'QUOTED');
  const e4 = ev(4, 'SEARCHING', 'SEARCH_STARTED');
  const e5 = ev(5, 'QUOTED', 'BEST_OFFER_CHANGED');

  it('shows each event once, even when states are coalesced', () => {
    const t = new Timeline();
    expect(t.apply(state(1, [e1]))).toMatchObject({ previousStatus: null, events: [e1] });
    // Revision 2 never arrived on its own: revision 3 carries both events.
    expect(t.apply(state(3, [e1, e2, e3]))).toMatchObject({ previousStatus: 'PENDING', events: [e2, e3] });
    expect(t.current?.revision).toBe(3);
  });

  it('holds back events newer than the state they came with, until that state arrives', () => {
    const t = new Timeline();
    // The SEARCHING state (revision 2), read as the QUOTED event (revision 3) was being written.
    expect(t.apply({ ...state(2, [e1, e2]), events: [e1, e2, e3] })).toMatchObject({ request: { status: 'SEARCHING' }, events: [e1, e2] });
    expect(t.apply(state(3, [e1, e2, e3], offerBy('a', 5200)))).toMatchObject({ request: { status: 'QUOTED' }, events: [e3], bestOffer: offerBy('a', 5200) });
  });

  it('drops a state no newer than the last one (a replay after a reconnect)', () => {
    const t = new Timeline();
    t.apply(state(3, [e1, e2, e3]));
    expect(t.apply(state(3, [e1, e2, e3]))).toBeNull();
    expect(t.apply(state(2, [e1, e2]))).toBeNull();
    expect(t.apply(state(4, [e1, e2, e3, e4]))?.events).toEqual([e4]);
  });

  it('reports the best offer when it first appears and each time it changes, not when it stays', () => {
    const t = new Timeline();
    expect(t.apply(state(3, [e1, e2, e3], offerBy('a', 5200)))?.bestOffer).toEqual(offerBy('a', 5200));
    expect(t.apply(state(4, [e1, e2, e3, e4], offerBy('a', 5200)))?.bestOffer).toBeNull();
    expect(t.apply(state(5, [e1, e2, e3, e4, e5], offerBy('b', 4900)))?.bestOffer).toEqual(offerBy('b', 4900));
  });
});

describe('offset', () => {
  it.each([
    [0, '+0.00s'],
    [40, '+0.04s'],
    [12_345, '+12.3s'],
    [125_000, '+2m05s'],
    [3_720_000, '+1h02m'],
    [-5, '+0.00s'],
  ])('%i ms → %s', (ms, text) => {
    expect(offset(T0, at(ms))).toBe(text);
  });
});

describe('until', () => {
  it.each([
    [30_000, 'in 30s'],
    [3_599_000, 'in 1h00m'],
    [45 * 60_000, 'in 45m'],
    [125 * 60_000, 'in 2h05m'],
    [3 * 86_400_000, 'in 3d'],
    [-1000, 'in 0s'],
  ])('%i ms ahead → %s', (ms, text) => {
    expect(until(new Date(T0), at(ms))).toBe(text);
  });
});
