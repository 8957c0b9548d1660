import { type Clock, systemClock } from '../domain/clock.js';
import type { SharedPauses } from '../infra/call-rate.js';

/**
 * Everything that stands between the engine and one seller: a circuit breaker (closed → open
 * after consecutive failures → half-open: one probe call), an adaptive concurrency limit (AIMD:
 * grows by about one per round trip while calls succeed fast, halves when they fail, time out,
 * are rate limited or slow down), and a pause honouring the seller's Retry-After.
 */
export interface GateOptions {
  /** Ceiling from the seller's configuration. */
  maxConcurrency: number;
  /** Where the limit starts (and never falls below 1). */
  initialConcurrency: number;
  /** Consecutive failures that open the breaker. */
  breakerThreshold: number;
  /** Wait after the breaker opens (or a probe fails) before one probe call is let through. */
  breakerHalfOpenMs: number;
  /** The seller's call timeout: latency close to it counts as distress. */
  timeoutMs: number;
}

export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

export interface GateHealth {
  breaker: BreakerState;
  concurrencyLimit: number;
  inFlight: number;
  queued: number;
  /** Recent latencies (successful or failed calls; not neutral ones). */
  latencyMs: { p50: number | null; p90: number | null; p99: number | null };
  /** Share of recent calls that failed. */
  errorRate: number;
  recentCalls: number;
  pausedUntil: Date | null;
}

/**
 * What one finished call says about the seller. `failed` counts against it (breaker, error
 * rate, a smaller limit); `ok` for it; `neutral` not at all — an aborted call, one never sent, or a
 * query the seller cannot answer (400/422): nothing a user asks can take a seller out of service.
 */
export interface Observation {
  verdict: 'ok' | 'failed' | 'neutral';
  latencyMs: number;
  /** A 429 (or a 503 with Retry-After): calls pause for `retryAfterMs` (1 s without one). */
  rateLimited?: boolean;
  retryAfterMs?: number | null;
}

export class OpenCircuitError extends Error {
  override name = 'OpenCircuitError';
}

const WINDOW = 200;

export class SellerGate {
  private breaker: BreakerState = 'CLOSED';
  private consecutiveFailures = 0;
  /** When the breaker last opened: it stays shut to callers until breakerHalfOpenMs after. */
  private openedAt = 0;
  /** Half-open: the one probe call is under way. */
  private probing = false;
  private limit: number;
  private inFlight = 0;
  private readonly queue: Array<() => void> = [];
  private lastDecrease = -Infinity;
  private pausedUntil = 0;
  private readonly latencies: number[] = [];
  private readonly failures: boolean[] = [];
  private baselineMs: number | null = null;

  constructor(
    private options: GateOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.limit = Math.max(1, Math.min(options.initialConcurrency, options.maxConcurrency));
  }

  /** Follows a change of the seller's configuration without losing what was learned. */
  reconfigure(options: GateOptions): void {
    const o = this.options;
    if (
      options.maxConcurrency === o.maxConcurrency &&
      options.timeoutMs === o.timeoutMs &&
      options.breakerThreshold === o.breakerThreshold &&
      options.breakerHalfOpenMs === o.breakerHalfOpenMs
    ) {
      return;
    }
    this.options = options;
    this.limit = Math.max(1, Math.min(this.limit, options.maxConcurrency));
    this.drain();
  }

  /** False while the breaker refuses calls or the seller asked us to back off: skip it rather than queue. */
  available(now = this.now()): boolean {
    if (now < this.pausedUntil) return false;
    switch (this.breaker) {
      case 'CLOSED':
        return true;
      case 'OPEN':
        // The breaker moves to half-open lazily, on the first call after the wait: allow that call.
        return now >= this.openedAt + this.options.breakerHalfOpenMs;
      case 'HALF_OPEN':
        return !this.probing;
      default: {
        const never: never = this.breaker;
        throw new Error(`unknown breaker state ${String(never)}`);
      }
    }
  }

  /** Honours a pause the seller asked of another instance (its Retry-After, shared fleet-wide). */
  pauseFor(ms: number, now = this.now()): void {
    this.pausedUntil = Math.max(this.pausedUntil, now + ms);
  }

  /** The breaker's state, without the cost of `health()`. */
  breakerState(): BreakerState {
    return this.breaker;
  }

  /** How long the breaker still refuses calls, when it is open; 0 otherwise. */
  openFor(now = this.now()): number {
    return this.breaker === 'OPEN' ? Math.max(0, this.openedAt + this.options.breakerHalfOpenMs - now) : 0;
  }

