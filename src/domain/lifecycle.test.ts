import { describe, expect, it } from 'vitest';
import {
  TRANSITIONS,
  assertLifecycleValid,
  canTransition,
  isCancelable,
  isTerminal,
  isUpdatable,
  validateTransitions,
} from './lifecycle.js';
import { REQUEST_STATUSES } from './types.js';

describe('request lifecycle', () => {
  it('is a valid table covering every status', () => {
    expect(() => assertLifecycleValid()).not.toThrow();
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...REQUEST_STATUSES].sort());
  });

  it('has exactly the terminal statuses of the spec', () => {
    expect(REQUEST_STATUSES.filter(isTerminal).sort()).toEqual(['CANCELED', 'EXPIRED', 'FAILED', 'ORDERED']);
  });

  it('allows cancel and update only before an attempt starts', () => {
    expect(REQUEST_STATUSES.filter(isCancelable).sort()).toEqual(['OUT_OF_STOCK', 'PENDING', 'QUOTED', 'SEARCHING']);
    expect(REQUEST_STATUSES.filter(isUpdatable)).toEqual(REQUEST_STATUSES.filter(isCancelable));
  });

  it('never lets an attempt in flight expire or be canceled', () => {
    expect(canTransition('ORDERING', 'EXPIRED')).toBe(false);
    expect(canTransition('ORDERING', 'CANCELED')).toBe(false);
    expect(canTransition('ORDERING', 'ORDERED')).toBe(true);
  });

  it('refuses to leave a terminal status', () => {
    for (const from of ['ORDERED', 'EXPIRED', 'FAILED', 'CANCELED'] as const) {
      for (const to of REQUEST_STATUSES) expect(canTransition(from, to)).toBe(false);
    }
  });

  it('reports unknown targets, unreachable states and dead ends', () => {
    const problems = validateTransitions(
      { A: ['B', 'Z'], B: ['B'], C: ['END'], END: [], LOOP: ['LOOP2'], LOOP2: ['LOOP'] },
      'A',
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'A → Z: unknown target status',
        'B → B: a status cannot transition to itself',
        'C is unreachable from A',
        'LOOP is unreachable from A',
        'B can never reach a terminal status',
        'LOOP can never reach a terminal status',
      ]),
    );
    expect(validateTransitions({ A: ['END'], END: [] }, 'A')).toEqual([]);
    expect(validateTransitions({ A: [] }, 'X')).toContain('initial status X is not in the table');
  });
});
