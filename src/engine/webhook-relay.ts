import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { batchLoader } from '../db/batch-loader.js';
import type { Db } from '../db/client.js';
import { claimDeliveries, type Delivery, type DirectLease, markDeliveredMany, markFailed, markGone, releaseDeliveries, releaseLapsed, sweepDelivered } from '../db/queries/webhooks.js';
import type { Clock } from '../domain/clock.js';
import { toError } from '../domain/errors.js';
import type { OfferSnapshot, OrderDetails, RequestStatus } from '../domain/types.js';
import type { SendResult, WebhookSender } from '../infra/webhook-sender.js';
import type { Metrics } from '../infra/metrics.js';
import { inSpan } from '../infra/tracing.js';
import type { Logger } from '../logger.js';

export interface WebhookRelayConfig {
  pollMs: number;
  /** Deliveries being sent from this instance at once, across endpoints. */
  maxInFlight: number;
  /** Deliveries in flight per endpoint, across the fleet. */
  perEndpoint: number;
  leaseMs: number;
  /** First retry's delay; each next one doubles, up to `retryMaxMs`, with jitter. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** How long a delivery is retried before it is dead-lettered. */
  retryWindowMs: number;
  /** Consecutive failed deliveries to an endpoint that pause it (its breaker) until the next retry is due. */
  breakerAfter: number;
  /** Delivered rows are deleted this long after their delivery. */
  retentionMs: number;
  /** Each instance sweeps this often (any instance may: the sweeps skip each other's rows). */
  sweepEveryMs: number;
  /** Rows one delete takes: a sweep is many short transactions, never one long one. */
  sweepBatch: number;
}

/** Batches one sweep deletes at most; with more left, the next sweep follows after a poll interval's pause. */
const SWEEP_MAX_BATCHES = 10;

/**
 * The least time between two claims. Every committed status change and every finished delivery
 * wakes the relay; under load that is hundreds of wakes a second, and a claim per wake would walk
 * the endpoints with pending rows each time to take one or two. Wakes within this gap share the
 * next claim instead (graphile-worker's local queue fetches in batches the same way): at most
 * 1000 / gap claims a second, each taking what is due, for at most this much added latency.
 */
export const CLAIM_GAP_MS = 20;

/** Lapsed leases handed back by one look (once a poll interval): more wait for the next. */
const RELEASE_BATCH = 1_000;

/** What a try's answer means: the retry table for webhook receivers. */
export function decide(result: SendResult): 'delivered' | 'gone' | 'retry' {
  if (result.kind === 'error') return 'retry';
  if (result.status >= 200 && result.status < 300) return 'delivered';
  if (result.status === 410) return 'gone';
  return 'retry';
}

