import { sleep } from '../domain/clock.js';
import pLimit, { type LimitFunction } from 'p-limit';
import { type CallRateLimiter, CallTurn, MemoryCallRate, type SharedPauses } from '../infra/call-rate.js';
import type { Metrics } from '../infra/metrics.js';
import { inSpan } from '../infra/tracing.js';
import type {
  CallFailure,
  ConnectorSeller,
  OrderOutcome,
  OrderParams,
  OrderStatusOutcome,
  OrderStatusParams,
  PartnerConnector,
  QuoteOutcome,
  QuoteParams,
} from './connector.js';
import { retryDecision } from './retry.js';
import { type Observation, OpenCircuitError, type SellerGates } from './seller-gate.js';
import type { SellerStats } from './seller-stats.js';

/**
 * The one way to call a seller (STYLE §7). Every call — quote, revalidation, order, order
 * status — passes, in this order:
 *
 *   Retry-After pause (fleet-wide) → breaker → the seller's calls per second (fleet-wide) →
 *   the seller's adaptive concurrency limit → the global cap → send (with the caller's
 *   AbortSignal) → stats and metrics → the retry table
 *
 * with a policy per kind of call:
 *
 * | kind        | retried by the table | while the seller asked us to pause       |
 * | ----------- | -------------------- | ---------------------------------------- |
 * | quote       | yes                  | skipped at once (the round asks others)  |
 * | order       | never (1)            | waits for the pause up to the timeout    |
 * | orderStatus | yes                  | waits for the pause up to the timeout    |
 *
 * (1) An order is repeated only by the attempt driver, with the attempt's idempotency key.
 *
 * A call over the seller's `maxCallsPerSecond` waits its turn, holding no slot meanwhile (up to
 * its AbortSignal); it is never refused for it nor counted against the seller.
 *
 * What an answer says about the seller is decided here, once: a failure of the seller itself
 * (5xx, 429, timeout, connection error, unreadable 2xx) counts against it; a call the caller
 * aborted, one that could not be sent, and a quote the seller cannot answer for this query
 * (400/422) count toward nothing — breaker, error rate, stats and AIMD alike (SPEC §6).
 */
export type CallKind = 'quote' | 'order' | 'orderStatus';

/** A seller as the pipeline needs it: the connector's view plus what names and bounds it. */
export type PipelineSeller = ConnectorSeller & { name: string; maxConcurrency: number; maxCallsPerSecond?: number | null };

/** The pipeline did not send the call (or a retry of it). Never a fault of the seller. */
export interface Refused {
  kind: 'refused';
  /**
   * circuit_open: the breaker refuses calls (or a half-open probe is under way);
   * paused: the seller's Retry-After has not passed;
   * not_needed: the caller stopped needing it (aborted, or `stillNeeded` said no) before it was sent.
   */
  why: 'circuit_open' | 'paused' | 'not_needed';
}

export interface CallOptions {
  /** Aborts the call in flight, and any wait (in the queues, for a pause, before a retry). */
  signal?: AbortSignal;
  /** Asked after each wait, before anything is sent: false → the call is not made. */
  stillNeeded?: () => boolean;
  /** Called just before each try is sent (rounds count calls and date their quotes from it). */
  onSend?: () => void;
}

export interface PipelineDeps {
  connector: Pick<PartnerConnector, 'quote' | 'order' | 'orderStatus'>;
  gates: SellerGates;
  stats: SellerStats;
  /** Seller calls in flight at once across all sellers and kinds. */
  globalConcurrency: number;
  /** Holds each seller to its maxCallsPerSecond (default: this instance's own count). */
  callRate?: CallRateLimiter;
  /** Shares a seller's Retry-After with every instance (default: this instance alone). */
  pauses?: SharedPauses;
  metrics?: Metrics;
  /** Jitter source for retry waits (tests pin it). */
  random?: () => number;
}

/** The longest a caller waits before a retry (a Retry-After beyond it ends the retries). */
const MAX_RETRY_WAIT_MS = 1_000;

interface Policy<O> {
  endpoint: CallKind;
  /** Whether failed outcomes go through the retry table. */
  retried: boolean;
  /** How long a call may wait for the seller's Retry-After pause to end; beyond it the call is refused. */
  pauseWaitMs: (seller: PipelineSeller) => number;
  /** The failure in an outcome, if it is one. */
  failure: (o: O) => CallFailure | null;
  /** What the outcome says about the seller. */
  observe: (o: O) => Observation;
}

