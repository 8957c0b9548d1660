import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from './rate-limit.js';

describe('MemoryRateLimiter', () => {
  it('allows a burst, then refuses with the time until enough tokens return', async () => {
    let now = 0;
    const rl = new MemoryRateLimiter(60, 3, () => now); // one token per second
    for (let i = 0; i < 3; i++) expect(await rl.take('u', 1)).toEqual({ ok: true });
    expect(await rl.take('u', 1)).toEqual({ ok: false, retryAfterMs: 1000 });
    now = 1000;
    expect(await rl.take('u', 1)).toEqual({ ok: true });
    expect(await rl.take('other', 1)).toEqual({ ok: true });
  });

  it('charges by cost and refuses a cost larger than the burst outright', async () => {
    let now = 0;
    const rl = new MemoryRateLimiter(60, 5, () => now);
    expect(await rl.take('u', 4)).toEqual({ ok: true });
    expect(await rl.take('u', 2)).toEqual({ ok: false, retryAfterMs: 1000 });
    expect((await rl.take('u', 6)).ok).toBe(false);
    now = 60_000;
    expect(await rl.take('u', 5)).toEqual({ ok: true });
  });
});
