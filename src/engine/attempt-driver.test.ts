import { describe, expect, it } from 'vitest';
import type { Executor } from '../db/client.js';
import { canMoveAttempt } from '../domain/lifecycle.js';
import { ATTEMPT_STATES } from '../domain/types.js';
import { IllegalAttemptMoveError, advance } from './attempt-driver.js';

/** An executor that records the guarded UPDATE it is sent and answers with the written row. */
function fakeDb() {
  const writes: Record<string, unknown>[] = [];
  const ex = {
    update: () => ({
      set: (changes: Record<string, unknown>) => ({
        where: () => ({
          returning: async () => {
            writes.push(changes);
            return [{ id: 'a1', ...changes }];
          },
        }),
      }),
    }),
  } as unknown as Executor;
  return { ex, writes };
}

const updatedAt = new Date('2026-01-01T00:00:00Z');

describe('advance: the attempt driver’s one write', () => {
  it('refuses a move the table forbids, before writing anything', async () => {
    const { ex, writes } = fakeDb();
    const moving = advance(ex, { id: 'a1', state: 'capturing' }, 'ordering', { updatedAt });
    await expect(moving).rejects.toBeInstanceOf(IllegalAttemptMoveError);
    await expect(moving).rejects.toThrow('illegal order attempt move capturing → ordering (attempt a1)');
    expect(writes).toEqual([]);
  });

  it('writes exactly the moves ATTEMPT_TRANSITIONS allows', async () => {
    for (const from of ATTEMPT_STATES) {
      for (const to of ATTEMPT_STATES) {
        if (to === from) continue;
        const { ex, writes } = fakeDb();
        const moving = advance(ex, { id: 'a1', state: from }, to, { lastError: 'x', updatedAt });
        if (canMoveAttempt(from, to)) {
          await expect(moving).resolves.toMatchObject({ state: to });
          expect(writes).toEqual([{ lastError: 'x', state: to, updatedAt }]);
        } else {
          await expect(moving, `${from} → ${to}`).rejects.toBeInstanceOf(IllegalAttemptMoveError);
          expect(writes).toEqual([]);
        }
      }
    }
  });

  it('keeps a live attempt where it is, but never writes a finished one again', async () => {
    const live = fakeDb();
    await advance(live.ex, { id: 'a1', state: 'unknown' }, 'unknown', { tries: 3, updatedAt });
    expect(live.writes).toEqual([{ tries: 3, updatedAt }]);

    for (const state of ['succeeded', 'failed'] as const) {
      const { ex, writes } = fakeDb();
      await expect(advance(ex, { id: 'a1', state }, state, { tries: 0, updatedAt })).rejects.toThrow(`order attempt a1 is ${state}`);
      expect(writes).toEqual([]);
    }
  });
});
