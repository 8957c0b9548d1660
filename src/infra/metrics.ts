import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The server's Prometheus metrics (SPEC §9), one registry per server instance so several
 * servers in one process (tests) never share counters. Gauges that describe current state
 * (queue lag, breakers, subscriptions) are read when scraped, through `onScrape` hooks.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly sellerCalls = new Counter({
    name: 'broker_seller_calls_total',
    help: 'Calls to partner sellers by seller, endpoint and outcome',
    labelNames: ['seller', 'endpoint', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly sellerLatency = new Histogram({
    name: 'broker_seller_call_duration_seconds',
    help: 'Latency of partner calls by seller and endpoint',
    labelNames: ['seller', 'endpoint'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly sellerRetries = new Counter({
    name: 'broker_seller_call_retries_total',
    help: 'Seller calls tried again by the retry table, by seller, endpoint and the cause of the failure retried',
    labelNames: ['seller', 'endpoint', 'cause'] as const,
    registers: [this.registry],
  });
  readonly sellerCallsRefused = new Counter({
    name: 'broker_seller_calls_refused_total',
    help: 'Seller calls not sent because the seller is out of service here (circuit open, Retry-After pause)',
    labelNames: ['seller', 'endpoint', 'why'] as const,
    registers: [this.registry],
  });
  readonly cacheLookups = new Counter({
    name: 'broker_offer_cache_lookups_total',
    help: 'Offer cache lookups by rounds, by result (hit: a seller call avoided; answers another instance received count as hits)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly roundsStarted = new Counter({
    name: 'broker_rounds_started_total',
    help: 'Rounds of quotes started (one per book and asked condition at a time)',
    registers: [this.registry],
  });
  readonly roundMembers = new Counter({
    name: 'broker_round_members_total',
    help: 'Requests served by rounds, by whether they started the round or joined one in flight (coalesced)',
    labelNames: ['how'] as const,
    registers: [this.registry],
  });
  readonly roundsAttached = new Counter({
    name: 'broker_rounds_attached_total',
    help: 'Rounds that called no seller themselves while another instance ran the round for the same book (coalesced across the fleet)',
    registers: [this.registry],
  });
  readonly callsSkipped = new Counter({
    name: 'broker_seller_calls_skipped_total',
    help: 'Seller calls not made because every request of the round was already satisfied (early exit savings; calls cut short count as broker_seller_calls_total{outcome="aborted"})',
    registers: [this.registry],
  });
  readonly roundCalls = new Histogram({
    name: 'broker_round_seller_calls',
    help: 'Seller calls each round sent, retries included (divided by broker_round_members_total: seller calls per request searched)',
    buckets: [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128],
    registers: [this.registry],
  });
  readonly requestsCreated = new Counter({
    name: 'broker_requests_created_total',
    help: 'Purchase requests created',
    registers: [this.registry],
  });
  readonly requestsTaken = new Counter({
    name: 'broker_engine_requests_taken_total',
    help: "Requests this instance's engine took to work on: as it created them (on_create), or claimed from the database (claim: new requests created while the engine was full or on an instance without it, rechecks, work of a stopped or crashed instance)",
    labelNames: ['how'] as const,
    registers: [this.registry],
  });
  readonly outcomes = new Counter({
    name: 'broker_request_outcomes_total',
    help: 'Requests reaching an outcome status (QUOTED and OUT_OF_STOCK each time they are entered)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly resolution = new Histogram({
    name: 'broker_resolution_seconds',
    help: 'Time from creation to an outcome: a terminal status, or QUOTED / OUT_OF_STOCK when a search ends there (not a new best price)',
    labelNames: ['status'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
    registers: [this.registry],
  });
  readonly attempts = new Counter({
    name: 'broker_order_attempts_total',
    help: 'Finished order attempts by final state and payment state',
    labelNames: ['state', 'payment'] as const,
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: 'broker_webhook_deliveries_total',
    help: 'Webhook delivery tries by outcome: delivered, retry (failed; due again later), dead (failed past its retry window), gone (410: endpoint disabled), lost (lease lapsed first)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly webhookOutboxSwept = new Counter({
    name: 'broker_webhook_outbox_swept_total',
    help: 'Delivered webhook outbox rows deleted by the retention sweep (WEBHOOK_RETENTION_HOURS after delivery)',
    registers: [this.registry],
  });

  private readonly scrapeHooks: Array<() => Promise<void> | void> = [];

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'broker_process_' });
  }

  /** A gauge whose value is read at scrape time. */
  gauge(name: string, help: string, read: () => Promise<number> | number): void {
    const g = new Gauge({ name, help, registers: [this.registry] });
    this.scrapeHooks.push(async () => g.set(await read()));
  }

  /** A labelled gauge whose values are read at scrape time. */
  labelledGauge(name: string, help: string, label: string, read: () => Promise<Array<[string, number]>> | Array<[string, number]>): void {
    const g = new Gauge({ name, help, labelNames: [label], registers: [this.registry] });
    this.scrapeHooks.push(async () => {
      g.reset();
      for (const [l, v] of await read()) g.set({ [label]: l }, v);
    });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    await Promise.all(this.scrapeHooks.map(async (h) => h()));
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
