import { REQUEST_STATUSES, type RequestStatus } from './types.js';

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

/** Boot-time check of the real table, including that it covers every declared status. */
export function assertLifecycleValid(): void {
  const problems = validateTransitions(TRANSITIONS, INITIAL_STATUS);
  for (const s of REQUEST_STATUSES) if (!(s in TRANSITIONS)) problems.push(`${s} has no entry`);
  if (problems.length > 0) throw new Error(`invalid request lifecycle:\n${problems.join('\n')}`);
}
