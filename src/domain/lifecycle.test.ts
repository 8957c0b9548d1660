import { describe, expect, it } from 'vitest';
import {
  ATTEMPT_TRANSITIONS,
  TRANSITIONS,
  assertLifecycleValid,
  attemptLifecycleProblems,
  canMoveAttempt,
  canTransition,
  isAttemptLive,
  isCancelable,
  isTerminal,
  isUpdatable,
  requestLifecycleProblems,
  validateTransitions,
} from './lifecycle.js';
import { ATTEMPT_STATES, REQUEST_STATUSES } from './types.js';

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

describe('order attempt lifecycle', () => {
  it('is a valid table covering every state', () => {
    expect(attemptLifecycleProblems()).toEqual([]);
    expect(Object.keys(ATTEMPT_TRANSITIONS).sort()).toEqual([...ATTEMPT_STATES].sort());
  });

  it('ends only in succeeded or failed', () => {
    expect(ATTEMPT_STATES.filter((s) => !isAttemptLive(s)).sort()).toEqual(['failed', 'succeeded']);
  });

  it('captures only after the seller confirmed, and fails only after voiding or a decline', () => {
    const into = (to: string) => ATTEMPT_STATES.filter((from) => ATTEMPT_TRANSITIONS[from].some((t) => t === to)).sort();
    expect(into('capturing')).toEqual(['ordering', 'unknown']);
    expect(into('succeeded')).toEqual(['capturing']);
    expect(into('failed')).toEqual(['authorizing', 'voiding']);
    // Once captured or voided there is no way back to ordering: never a second order or charge.
    expect(canMoveAttempt('capturing', 'ordering')).toBe(false);
    expect(canMoveAttempt('voiding', 'ordering')).toBe(false);
    expect(canMoveAttempt('failed', 'ordering')).toBe(false);
    expect(canMoveAttempt('authorizing', 'capturing')).toBe(false);
  });

  it('catches a broken table', () => {
    // A target that does not exist.
    expect(attemptLifecycleProblems({ ...ATTEMPT_TRANSITIONS, capturing: ['succeeded', 'settled'] })).toContain(
      'capturing → settled: unknown target status',
    );
    // Nothing leads to voiding any more.
    expect(
      attemptLifecycleProblems({ ...ATTEMPT_TRANSITIONS, ordering: ['capturing', 'unknown'], unknown: ['ordering', 'capturing'] }),
    ).toContain('voiding is unreachable from authorizing');
    // unknown can only go back to ordering, which can only come back: a loop with no way out.
    expect(attemptLifecycleProblems({ ...ATTEMPT_TRANSITIONS, ordering: ['unknown'], unknown: ['ordering'] })).toEqual(
      expect.arrayContaining(['ordering can never reach a terminal status', 'unknown can never reach a terminal status']),
    );
    // A declared state left out of the table.
    const { voiding: _, ...withoutVoiding } = ATTEMPT_TRANSITIONS;
    expect(attemptLifecycleProblems(withoutVoiding)).toEqual(expect.arrayContaining(['voiding has no entry']));
  });

  it('is checked at boot with the request table', () => {
    expect(requestLifecycleProblems()).toEqual([]);
    expect(() => assertLifecycleValid()).not.toThrow();
  });
});