  /**
   * Another instance's breaker for this seller opened: this one refuses calls too, for `ms`, then
   * probes as its own would. Its own count of failures stands; a probe under way here is left be.
   */
  heldOpenFor(ms: number, now = this.now()): void {
    if (ms <= 0 || (this.breaker === 'HALF_OPEN' && this.probing)) return;
    const openedAt = now + ms - this.options.breakerHalfOpenMs;
    if (this.breaker === 'OPEN' && this.openedAt >= openedAt) return;
    this.breaker = 'OPEN';
    this.probing = false;
    this.openedAt = openedAt;
  }

  /** How long the seller asked us to wait still (Retry-After); 0 when it did not. */
  pausedFor(now = this.now()): number {
    return Math.max(0, this.pausedUntil - now);
  }

  /**
   * Runs one call under the concurrency limit and the breaker; `observe` tells what the outcome
   * says about the seller. Throws OpenCircuitError, without calling, when the breaker refuses.
   */
  async run<T>(call: () => Promise<T>, observe: (outcome: T) => Observation): Promise<T> {
    await this.acquire();
    try {
      const probe = this.admit(this.now());
      // A call that throws tells nothing readable about the seller: it stays neutral.
      let seen: Observation = { verdict: 'neutral', latencyMs: 0 };
      try {
        const outcome = await call();
        seen = observe(outcome);
        return outcome;
      } finally {
        this.settle(seen, probe);
      }
    } finally {
      this.release();
    }
  }

  /** An operator's hand reset: breaker closed, pause lifted, limit back to its start. */
  reset(): void {
    this.breaker = 'CLOSED';
    this.consecutiveFailures = 0;
    this.probing = false;
    this.pausedUntil = 0;
    this.limit = Math.max(1, Math.min(this.options.initialConcurrency, this.options.maxConcurrency));
    this.drain();
  }

  health(now = this.now()): GateHealth {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : null);
    const failed = this.failures.filter(Boolean).length;
    return {
      breaker: this.breaker,
      concurrencyLimit: Math.floor(this.limit),
      inFlight: this.inFlight,
      queued: this.queue.length,
      latencyMs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99) },
      errorRate: this.failures.length ? failed / this.failures.length : 0,
      recentCalls: this.failures.length,
      pausedUntil: this.pausedUntil > now ? new Date(this.pausedUntil) : null,
    };
  }

  /** Lets a call through the breaker, or throws. True when the call is the half-open probe. */
  private admit(now: number): boolean {
    switch (this.breaker) {
      case 'CLOSED':
        return false;
      case 'OPEN':
        if (now < this.openedAt + this.options.breakerHalfOpenMs) throw new OpenCircuitError('circuit open');
        this.breaker = 'HALF_OPEN';
        this.probing = true;
        return true;
      case 'HALF_OPEN':
        if (this.probing) throw new OpenCircuitError('circuit half-open: a probe is under way');
        this.probing = true;
        return true;
      default: {
        const never: never = this.breaker;
        throw new Error(`unknown breaker state ${String(never)}`);
      }
    }
  }

  /** Feeds one finished call to the breaker and to the adaptive limit. */
  private settle(seen: Observation, probe: boolean): void {
    const now = this.now();
    if (seen.verdict === 'neutral') {
      // The probe proved nothing either way: the next call probes again.
      if (probe) this.probing = false;
      return;
    }
    if (seen.verdict === 'ok') {
      // A call admitted before the breaker opened proves nothing about the seller now; the probe does.
      if (probe || this.breaker === 'CLOSED') {
        this.breaker = 'CLOSED';
        this.probing = false;
        this.consecutiveFailures = 0;
      }
    } else if (probe) {
      this.open(now);
    } else if (this.breaker === 'CLOSED') {
      this.consecutiveFailures += 1;
      if (this.consecutiveFailures >= this.options.breakerThreshold) this.open(now);
    }
    this.adapt(seen, now);
  }

  private open(now: number): void {
    this.breaker = 'OPEN';
    this.probing = false;
    this.openedAt = now;
  }

  private adapt(c: Observation, now: number): void {
    push(this.latencies, c.latencyMs);
    push(this.failures, c.verdict === 'failed');
    if (c.rateLimited) this.pausedUntil = Math.max(this.pausedUntil, now + (c.retryAfterMs ?? 1000));
    const slow = this.baselineMs !== null && c.latencyMs > Math.max(3 * this.baselineMs, 50) && c.latencyMs > 0.5 * this.options.timeoutMs;
    if (c.verdict === 'failed' || slow) {
      // Multiplicative decrease, at most once per baseline round trip so one burst halves once.
      if (now - this.lastDecrease >= Math.max(50, this.baselineMs ?? 50)) {
        this.limit = Math.max(1, this.limit / 2);
        this.lastDecrease = now;
      }
      return;
    }
    this.baselineMs = this.baselineMs === null ? c.latencyMs : this.baselineMs + 0.05 * (c.latencyMs - this.baselineMs);
    // Additive increase: about one more slot per limit's worth of successes.
    this.limit = Math.min(this.options.maxConcurrency, this.limit + 1 / this.limit);
    this.drain();
  }

  private acquire(): Promise<void> {
    if (this.inFlight < Math.floor(this.limit)) {
      this.inFlight += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.queue.push(() => {
        this.inFlight += 1;
        resolve();
      }),
    );
  }

  private release(): void {
    this.inFlight -= 1;
    this.drain();
  }

  private drain(): void {
    while (this.queue.length > 0 && this.inFlight < Math.floor(this.limit)) this.queue.shift()!();
  }
}

