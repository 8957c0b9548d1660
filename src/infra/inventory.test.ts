import { describe, expect, it } from 'vitest';
import { MemoryInventoryGuard } from './inventory.js';

describe('MemoryInventoryGuard', () => {
  it('never hands out more units than the seller said it has', async () => {
    const g = new MemoryInventoryGuard();
    const got = await Promise.all([...Array(5)].map(() => g.reserve('k', 2, 100)));
    expect(got.filter(Boolean)).toHaveLength(2);
  });

  it('returns a released unit, keeps an ordered one', async () => {
    let now = 1000;
    const g = new MemoryInventoryGuard(100, () => now);
    expect(await g.reserve('k', 1, 100)).toBe(true);
    await g.release('k', false);
    expect(await g.reserve('k', 1, 100)).toBe(true);
    await g.release('k', true);
    now = 2000;
    expect(await g.reserve('k', 1, 100)).toBe(false);
  });

  it('trusts a quote asked for after an order completed, but not one asked for before it', async () => {
    let now = 1000;
    const g = new MemoryInventoryGuard(100, () => now);
    expect(await g.reserve('k', 1, 500)).toBe(true);
    await g.release('k', true); // the last copy sold at t=1000
    // A quote asked at t=900 (before the sale) still says 1: it does not know about the sale.
    expect(await g.reserve('k', 1, 900)).toBe(false);
    // A quote asked at t=1500 that says 1 has seen the sale: the seller restocked.
    now = 1600;
    expect(await g.reserve('k', 1, 1500)).toBe(true);
  });

  it('does not limit offers whose inventory is unknown', async () => {
    const g = new MemoryInventoryGuard();
    for (let i = 0; i < 10; i++) expect(await g.reserve('k', null, 1)).toBe(true);
  });
});
