import { setMaxListeners } from 'node:events';

/** Time source, injectable so tests and the engine agree on "now". */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** Waits `ms`, or stops waiting as soon as `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    if (signal) {
      // One signal may be shared by many waits (a round's, by every call of the round).
      setMaxListeners(0, signal);
      signal.addEventListener('abort', done, { once: true });
    }
  });
}