const QUOTE: Policy<QuoteOutcome> = {
  endpoint: 'quote',
  retried: true,
  pauseWaitMs: () => 0,
  failure: (o) => (o.kind === 'failed' ? o : null),
  observe: (o) => (o.kind === 'failed' ? observeFailure(o, o.latencyMs) : { verdict: o.kind === 'unanswerable' ? 'neutral' : 'ok', latencyMs: o.latencyMs }),
};

const ORDER: Policy<OrderOutcome> = {
  endpoint: 'order',
  retried: false,
  pauseWaitMs: (s) => s.timeoutMs,
  failure: (o) => (o.kind === 'unknown' ? o : null),
  // A refusal (409/410/422) is a sound answer from a working seller.
  observe: (o) => (o.kind === 'unknown' ? observeFailure(o, o.latencyMs) : { verdict: 'ok', latencyMs: o.latencyMs }),
};

const ORDER_STATUS: Policy<OrderStatusOutcome> = {
  endpoint: 'orderStatus',
  retried: true,
  pauseWaitMs: (s) => s.timeoutMs,
  failure: (o) => (o.kind === 'unknown' ? o : null),
  observe: (o) => (o.kind === 'unknown' ? observeFailure(o, o.latencyMs) : { verdict: 'ok', latencyMs: o.latencyMs }),
};

function observeFailure(f: CallFailure, latencyMs: number): Observation {
  switch (f.cause.kind) {
    case 'aborted':
    case 'unsendable':
      return { verdict: 'neutral', latencyMs };
    case 'http':
      return {
        verdict: 'failed',
        latencyMs,
        // A 503 with Retry-After says how long the seller expects to be away: honoured like a 429.
        rateLimited: f.cause.status === 429 || (f.cause.status === 503 && f.retryAfterMs !== null),
        retryAfterMs: f.retryAfterMs,
      };
    case 'timeout':
    case 'network':
    case 'unreadable':
      return { verdict: 'failed', latencyMs };
    default: {
      const never: never = f.cause;
      throw new Error(`unknown failure cause ${JSON.stringify(never)}`);
    }
  }
}

const NOT_NEEDED: Refused = { kind: 'refused', why: 'not_needed' };
const NEUTRAL: Observation = { verdict: 'neutral', latencyMs: 0 };

export class SellerPipeline {
  readonly #d: PipelineDeps;
  readonly #global: LimitFunction;
  readonly #callRate: CallRateLimiter;

  constructor(deps: PipelineDeps) {
    this.#d = deps;
    this.#global = pLimit(deps.globalConcurrency);
    this.#callRate = deps.callRate ?? new MemoryCallRate();
  }

  /** False while the seller is out of service here (breaker open, Retry-After pause): skip it rather than queue. */
  available(seller: PipelineSeller): boolean {
    return this.#d.gates.get(seller).available();
  }

  /** A quote, for a round or to revalidate a cached price before ordering on it. */
  quote(seller: PipelineSeller, params: QuoteParams, options: CallOptions = {}): Promise<QuoteOutcome | Refused> {
    return this.#call(seller, QUOTE, (signal) => this.#d.connector.quote(seller, params, signal), options);
  }

  /** One order call. Never repeated here: the attempt driver repeats it, with the same idempotency key. */
  order(seller: PipelineSeller, params: OrderParams, options: CallOptions = {}): Promise<OrderOutcome | Refused> {
    return this.#call(seller, ORDER, (signal) => this.#d.connector.order(seller, params, signal), options);
  }

  orderStatus(seller: PipelineSeller, params: OrderStatusParams, options: CallOptions = {}): Promise<OrderStatusOutcome | Refused> {
    return this.#call(seller, ORDER_STATUS, (signal) => this.#d.connector.orderStatus(seller, params, signal), options);
  }

