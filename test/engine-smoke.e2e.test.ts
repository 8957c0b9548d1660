import { afterAll, beforeAll, expect, it } from 'vitest';
import { type World, startWorld } from './support/world.js';

let w: World;
beforeAll(async () => {
  w = await startWorld({ sellers: [{ key: 'pageturner' }, { key: 'novella' }] });
});
afterAll(async () => {
  await w?.close();
});

it('orders an affordable sandbox book once, through the generic connector', async () => {
  const id = await w.create({ book: { isbn: '9780141439518' }, maxTotalPrice: { cents: 5000, currency: 'USD' } });
  const r = await w.until(id, (x) => x.status === 'ORDERED');
  expect(r.order.sellerOrderId).toMatch(/^[A-Z]+-/);
  const ledger = await w.sandbox.ledger();
  expect(ledger.filter((e) => e.requestId === id)).toHaveLength(1);
});

it('exposes what it did as Prometheus metrics', async () => {
  const id = await w.create({ book: { isbn: '9780451524935' }, maxTotalPrice: { cents: 5000, currency: 'USD' } });
  await w.until(id, (x) => x.status === 'ORDERED');
  const res = await fetch(`${w.server.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  const text = await res.text();
  const value = (line: RegExp) => Number(text.split('\n').find((l) => line.test(l))?.split(' ').pop());
  expect(value(/^broker_request_outcomes_total\{status="ORDERED"\}/)).toBeGreaterThanOrEqual(1);
  expect(value(/^broker_requests_created_total /)).toBeGreaterThanOrEqual(2);
  expect(value(/^broker_seller_calls_total\{seller="PageTurner Books",endpoint="order",outcome="confirmed"\}/)).toBeGreaterThanOrEqual(1);
  expect(text).toMatch(/^broker_queue_lag_seconds \d/m);
  expect(text).toMatch(/^broker_rounds_in_flight \d/m);
  expect(text).toMatch(/^broker_seller_call_duration_seconds_bucket\{/m);
});