function push<T>(ring: T[], v: T): void {
  ring.push(v);
  if (ring.length > WINDOW) ring.shift();
}

export interface GateDefaults {
  initialConcurrency: number;
  breakerThreshold: number;
  breakerHalfOpenMs: number;
}

/** One gate per seller, created on first use and kept in step with the seller's configuration. */
export class SellerGates {
  private readonly gates = new Map<string, SellerGate>();
  private readonly now: () => number;

  constructor(
    private readonly defaults: GateDefaults,
    clock: Clock = systemClock,
    /** Where a pause one instance was asked for, or a breaker it opened, is shared with the others. */
    private readonly pauses?: SharedPauses,
  ) {
    this.now = () => clock.now().getTime();
  }

  get(seller: { id: string; maxConcurrency: number; timeoutMs: number }): SellerGate {
    const options: GateOptions = { ...this.defaults, maxConcurrency: seller.maxConcurrency, timeoutMs: seller.timeoutMs };
    let gate = this.gates.get(seller.id);
    if (!gate) {
      gate = new SellerGate(options, this.now);
      this.gates.set(seller.id, gate);
    } else {
      gate.reconfigure(options);
    }
    return gate;
  }

  /** An operator's hand reset of the seller's gate; a shared pause and breaker are lifted too, not read back. */
  reset(seller: { id: string; maxConcurrency: number; timeoutMs: number }): SellerGate {
    const gate = this.get(seller);
    gate.reset();
    this.pauses?.clear(seller.id);
    this.pauses?.clear(breakerKey(seller.id));
    return gate;
  }

  /**
   * The seller's gate with what the fleet knows applied: a Retry-After pause or an open breaker
   * of another instance holds here too (read from a short-lived cache, not per call).
   */
  async synced(seller: { id: string; maxConcurrency: number; timeoutMs: number }): Promise<SellerGate> {
    const gate = this.get(seller);
    if (!this.pauses) return gate;
    const [paused, open] = await Promise.all([this.pauses.remaining(seller.id), this.pauses.remaining(breakerKey(seller.id))]);
    if (paused) gate.pauseFor(paused);
    if (open) gate.heldOpenFor(open);
    return gate;
  }

  /** This instance's breaker for the seller opened: every instance holds it open as long. */
  opened(sellerId: string, gate: SellerGate): void {
    this.pauses?.publish(breakerKey(sellerId), gate.openFor());
  }

  /** This instance's probe closed its breaker: the shared one is lifted. */
  closed(sellerId: string): void {
    this.pauses?.clear(breakerKey(sellerId));
  }

  /**
   * The seller's health with the fleet's breaker and pause on top of what this instance saw, for
   * operators; read afresh, and without changing this instance's gate.
   */
  async fleetHealth(seller: { id: string; maxConcurrency: number; timeoutMs: number }): Promise<GateHealth> {
    const health = this.get(seller).health();
    if (!this.pauses) return health;
    const read = (key: string) => (this.pauses!.current ? this.pauses!.current(key) : this.pauses!.remaining(key));
    const [paused, open] = await Promise.all([read(seller.id), read(breakerKey(seller.id))]);
    const now = this.now();
    const pausedUntil = paused > 0 ? new Date(Math.max(health.pausedUntil?.getTime() ?? 0, now + paused)) : health.pausedUntil;
    return { ...health, breaker: open > 0 && health.breaker === 'CLOSED' ? 'OPEN' : health.breaker, pausedUntil };
  }

  /** The gate if the seller has been called on this instance. */
  peek(sellerId: string): SellerGate | undefined {
    return this.gates.get(sellerId);
  }
}

/** Where a seller's open breaker is shared (beside its Retry-After pause, under its own key). */
const breakerKey = (sellerId: string) => `breaker:${sellerId}`;
