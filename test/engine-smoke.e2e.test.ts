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
