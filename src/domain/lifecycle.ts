import { ATTEMPT_STATES, type AttemptState, REQUEST_STATUSES, type RequestStatus } from './types.js';

/**
 * The request lifecycle (SPEC §2) as data: every status and the statuses it may move to.
 * Every status write in the codebase checks this table; nothing else encodes transitions.
 */
export const TRANSITIONS: Readonly<Record<RequestStatus, readonly RequestStatus[]>> = {
  PENDING: ['SEARCHING', 'CANCELED', 'EXPIRED'],
  SEARCHING: ['ORDERING', 'QUOTED', 'OUT_OF_STOCK', 'CANCELED', 'EXPIRED'],
  QUOTED: ['SEARCHING', 'ORDERING', 'CANCELED', 'EXPIRED'],
  OUT_OF_STOCK: ['SEARCHING', 'CANCELED', 'EXPIRED'],
  // An attempt started before the deadline may finish after it, so ORDERING never expires:
  // it ends ORDERED or FAILED, or goes back to searching/watching while time is left.
  ORDERING: ['ORDERED', 'FAILED', 'SEARCHING', 'QUOTED', 'OUT_OF_STOCK'],
  ORDERED: [],
  EXPIRED: [],
  FAILED: [],
  CANCELED: [],
};

export const INITIAL_STATUS: RequestStatus = 'PENDING';

export function canTransition(from: RequestStatus, to: RequestStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isTerminal(status: RequestStatus): boolean {
  return TRANSITIONS[status].length === 0;
}

/** The user may cancel exactly where the table allows CANCELED: before any attempt started. */
export function isCancelable(status: RequestStatus): boolean {
  return canTransition(status, 'CANCELED');
}

/** Budget and deadline may change in the same statuses as cancel (SPEC §2). */
export function isUpdatable(status: RequestStatus): boolean {
  return isCancelable(status);
}

/**
 * The order attempt's lifecycle (SPEC §4) as data. The driver runs one step per live state and
 * checks every move it writes against this table.
 */
export const ATTEMPT_TRANSITIONS: Readonly<Record<AttemptState, readonly AttemptState[]>> = {
  // Payment authorised → the order is placed; declined → finished, nothing ordered.
  authorizing: ['ordering', 'failed'],
  // The seller confirmed, refused (the authorisation is voided), or left us not knowing.
  ordering: ['capturing', 'voiding', 'unknown'],
  // Resolved by a status check, a retry with the same key (back to ordering), or a callback.
  unknown: ['ordering', 'capturing', 'voiding'],
  capturing: ['succeeded'],
  voiding: ['failed'],
  succeeded: [],
  failed: [],
};

export const INITIAL_ATTEMPT_STATE: AttemptState = 'authorizing';

/** An attempt state the driver still has work for. */
export type LiveAttemptState = Exclude<AttemptState, 'succeeded' | 'failed'>;

export function canMoveAttempt(from: AttemptState, to: AttemptState): boolean {
  return ATTEMPT_TRANSITIONS[from].includes(to);
}

export function isAttemptLive(state: AttemptState): state is LiveAttemptState {
  return ATTEMPT_TRANSITIONS[state].length > 0;
}

/**
 * Checks a transition table's shape: every target is a known status, every status is reachable
 * from the initial one, and every non-terminal status can still reach a terminal one.
 * Returns the problems found; the server refuses to boot on any.
 */
export function validateTransitions(
  table: Readonly<Record<string, readonly string[]>>,
  initial: string,
): string[] {
  const problems: string[] = [];
  const states = Object.keys(table);
  const known = new Set(states);
  if (!known.has(initial)) problems.push(`initial status ${initial} is not in the table`);
  for (const [from, targets] of Object.entries(table)) {
    for (const to of targets) {
      if (!known.has(to)) problems.push(`${from} → ${to}: unknown target status`);
      if (to === from) problems.push(`${from} → ${to}: a status cannot transition to itself`);
    }
  }
  const reachable = walk(initial, (s) => table[s] ?? []);
  for (const s of states) if (!reachable.has(s)) problems.push(`${s} is unreachable from ${initial}`);
  const terminals = states.filter((s) => (table[s] ?? []).length === 0);
  for (const s of states) {
    const ends = walk(s, (x) => table[x] ?? []);
    if (!terminals.some((t) => ends.has(t))) problems.push(`${s} can never reach a terminal status`);
  }
  return problems;
}

function walk(start: string, next: (s: string) => readonly string[]): Set<string> {
  const seen = new Set<string>([start]);
  const queue = [start];
  while (queue.length > 0) {
    const s = queue.shift()!;
    for (const n of next(s)) {
      if (!seen.has(n)) {
        seen.add(n);
        queue.push(n);
      }
    }
  }
  return seen;
}

/** A request table's problems, including any declared status it has no entry for. */
export function requestLifecycleProblems(table: Readonly<Record<string, readonly string[]>> = TRANSITIONS): string[] {
  return coverage(validateTransitions(table, INITIAL_STATUS), table, REQUEST_STATUSES);
}

/** An attempt table's problems, including any declared state it has no entry for. */
export function attemptLifecycleProblems(table: Readonly<Record<string, readonly string[]>> = ATTEMPT_TRANSITIONS): string[] {
  return coverage(validateTransitions(table, INITIAL_ATTEMPT_STATE), table, ATTEMPT_STATES);
}

function coverage(problems: string[], table: Readonly<Record<string, readonly string[]>>, declared: readonly string[]): string[] {
  for (const s of declared) if (!(s in table)) problems.push(`${s} has no entry`);
  return problems;
}

/** Boot-time check of the real tables, the request's and the order attempt's. */
export function assertLifecycleValid(): void {
  const request = requestLifecycleProblems();
  if (request.length > 0) throw new Error(`invalid request lifecycle:\n${request.join('\n')}`);
  const attempt = attemptLifecycleProblems();
  if (attempt.length > 0) throw new Error(`invalid order attempt lifecycle:\n${attempt.join('\n')}`);
}
