import type { Db } from '../db/client.js';
import { countPending, pendingSpan } from '../db/queries/work.js';
import { type Clock, systemClock } from '../domain/clock.js';
import { AppError } from '../domain/errors.js';

/** The backlog as last read, plus the requests admitted since; `exact` false when it is only a bound. */
interface Backlog {
  count: number;
  exact: boolean;
  at: number;
}

/**
 * Admission control for new requests (SPEC §6). The engine already bounds the rounds it runs at
 * once; beyond that requests wait PENDING in the database. This refuses new ones only when that
 * backlog itself is full — a clear OVERLOADED with a retry hint, never a crash or a lost request.
 *
 * Creates must not each count the backlog: a read is reused for `cacheMs` and shared by every
 * create that waits for it, and it is an upper bound from two index look-ups (the span of the
 * waiting requests' seq). Only a bound at the limit is checked by counting, up to the limit.
 */
export class Admission {
  private backlog: Backlog | null = null;
  private readonly reading: { bound: Promise<Backlog> | null; exact: Promise<Backlog> | null } = { bound: null, exact: null };

  constructor(
    private readonly db: Db,
    private readonly maxBacklog: number,
    private readonly retryAfterMs: number,
    private readonly clock: Clock = systemClock,
    /** How long a backlog read is reused: a burst of creates must not each count the table. */
    private readonly cacheMs = 250,
  ) {}

  async check(): Promise<void> {
    let backlog = await this.current('bound');
    // A bound at the limit says nothing yet: count (at most up to the limit) before refusing.
    if (backlog.count >= this.maxBacklog && !backlog.exact) backlog = await this.current('exact');
    if (backlog.count >= this.maxBacklog) {
      throw new AppError('OVERLOADED', `the backlog is full (at least ${this.maxBacklog} requests waiting); retry later`, {
        retryAfterMs: this.retryAfterMs,
      });
    }
    // Count this admission so a burst inside one cache window cannot overshoot by much.
    backlog.count += 1;
  }

  /** The last read if fresh enough (and exact, when asked), else the read in flight of that kind, or a new one. */
  private async current(kind: 'bound' | 'exact'): Promise<Backlog> {
    const now = this.clock.now().getTime();
    const last = this.backlog;
    if (last && now - last.at <= this.cacheMs && (last.exact || kind === 'bound')) return last;
    const reading = (this.reading[kind] ??= this.read(kind, now).finally(() => {
      this.reading[kind] = null;
    }));
    return reading;
  }

  private async read(kind: 'bound' | 'exact', at: number): Promise<Backlog> {
    const span = kind === 'bound' ? await pendingSpan(this.db) : this.maxBacklog;
    const backlog = span < this.maxBacklog ? { count: span, exact: false, at } : { count: await countPending(this.db, this.maxBacklog), exact: true, at };
    this.backlog = backlog;
    return backlog;
  }
}