  async #call<O extends { kind: string; latencyMs: number }>(
    seller: PipelineSeller,
    policy: Policy<O>,
    send: (signal: AbortSignal | undefined) => Promise<O>,
    options: CallOptions,
  ): Promise<O | Refused> {
    const { gates, stats, metrics } = this.#d;
    const { signal, stillNeeded, onSend } = options;
    const needed = () => !signal?.aborted && (stillNeeded?.() ?? true);
    // A pause another instance was asked for, or a breaker it opened, holds here too.
    const gate = await gates.synced(seller);
    // Looked at again after each wait: a timer may end a millisecond before the gate's clock says
    // the pause is over, and another call may have been asked to pause for longer meanwhile.
    for (let pause = gate.pausedFor(); pause > 0; pause = gate.pausedFor()) {
      if (pause > policy.pauseWaitMs(seller)) return this.#refused(seller, policy.endpoint, 'paused');
      await sleep(pause, signal);
      if (!needed()) return NOT_NEEDED;
    }
    if (!gate.available()) return this.#refused(seller, policy.endpoint, 'circuit_open');

    for (let attempt = 1; ; attempt++) {
      let seen: Observation = NEUTRAL;
      let outcome: O | Refused;
      const before = gate.breakerState();
      const limit = seller.maxCallsPerSecond;
      const turn = limit ? await CallTurn.take(this.#callRate, seller.id, limit, signal) : null;
      try {
        outcome = await gate.run(
          () =>
            this.#global(async (): Promise<O | Refused> => {
              // Queued behind the caps: by now the call may no longer be needed.
              if (!needed() || (turn && !(await turn.claim(needed, signal)))) return NOT_NEEDED;
              onSend?.();
              stats.started(seller.id);
              // One span per try sent; its context is the `traceparent` the connector sends the seller.
              const o = await inSpan(`seller.${policy.endpoint}`, { 'broker.seller': seller.name, 'broker.call.kind': policy.endpoint, 'broker.call.try': attempt }, async (span) => {
                const answer = await send(signal);
                const status = (answer as { status?: number | null }).status;
                span.setAttributes({ 'broker.call.outcome': outcomeLabel(answer), ...(typeof status === 'number' ? { 'http.response.status_code': status } : {}) });
                return answer;
              });
              seen = policy.observe(o);
              stats.finished(seller.id, seen);
              recordCall(metrics, seller, policy.endpoint, o);
              return o;
            }),
          () => seen,
        );
      } catch (e) {
        if (e instanceof OpenCircuitError) return this.#refused(seller, policy.endpoint, 'circuit_open');
        throw e;
      } finally {
        turn?.release();
      }
      // The seller asked this instance to back off, or failed until its breaker opened: every instance holds off.
      if (seen.rateLimited) this.#d.pauses?.publish(seller.id, gate.pausedFor());
      const after = gate.breakerState();
      if (before !== 'OPEN' && after === 'OPEN') gates.opened(seller.id, gate);
      // A probe here found the seller well again: the others need not wait out the shared breaker.
      else if (before === 'HALF_OPEN' && after === 'CLOSED') gates.closed(seller.id);
      if (isRefused(outcome) || !policy.retried) return outcome;
      const failure = policy.failure(outcome);
      if (failure === null) return outcome;
      const next = retryDecision(failure, attempt, Math.min(MAX_RETRY_WAIT_MS, seller.timeoutMs), this.#d.random);
      if (!next.retry || !needed()) return outcome;
      metrics?.sellerRetries.inc({ seller: seller.name, endpoint: policy.endpoint, cause: causeLabel(failure) });
      await sleep(next.delayMs, signal);
      // Nobody waits any more: the failure stands as the answer.
      if (!needed()) return outcome;
    }
  }

  #refused(seller: PipelineSeller, endpoint: CallKind, why: 'circuit_open' | 'paused'): Refused {
    this.#d.metrics?.sellerCallsRefused.inc({ seller: seller.name, endpoint, why });
    return { kind: 'refused', why };
  }
}

export function isRefused(o: { kind: string }): o is Refused {
  return o.kind === 'refused';
}


function causeLabel(f: CallFailure): string {
  const c = f.cause;
  return c.kind === 'http' ? `http_${c.status}` : c.kind === 'network' ? c.errno : c.kind;
}

/** How a call ended, as metrics and spans name it: the outcome's kind, or a failure's cause (`http_503`, `timeout`…). */
function outcomeLabel(o: { kind: string; cause?: CallFailure['cause'] }): string {
  const failure = o.cause;
  return failure === undefined ? o.kind : failure.kind === 'http' ? `http_${failure.status}` : failure.kind;
}

/** Counts one partner call and its latency, by seller, endpoint and outcome. */
function recordCall(metrics: Metrics | undefined, seller: { name: string }, endpoint: CallKind, o: { kind: string; latencyMs: number; cause?: CallFailure['cause'] }): void {
  if (!metrics) return;
  const failure = o.cause;
  metrics.sellerCalls.inc({ seller: seller.name, endpoint, outcome: outcomeLabel(o) });
  // Aborted and unsent calls took no time of the seller's worth measuring.
  if (failure?.kind !== 'aborted' && failure?.kind !== 'unsendable') {
    metrics.sellerLatency.observe({ seller: seller.name, endpoint }, o.latencyMs / 1000);
  }
}
