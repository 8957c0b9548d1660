import type { Db } from '../db/client.js';
import { countPending } from '../db/queries/work.js';
import { type Clock, systemClock } from '../domain/clock.js';
import { AppError } from '../domain/errors.js';

/**
 * Admission control for new requests (SPEC §6). The engine already bounds the rounds it runs at
 * once; beyond that requests wait PENDING in the database. This refuses new ones only when that
 * backlog itself is full — a clear OVERLOADED with a retry hint, never a crash or a lost request.
 */
export class Admission {
  private cached: { count: number; at: number } | null = null;

  constructor(
    private readonly db: Db,
    private readonly maxBacklog: number,
    private readonly retryAfterMs: number,
    private readonly clock: Clock = systemClock,
    /** How long a backlog count is reused: a burst of creates must not each count the table. */
    private readonly cacheMs = 250,
  ) {}

  async check(): Promise<void> {
    const now = this.clock.now().getTime();
    if (!this.cached || now - this.cached.at > this.cacheMs) this.cached = { count: await countPending(this.db), at: now };
    if (this.cached.count >= this.maxBacklog) {
      throw new AppError('OVERLOADED', `the backlog is full (${this.cached.count} requests waiting); retry later`, {
        retryAfterMs: this.retryAfterMs,
      });
    }
    // Count this admission so a burst inside one cache window cannot overshoot by much.
    this.cached.count += 1;
  }
}
