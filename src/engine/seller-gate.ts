import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel';

/**
 * Everything that stands between the engine and one seller: a circuit breaker (closed → open
 * after consecutive failures → half-open probes), an adaptive concurrency limit (AIMD: grows by
 * about one per round trip while calls succeed fast, halves when they fail, time out, are rate
 * limited or slow down), and a pause honouring the seller's Retry-After.
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
  /** Recent latencies (successful or failed calls, not aborted ones). */
  latencyMs: { p50: number | null; p90: number | null; p99: number | null };
  /** Share of recent calls that failed. */
  errorRate: number;
  recentCalls: number;
  pausedUntil: Date | null;
}

/** Thrown into the breaker for a failed call so it counts; unwrapped before anyone sees it. */
class CallFailed<T> extends Error {
  constructor(readonly outcome: T) {
    super('seller call failed');
  }
}

export class OpenCircuitError extends Error {
  override name = 'OpenCircuitError';
}

const WINDOW = 200;

export class SellerGate {
  private breaker: CircuitBreakerPolicy;
  /** When the breaker last opened: it stays shut to callers until breakerHalfOpenMs after. */
  private openedAt = 0;
  private limit: number;
  private inFlight = 0;
  private readonly queue: Array<() => void> = [];
  private lastDecrease = 0;
  private pausedUntil = 0;
  private readonly latencies: number[] = [];
  private readonly failures: boolean[] = [];
  private baselineMs: number | null = null;

  constructor(private options: GateOptions) {
    this.breaker = this.makeBreaker();
    this.limit = Math.max(1, Math.min(options.initialConcurrency, options.maxConcurrency));
  }

  /** Follows a change of the seller's configuration without losing what was learned. */
  reconfigure(options: GateOptions): void {
    if (options.maxConcurrency === this.options.maxConcurrency && options.timeoutMs === this.options.timeoutMs) return;
    this.options = options;
    this.limit = Math.max(1, Math.min(this.limit, options.maxConcurrency));
    this.drain();
  }

  /** False while the breaker is open or the seller asked us to back off: skip it rather than queue. */
  available(now = Date.now()): boolean {
    if (now < this.pausedUntil) return false;
    // The breaker moves to half-open lazily, on the first call after the wait: allow that call.
    return this.breaker.state !== CircuitState.Open || now >= this.openedAt + this.options.breakerHalfOpenMs;
  }

  /**
   * Runs one call under the breaker and the concurrency limit. `failed` tells which outcomes
   * count against the seller. Throws OpenCircuitError when the breaker refuses the call.
   */
  async run<T>(call: () => Promise<T>, classify: (outcome: T) => { failed: boolean; latencyMs: number; aborted: boolean; retryAfterMs?: number | null; rateLimited?: boolean }): Promise<T> {
    await this.acquire();
    try {
      return await this.breaker.execute(async () => {
        const outcome = await call();
        const c = classify(outcome);
        this.observe(c);
        if (c.failed && !c.aborted) throw new CallFailed(outcome);
        return outcome;
      });
    } catch (e) {
      if (e instanceof CallFailed) return e.outcome as T;
      if (e instanceof BrokenCircuitError) throw new OpenCircuitError('circuit open');
      throw e;
    } finally {
      this.release();
    }
  }

  /** An operator's hand reset: breaker closed, pause lifted, limit back to its start. */
  reset(): void {
    this.breaker = this.makeBreaker();
    this.pausedUntil = 0;
    this.limit = Math.max(1, Math.min(this.options.initialConcurrency, this.options.maxConcurrency));
    this.drain();
  }

  health(now = Date.now()): GateHealth {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : null);
    const failed = this.failures.filter(Boolean).length;
    return {
      breaker: breakerState(this.breaker.state),
      concurrencyLimit: Math.floor(this.limit),
      inFlight: this.inFlight,
      queued: this.queue.length,
      latencyMs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99) },
      errorRate: this.failures.length ? failed / this.failures.length : 0,
      recentCalls: this.failures.length,
      pausedUntil: this.pausedUntil > now ? new Date(this.pausedUntil) : null,
    };
  }

  private observe(c: { failed: boolean; latencyMs: number; aborted: boolean; retryAfterMs?: number | null; rateLimited?: boolean }): void {
    if (c.aborted) return;
    push(this.latencies, c.latencyMs);
    push(this.failures, c.failed);
    const now = Date.now();
    if (c.rateLimited) this.pausedUntil = Math.max(this.pausedUntil, now + (c.retryAfterMs ?? 1000));
    const slow = this.baselineMs !== null && c.latencyMs > Math.max(3 * this.baselineMs, 50) && c.latencyMs > 0.5 * this.options.timeoutMs;
    if (c.failed || slow) {
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

  private makeBreaker(): CircuitBreakerPolicy {
    const breaker = circuitBreaker(handleWhen((e) => e instanceof CallFailed), {
      halfOpenAfter: this.options.breakerHalfOpenMs,
      breaker: new ConsecutiveBreaker(this.options.breakerThreshold),
    });
    breaker.onBreak(() => {
      this.openedAt = Date.now();
    });
    return breaker;
  }
}

function breakerState(s: CircuitState): BreakerState {
  switch (s) {
    case CircuitState.Closed:
      return 'CLOSED';
    case CircuitState.HalfOpen:
      return 'HALF_OPEN';
    case CircuitState.Open:
    case CircuitState.Isolated:
      return 'OPEN';
    default: {
      const never: never = s;
      throw new Error(`unknown circuit state ${String(never)}`);
    }
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

  constructor(private readonly defaults: GateDefaults) {}

  get(seller: { id: string; maxConcurrency: number; timeoutMs: number }): SellerGate {
    const options: GateOptions = { ...this.defaults, maxConcurrency: seller.maxConcurrency, timeoutMs: seller.timeoutMs };
    let gate = this.gates.get(seller.id);
    if (!gate) {
      gate = new SellerGate(options);
      this.gates.set(seller.id, gate);
    } else {
      gate.reconfigure(options);
    }
    return gate;
  }

  /** The gate if the seller has been called on this instance. */
  peek(sellerId: string): SellerGate | undefined {
    return this.gates.get(sellerId);
  }
}