/** Exponential backoff with full jitter over its upper half: try `n` (1-based) waits about base·2^(n-1), capped. */
export function retryDelayMs(attempt: number, c: Pick<WebhookRelayConfig, 'retryBaseMs' | 'retryMaxMs'>, random = Math.random): number {
  const ceiling = Math.min(c.retryMaxMs, c.retryBaseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** The request as the outbox row's payload holds it (src/db/queries/transitions.ts, `notified`). */
interface OutboxPayload {
  id: string;
  status: RequestStatus;
  revision: number;
  bestOffer: OfferSnapshot | null;
  order: OrderDetails | null;
  failureReason: string | null;
  at: string;
}

const money = (cents: number, currency: string) => ({ cents, currency });

/**
 * The body of an event (API.md "Webhooks"): `data` as the GraphQL `PurchaseRequest` would show
 * those fields (sellers by id). A pure function of the stored payload, so every retry of an event
 * sends the same bytes.
 */
export function renderWebhookBody(payload: Record<string, unknown>): string {
  const p = payload as unknown as OutboxPayload;
  const o = p.bestOffer;
  const d = p.order;
  return JSON.stringify({
    type: `purchase_request.${p.status.toLowerCase()}`,
    timestamp: new Date(p.at).toISOString(),
    data: {
      id: p.id,
      status: p.status,
      revision: p.revision,
      bestOffer: o && {
        seller: { id: o.sellerId },
        condition: o.condition,
        itemPrice: money(o.itemCents, o.currency),
        shipping: money(o.shippingCents, o.currency),
        tax: money(o.taxCents, o.currency),
        fees: money(o.feesCents, o.currency),
        total: money(o.totalCents, o.currency),
        inventory: o.inventory,
        quotedAt: o.quotedAt,
      },
      order: d && {
        seller: { id: d.sellerId },
        sellerOrderId: d.sellerOrderId,
        total: money(d.totalCents, d.currency),
        deliveryEta: d.deliveryEta,
        placedAt: d.placedAt,
      },
      failureReason: p.failureReason,
    },
  });
}

/**
 * Delivers the webhook outbox (SPEC §8), on every instance: claims due rows under a lease with
 * SKIP LOCKED, sends each, and records the outcome. A receiver's slowness holds only its own
 * endpoint's slots (the per-endpoint cap is in the claim), and a failing one pauses only itself
 * (its breaker); nothing here touches a request's lifecycle.
 */
export class WebhookRelay {
  private phase: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private timer: NodeJS.Timeout | null = null;
  /** When the pending timer fires (`performance.now()` time), or null with none. */
  private timerAt: number | null = null;
  /** When the last claim started, on the same clock. */
  private lastClaimAt = -Infinity;
  /** When lapsed leases were last looked for, on the same clock. */
  private lastReleaseAt = -Infinity;
  private ticking = false;
  private again = false;
  /** Deliveries started and not yet recorded, by outbox row. */
  private readonly inFlight = new Map<number, { done: Promise<void>; seq: number }>();
  /**
   * Of those, the ones still being sent: what `maxInFlight` bounds, and this instance's share of
   * each endpoint's cap (by endpoint id). A sent delivery waits for its outcome to be written with
   * others (one statement for many), and holds no slot meanwhile: the slots are for receivers,
   * and a database busy recording must not turn them away.
   */
  private sending = 0;
  private readonly sendingTo = new Map<string, number>();
  /** Cuts every try still in flight when the grace period of a stop runs out: one for all of them. */
  private readonly cut = new AbortController();
  /** Room lent to status-change statements being written (direct dispatch), not yet given back. */
  private lent = 0;
  /** Deliveries started so far; each in flight keeps its number. */
  private started = 0;
  /**
   * Whether rows may be waiting for a claim, so that a finished delivery should look for them:
   * rows a statement left queued, or more behind a claim that found some. A claim that finds
   * nothing clears it once every delivery started before the last such news has finished — one
   * of them may be the earlier revision a queued row waits for. Otherwise a finished delivery
   * wakes nothing, and the poll is the only look.
   */
  private backlog = true;
  private backlogBehind = 0;
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  /** Deliveries that succeeded, recorded together: one statement for all that finished in one turn. */
  private readonly delivered = batchLoader<{ id: number; now: Date }, void>(
    async (rows) => {
      await markDeliveredMany(this.d.db, this.d.owner, rows);
      return rows.map(() => undefined);
    },
    { maxBatchSize: 256 },
  );

  constructor(
    private readonly d: {
      db: Db;
      sender: WebhookSender;
      clock: Clock;
      log: Logger;
      owner: string;
      config: WebhookRelayConfig;
      metrics?: Metrics;
    },
  ) {
    // Every try in flight listens on it (up to maxInFlight): that many listeners is no leak.
    setMaxListeners(0, this.cut.signal);
  }

  start(): void {
    if (this.phase !== 'idle') throw new Error(`webhook relay cannot start from ${this.phase}`);
    this.phase = 'running';
    this.wake();
    this.scheduleSweep(this.d.config.sweepEveryMs);
  }

  /** Look for due deliveries now (a status change was committed, a dead letter re-driven). */
  wake(): void {
    if (this.phase !== 'running') return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  /**
   * Direct dispatch (the request service's WebhookDispatch): a batch of status changes about to be
   * written may lease up to `wanted` of the outbox rows it writes to this instance, within the
   * room left for deliveries in flight. Null when there is none (the rows are claimed instead).
   */
  lease(wanted: number): DirectLease | null {
    if (this.phase !== 'running') return null;
    const { config: c, clock, owner } = this.d;
    const room = Math.min(wanted, c.maxInFlight - this.sending - this.lent);
    if (room <= 0) return null;
    this.lent += room;
    const now = clock.now();
    return { owner, now, until: new Date(now.getTime() + c.leaseMs), perEndpoint: c.perEndpoint, room, sending: Object.fromEntries(this.sendingTo) };
  }

  /**
   * The batch was written (or failed): its room comes back, what it leased here is sent now, and
   * rows it left for a claim are looked for at once. Stopping, the leased rows are left to lapse
   * and be claimed again, like a try cut short.
   */
  written(lease: DirectLease | null, direct: readonly Delivery[], queued: number): void {
    if (lease) this.lent -= lease.room;
    if (this.phase !== 'running') return;
    for (const delivery of direct) this.run(delivery);
    if (queued > 0) {
      this.expectBacklog();
      this.wake();
    }
  }

  private expectBacklog(): void {
    this.backlog = true;
    this.backlogBehind = this.started;
  }

  /** Stops claiming; deliveries in flight get `graceMs`, then are cut and their rows handed back. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.phase !== 'running') return;
    this.phase = 'stopping';
    if (this.timer) clearTimeout(this.timer);
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    const all = () => Promise.allSettled([...this.inFlight.values()].map((f) => f.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.cut.abort(new Error('the webhook relay stopped'));
    await all();
    await this.sweeping;
    await releaseDeliveries(this.d.db, this.d.owner).catch((err) => this.d.log.warn({ err }, 'could not hand webhook deliveries back; their leases lapse instead'));
    this.phase = 'stopped';
  }

  /**
   * The next claim in `ms`, but never sooner than the claim gap after the last one, and never later
   * than a claim already scheduled.
   */
  private schedule(ms: number): void {
    const now = performance.now();
    const at = Math.max(now + ms, this.lastClaimAt + CLAIM_GAP_MS);
    if (this.timer && this.timerAt !== null && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = null;
      void this.tick();
    }, at - now);
    this.timer.unref();
  }

  private scheduleSweep(ms: number): void {
    this.sweepTimer = setTimeout(() => {
      this.sweeping = this.sweep().finally(() => (this.sweeping = null));
    }, ms);
    this.sweepTimer.unref();
  }

  /**
   * Retention: deletes delivered rows older than the window, a batch per statement so no sweep
   * holds locks for long, and a few batches per sweep so a backlog (retention just lowered) is
   * worked off in steps between the claims rather than all at once.
   */
  private async sweep(): Promise<void> {
    const { config: c, clock, db, log } = this.d;
    let swept = 0;
    let more = false;
    try {
      for (let batch = 0; batch < SWEEP_MAX_BATCHES && this.phase === 'running'; batch++) {
        const n = await sweepDelivered(db, { before: new Date(clock.now().getTime() - c.retentionMs), limit: c.sweepBatch });
        swept += n;
        more = n === c.sweepBatch;
        if (!more) break;
      }
    } catch (err) {
      log.warn({ err: toError(err) }, 'webhook outbox sweep failed; the next one tries again');
    }
    if (swept > 0) {
      this.d.metrics?.webhookOutboxSwept.inc(swept);
      log.info({ swept, retentionHours: c.retentionMs / 3_600_000 }, 'delivered webhook outbox rows past their retention deleted');
    }
    if (this.phase === 'running') this.scheduleSweep(more ? Math.min(c.pollMs, c.sweepEveryMs) : c.sweepEveryMs);
  }

  private async tick(): Promise<void> {
    if (this.phase !== 'running' || this.ticking) return;
    this.ticking = true;
    this.again = false;
    this.lastClaimAt = performance.now();
    const { config: c, clock, db, owner, log } = this.d;
    let claimed = 0;
    try {
      // Rows whose instance died under lease wait again, looked for once a poll interval: the
      // claims that wakes bring between polls never walk the deliveries in flight.
      if (this.lastClaimAt - this.lastReleaseAt >= c.pollMs) {
        this.lastReleaseAt = this.lastClaimAt;
        const released = await releaseLapsed(db, { now: clock.now(), limit: RELEASE_BATCH });
        if (released > 0) log.info({ released }, 'webhook deliveries whose lease lapsed handed back for another try');
      }
      const room = c.maxInFlight - this.sending - this.lent;
      if (room > 0) {
        const deliveries = await claimDeliveries(db, { owner, now: clock.now(), leaseMs: c.leaseMs, perEndpoint: c.perEndpoint, limit: room, sending: Object.fromEntries(this.sendingTo) });
        claimed = deliveries.length;
        for (const delivery of deliveries) this.run(delivery);
        if (claimed > 0) this.expectBacklog();
        else if (![...this.inFlight.values()].some((f) => f.seq <= this.backlogBehind)) this.backlog = false;
      }
    } catch (err) {
      this.d.log.warn({ err }, 'webhook claim failed; trying again');
    } finally {
      this.ticking = false;
    }
    if (this.phase !== 'running') return;
    // A full claim may have left more due: look again at once; otherwise at the next poll.
    this.schedule(this.again || (claimed > 0 && this.sending < c.maxInFlight) ? 0 : c.pollMs);
  }

  private run(delivery: Delivery): void {
    const done = this.deliver(delivery, this.cut.signal)
      .catch((err) => this.d.log.warn({ err: toError(err), webhookId: delivery.row.webhookId }, 'webhook outcome not recorded; the lease lapses and it is tried again'))
      .finally(() => {
        this.inFlight.delete(delivery.row.id);
        if (this.backlog) this.wake();
      });
    this.inFlight.set(delivery.row.id, { done, seq: ++this.started });
  }

  private async deliver({ row, url, secret }: Delivery, signal: AbortSignal): Promise<void> {
    const { clock, db, owner, config: c, log } = this.d;
    this.sending += 1;
    this.sendingTo.set(row.endpointId, (this.sendingTo.get(row.endpointId) ?? 0) + 1);
    const result = await inSpan(
      'webhook.deliver',
      { 'webhook.id': row.webhookId, 'webhook.endpoint': row.endpointId, 'webhook.attempt': row.attempts, 'broker.request.id': row.requestId, 'broker.request.revision': row.revision },
      async (span) => {
        const sent = await this.d.sender.send({ url, secret, webhookId: row.webhookId, body: renderWebhookBody(row.payload), at: clock.now() }, signal);
        span.setAttribute('webhook.outcome', sent.kind === 'status' ? String(sent.status) : sent.code);
        return sent;
      },
      // Each try is a trace of its own: the relay's timers run in the context of whatever woke it
      // last (another request's round, an unrelated mutation), which is no parent of this delivery.
      ROOT_CONTEXT,
    ).finally(() => {
      this.sending -= 1;
      const left = this.sendingTo.get(row.endpointId)! - 1;
      if (left > 0) this.sendingTo.set(row.endpointId, left);
      else this.sendingTo.delete(row.endpointId);
      // A slot is free: rows left for a claim for want of one may be taken now.
      if (this.backlog) this.wake();
    });
    // Shutdown cut the try short: not the receiver's failure. The row is handed back as it is.
    if (signal.aborted && this.phase !== 'running') return;
    const now = clock.now();
    const base = { id: row.id, endpointId: row.endpointId, owner, now };
    const decision = decide(result);
    switch (decision) {
      case 'delivered':
        await this.delivered.load({ id: row.id, now });
        this.d.metrics?.webhookDeliveries.inc({ outcome: 'delivered' });
        return;
      case 'gone':
        log.info({ endpointId: row.endpointId }, 'webhook endpoint answered 410 Gone: disabled');
        await markGone(db, base);
        this.d.metrics?.webhookDeliveries.inc({ outcome: 'gone' });
        return;
      case 'retry': {
        const error = result.kind === 'status' ? `HTTP ${result.status}` : `${result.code}: ${result.message}`.slice(0, 500);
        const since = row.retrySince ?? now;
        const retryAt = since.getTime() + c.retryWindowMs <= now.getTime() ? null : new Date(now.getTime() + retryDelayMs(row.attempts, c));
        const outcome = await markFailed(db, {
          ...base,
          error,
          retryAt,
          deadLetterId: randomUUID(),
          breakerAfter: c.breakerAfter,
          pauseUntil: retryAt ?? now,
        });
        this.d.metrics?.webhookDeliveries.inc({ outcome });
        if (outcome === 'dead') log.warn({ webhookId: row.webhookId, endpointId: row.endpointId, error }, 'webhook dead-lettered after its retry window');
        return;
      }
      default: {
        const never: never = decision;
        throw new Error(`unhandled decision ${String(never)}`);
      }
    }
  }
}
