import { describe, expect, it } from 'vitest';
import { sameRequestAgain } from './run.js';

describe('sameRequestAgain', () => {
  const input = { idempotencyKey: 'k-1', expiresAt: '2026-11-30T11:00:00.000Z' };

  it('pins the key and the exact deadline, so the broker sees the same input', () => {
    expect(sameRequestAgain(['--isbn', '9780141439518', '--max', '45.00', '--expires', '30m'], input)).toBe(
      'npm run buy -- --isbn 9780141439518 --max 45.00 --key k-1 --expires 2026-11-30T11:00:00.000Z',
    );
  });

  it('replaces a key and deadline that were given, in either spelling', () => {
    expect(sameRequestAgain(['--key=k-1', '--isbn', '1', '--expires=2h', '--max', '5'], input)).toBe(
      'npm run buy -- --isbn 1 --max 5 --key k-1 --expires 2026-11-30T11:00:00.000Z',
    );
  });

  it('quotes what a shell would split', () => {
    expect(sameRequestAgain(['--title', "Ender's Game", '--max', '5'], input)).toContain(`--title 'Ender'\\''s Game' --max 5`);
  });
});
