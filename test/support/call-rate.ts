import { WINDOW_MS } from '../../src/infra/call-rate.js';

/**
 * The most starts that fall in any one window `[t, t + windowMs)` of a start log — the check
 * every call-rate limiter's tests apply to what it let through (sorting a copy of the log).
 */
export function busiestWindow(starts: readonly number[], windowMs = WINDOW_MS): number {
  const sorted = [...starts].sort((a, b) => a - b);
  let most = 0;
  let from = 0;
  for (let to = 0; to < sorted.length; to++) {
    while (sorted[to]! - sorted[from]! >= windowMs) from++;
    most = Math.max(most, to - from + 1);
  }
  return most;
}
