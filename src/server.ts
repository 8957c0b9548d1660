import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { Config } from './config.js';
import { type Database, openDatabase } from './db/client.js';
import { type Clock, systemClock } from './domain/clock.js';
import { assertLifecycleValid } from './domain/lifecycle.js';
import { RequestService } from './services/requests.js';
import { SellerService } from './services/sellers.js';
import { Auth } from './http/auth.js';
import { makeErrorFormatter } from './http/errors.js';
import { createHttpHandler } from './http/routes.js';
import { type WsHandle, attachGraphQLWs } from './http/ws.js';
import { MemoryPubSub, type PubSub } from './infra/pubsub.js';
import { RedisPubSub } from './infra/redis-pubsub.js';
import { findRequestById } from './db/queries/requests.js';
import { requestTopic } from './services/requests.js';
import { toSnapshotMessage } from './services/snapshot.js';
import { type Logger, createLogger } from './logger.js';
import type { Context, Services } from './resolvers/context.js';
import { buildSchema } from './schema/index.js';
import { listSellers } from './db/queries/sellers.js';
import type { Db } from './db/client.js';
import { Engine } from './engine/engine.js';
import { MemoryOfferCache, type OfferCache } from './engine/offer-cache.js';
import { FleetOfferCache } from './engine/fleet-offer-cache.js';
import { FleetRounds } from './engine/fleet-rounds.js';
import { RedisOffers } from './infra/redis-offers.js';
import { AttemptDriver } from './engine/attempt-driver.js';
import { OrderingService } from './engine/ordering.js';
import { RoundCoordinator } from './engine/round.js';
import { SellerDirectory } from './engine/seller-directory.js';
import { SellerStats } from './partners/seller-stats.js';
import { type InventoryGuard, MemoryInventoryGuard } from './infra/inventory.js';
import { RedisLimits } from './infra/redis-limits.js';
import { type CallRateLimiter, MemoryCallRate, type SharedPauses } from './infra/call-rate.js';
import { RedisCallRate } from './infra/redis-call-rate.js';
import { PartnerConnector } from './partners/connector.js';
import { SellerPipeline } from './partners/pipeline.js';
import { type EmbeddedSandbox, embedSandbox } from './partners/sandbox/embed.js';
import type { SandboxFleet } from './partners/sandbox/fleet.js';
import { SandboxPaymentGateway } from './payments/sandbox-gateway.js';
import { SellerGates } from './partners/seller-gate.js';
import { Metrics } from './infra/metrics.js';
import { limitRules } from './http/query-limits.js';
import { httpOperationLimits } from './http/operation-limits.js';
import { operationTracing } from './http/tracing-plugin.js';
import { trustedDocumentsPlugin } from './http/trusted-documents.js';
import { NoSchemaIntrospectionCustomRule } from 'graphql';
import { oldestDue } from './db/queries/work.js';
import { attemptsNeedingAttention } from './db/queries/attempts.js';
import { countOpenDeadLetters } from './db/queries/dead-letters.js';
import { webhookOutboxLagSeconds } from './db/queries/webhook-lag.js';
import type { RequestRow } from './db/schema.js';
import type { Change } from './services/requests.js';
import { isTerminal } from './domain/lifecycle.js';
import { CallbackReceiver } from './partners/callbacks.js';
import { DeadLetterService } from './services/dead-letters.js';
import { WebhookService } from './services/webhooks.js';
import { WebhookRelay } from './engine/webhook-relay.js';
import { WebhookSender } from './infra/webhook-sender.js';
import { guardedConnect } from './infra/ssrf.js';
import { Admission } from './services/admission.js';
import { MemoryRateLimiter } from './infra/rate-limit.js';
import { mutationRateLimit } from './http/limits.js';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

export const GRAPHQL_PATH = '/graphql';

export interface StartOptions {
  log?: Logger;
  clock?: Clock;
  /** Sees every SQL statement (tests count queries to catch N+1 patterns). */
  onQuery?: (sql: string) => void;
  /** Replaces the webhook sender's connect options (tests: a resolver that answers what they need). */
  webhookConnect?: WebhookSenderConnect;
}

type WebhookSenderConnect = ConstructorParameters<typeof WebhookSender>[0]['connect'];

export interface App {
  readonly url: string;
  readonly port: number;
  readonly auth: Auth;
  readonly services: Services;
  readonly log: Logger;
  /** The embedded sandbox fleet, when this process runs one. */
  readonly sandbox: SandboxFleet | null;
  readonly engine: Engine | null;
  /** Graceful stop: drain HTTP, close subscriptions, stop Apollo, close the database. Idempotent. */
  stop(): Promise<void>;
}

type Phase = 'running' | 'stopping' | 'stopped';

/** Composes every part from the configuration; the only module that knows them all. */
export async function startServer(config: Config, options: StartOptions = {}): Promise<App> {
  assertLifecycleValid();
  if (!config.jwtSecret) throw new Error('startServer needs config.jwtSecret (main.ts generates one when unset)');
  const log = options.log ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;

  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.dbPoolSize,
    preparedStatements: config.dbPreparedStatements,
    randomPageCost: config.dbRandomPageCost,
    onQuery: options.onQuery,
  });
  let pubsub: PubSub | undefined;
  let httpServer: Server | undefined;
  let ws: WsHandle | undefined;
  let apollo: ApolloServer<Context> | undefined;
  let sandbox: EmbeddedSandbox | null = null;
  let shared: RedisLimits | null = null;
  let pacing: RedisCallRate | null = null;
  let offerStore: RedisOffers | null = null;
  // Under SELLER_URLS=public every partner connection resolves, checks and pins a public address.
  const connector = new PartnerConnector({
    connectionsPerOrigin: config.connectionsPerOrigin,
    clock,
    connect: config.sellerUrls === 'public' ? guardedConnect() : undefined,
  });
  try {
    await database.migrate();
    if (config.redisUrl) {
      const redisLog = log.child({ component: 'redis' });
      const redis = new RedisPubSub(config.redisUrl, config.redisPrefix, {
        log: redisLog,
        resync: (topic) => currentRequestMessage(database.db, topic),
      });
      pubsub = redis;
      shared = new RedisLimits(config.redisUrl, config.redisPrefix, { log: redisLog });
      await Promise.all([redis.ready(), shared.ready()]);
    } else {
      pubsub = new MemoryPubSub();
    }
    if (config.redisUrl) {
      // Sellers' calls per second and Retry-After pauses, fleet-wide; a Redis failure falls back per call.
      pacing = new RedisCallRate(config.redisUrl, { prefix: config.redisPrefix, log: log.child({ component: 'redis' }) });
      await pacing.ready();
      // Quotes any instance received, and the registry of rounds in flight: one round per book fleet-wide.
      offerStore = new RedisOffers(config.redisUrl, { prefix: config.redisPrefix, log: log.child({ component: 'redis' }) });
      await offerStore.ready();
    }
    // State several instances must agree on lives in Redis when there is one.
    const rateLimiter = shared ? shared.rateLimiter(config.rateLimitPerMinute, config.rateLimitBurst) : new MemoryRateLimiter(config.rateLimitPerMinute, config.rateLimitBurst);
    const inventory = shared ? shared.inventoryGuard() : new MemoryInventoryGuard();
    const callRate: CallRateLimiter = pacing ?? new MemoryCallRate();
    const pauses: SharedPauses | undefined = pacing ?? undefined;
    const db = database.db;
    const bus = pubsub;
    const metrics = new Metrics();
    let engine: Engine | null = null;
    let relay: WebhookRelay | null = null;
    const directory = new SellerDirectory(() => listSellers(db), clock);
    const requests = new RequestService({
      db,
      pubsub: bus,
      clock,
      limits: { maxHorizonMs: config.maxExpiryHorizonMs },
      onCommitted: (row, change) => {
        engine?.onCommitted(row, change);
        countOutcome(metrics, row, change);
      },
      // The outbox rows are written with the change: this instance's relay sends them at once.
      webhooks: {
        lease: (wanted) => relay?.lease(wanted) ?? null,
        written: (lease, direct, queued) => relay?.written(lease, direct, queued),
      },
      // A request created here is written leased to this instance's engine, which starts on it at once.
      work: {
        lease: () => engine?.lease() ?? null,
        taken: (lease, row) => engine?.taken(lease, row),
      },
      admission: new Admission(db, config.maxBacklog, config.overloadedRetryAfterMs, clock),
    });
    const sellers = new SellerService({ db, clock, sellerUrls: config.sellerUrls, onChanged: () => directory.invalidate() });
    const gates = config.engine.enabled
      ? new SellerGates(
          {
            initialConcurrency: config.engine.sellerInitialConcurrency,
            breakerThreshold: config.engine.breakerThreshold,
            breakerHalfOpenMs: config.engine.breakerHalfOpenMs,
          },
          clock,
          pacing ?? undefined,
        )
      : null;
    const auth = new Auth(config.jwtSecret);
    const callbacks = new CallbackReceiver({
      db,
      clock,
      log: log.child({ component: 'callbacks' }),
      findSeller: async (id) => (await sellers.byIds([id]))[0] ?? null,
      handlers: () =>
        engine && {
          quote: (seller, ref, body) => engine!.quoteCallback(seller, ref, body),
          order: (seller, key, status, body) => engine!.orderCallback(seller, key, status, body),
        },
    });
    const deadLetters = new DeadLetterService({
      db,
      clock,
      callbacks,
      findSeller: async (id) => (await sellers.byIds([id]))[0] ?? null,
      wake: () => void engine?.reconcile(),
      wakeWebhooks: () => relay?.wake(),
    });
    const webhooks = new WebhookService({ db, clock, webhookUrls: config.webhookUrls });
    const webhookSender = new WebhookSender({
      urls: config.webhookUrls,
      timeoutMs: config.webhooks.timeoutMs,
      connectionsPerOrigin: config.webhooks.connectionsPerOrigin,
      connect: options.webhookConnect,
    });
    const services: Services = { db, pubsub: bus, requests, sellers, gates, deadLetters, webhooks };
    const schema = buildSchema();
    const formatError = makeErrorFormatter(log, config.hideSchemaDetails);

    apollo = new ApolloServer<Context>({
      schema,
      formatError,
      includeStacktraceInErrorResponses: false,
      introspection: config.introspection,
      hideSchemaDetailsFromClientErrors: config.hideSchemaDetails,
      csrfPrevention: true,
      allowBatchedHttpRequests: false,
      parseOptions: { maxTokens: config.queryLimits.maxTokens },
      validationRules: limitRules(config.queryLimits),
      // With a manifest, ids resolve to its documents only: clients cannot register new ones (APQ).
      ...(config.trustedDocuments ? { persistedQueries: false as const } : {}),
      plugins: [
        ...(config.trustedDocuments ? [trustedDocumentsPlugin<Context>(config.trustedDocuments)] : []),
        ApolloServerPluginLandingPageDisabled(),
        // Apollo's default cache-control plugin hooks every field's resolution to add up cache
        // hints the schema never gives, only to answer `no-store`; the route sends that itself.
        ApolloServerPluginCacheControlDisabled(),
        httpOperationLimits(config.queryLimits.maxCost),
        mutationRateLimit(rateLimiter),
        operationTracing(),
      ],
      logger: log.child({ component: 'apollo' }),
      // main.ts owns the signals: Apollo's own handler would stop it mid-drain and re-raise the
      // signal, which main.ts takes for a second one (forced exit, code 1).
      stopOnTerminationSignals: false,
    });
    await apollo.start();

    const server = createServer(
      { requestTimeout: 30_000, headersTimeout: 15_000, keepAliveTimeout: 5_000 },
      createHttpHandler({
        apollo,
        services,
        database,
        auth,
        log,
        bodyLimitBytes: config.bodyLimitBytes,
        callbacks,
        metrics,
      }),
    );
    httpServer = server;
    // Listening before the WebSocket server is attached: ws re-emits the HTTP server's errors, and
    // graphql-ws prints a stack for them ("Internal error emitted on the WebSocket server"). No
    // upgrade can slip in between: connections are taken only after this turn's continuation.
    await new Promise<void>((resolve, reject) => {
      const refused = (err: Error) => reject(listenError(err, config.host, config.port));
      server.once('error', refused);
      server.listen(config.port, config.host, () => {
        server.off('error', refused);
        resolve();
      });
    });
    ws = attachGraphQLWs({
      server,
      path: GRAPHQL_PATH,
      schema,
      services,
      auth,
      log,
      formatError,
      validationRules: [...limitRules(config.queryLimits), ...(config.introspection ? [] : [NoSchemaIntrospectionCustomRule])],
      connectionInitTimeoutMs: config.wsConnectionInitTimeoutMs,
      maxPayloadBytes: config.wsMaxPayloadBytes,
      maxTokens: config.queryLimits.maxTokens,
      maxCost: config.queryLimits.maxCost,
      hideSchemaDetails: config.hideSchemaDetails,
      maxSubscriptionsPerConnection: config.wsMaxSubscriptionsPerConnection,
      maxConnectionsPerUser: config.wsMaxConnectionsPerUser,
      allowedOrigins: config.allowedOrigins,
      trustedDocuments: config.trustedDocuments,
    });

    const port = (server.address() as AddressInfo).port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}`;

    sandbox = await embedSandbox({
      mode: config.sandbox,
      sellers,
      port: config.sandboxPort,
      seed: config.sandboxSeed,
      latencyScale: config.sandboxLatencyScale,
    });
    if (gates) {
      engine = composeEngine({ config, db, requests, directory, gates, metrics, inventory, callRate, pauses, pubsub: bus, clock, log, connector, publicUrl: config.publicUrl ?? url, offerStore });
      await engine.start();
      relay = new WebhookRelay({
        db,
        sender: webhookSender,
        clock,
        log: log.child({ component: 'webhooks' }),
        owner: `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
        // Three answer timeouts: a try never outlives its lease, and a crashed instance's rows are retried soon.
        config: { ...config.webhooks, leaseMs: 3 * config.webhooks.timeoutMs },
        metrics,
      });
      relay.start();
    }
    registerGauges(metrics, { db, clock, engine, gates, sellers, ws: ws!, pubsub: bus });
    log.info(
      { url, storage: database.kind, pubsub: config.redisUrl ? 'redis' : 'memory', sandbox: sandbox?.fleet.url ?? null, engine: Boolean(engine) },
      'server listening',
    );

    let phase: Phase = 'running';
    let stopping: Promise<void> | undefined;
    const wsHandle = ws;
    const apolloServer = apollo;
    const fleet = sandbox;
    const sharedState = shared;
    const stop = () => {
      if (phase !== 'running') return stopping!;
      phase = 'stopping';
      stopping = (async () => {
        const started = Date.now();
        const grace = config.shutdownGraceMs;
        // Work drains until `drainedBy`; the rest of the grace is for closing pools and connections.
        const drainedBy = started + grace - Math.min(CLOSE_RESERVE_MS, Math.floor(grace / 4));
        const endBy = started + grace;
        const left = (until: number) => Math.max(0, until - Date.now());
        const step = (name: string, run: () => Promise<unknown> | undefined, until: number) => shutdownStep(log, name, run, left(until));
        log.info({ graceMs: grace }, 'shutting down');
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await Promise.all([
          // Subscribers are told to reconnect (to another instance) at once, not at the end.
          step('websockets', () => wsHandle.close(left(drainedBy)), drainedBy),
          // Stops claiming at once; work in flight finishes or is handed back to other instances.
          step('engine', () => engine?.stop(left(drainedBy)), endBy),
          step('webhooks', () => relay?.stop(left(drainedBy)), endBy),
          step(
            'http',
            async () => {
              const cut = setTimeout(() => server.closeAllConnections(), left(drainedBy));
              await closed;
              clearTimeout(cut);
            },
            endBy,
          ),
        ]);
        // Side by side: a partner call still in flight (its step handed back) holds up none of the others.
        await Promise.all([
          step('apollo', () => apolloServer.stop(), endBy),
          step('partner connections', () => connector.close(), endBy),
          step('webhook connections', () => webhookSender.close(), endBy),
          step('pub/sub', () => bus.close(), endBy),
          step('shared limits', () => sharedState?.close(), endBy),
          step('call rates', () => pacing?.close(), endBy),
          step('shared offers', () => offerStore?.close(), endBy),
          step('sandbox', () => fleet?.stop(), endBy),
          step('database', () => database.close(), endBy),
        ]);
        phase = 'stopped';
        log.info({ ms: Date.now() - started }, 'stopped');
      })();
      return stopping;
    };

    return { url, port, auth, services, log, sandbox: sandbox?.fleet ?? null, engine, stop };
  } catch (e) {
    // Start-up failed part-way: release whatever was opened, then report.
    await ws?.close().catch(() => {});
    await sandbox?.stop().catch(() => {});
    await connector.close().catch(() => {});
    httpServer?.close();
    await apollo?.stop().catch(() => {});
    await pubsub?.close().catch(() => {});
    await shared?.close();
    await pacing?.close();
    await offerStore?.close();
    await database.close().catch(() => {});
    throw e;
  }
}

/** The HTTP server could not take its address: a message for whoever started it, with what to change. */
export class ListenError extends Error {
  override name = 'ListenError';
}

function listenError(err: Error, host: string, port: number): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch ((err as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return new ListenError(
        `port ${port} is already in use on ${host} (is another broker still running?); stop it, or pick another port, e.g. PORT=${port === 65535 ? 4001 : port + 1}`,
        { cause: err },
      );
    case 'EACCES':
      return new ListenError(`no permission to listen on ${where}; pick a port above 1023, e.g. PORT=4000`, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new ListenError(`HOST=${host} is not an address of this machine; use HOST=127.0.0.1 (this machine only) or HOST=0.0.0.0 (every interface)`, { cause: err });
    default:
      return err;
  }
}

/**
 * A request topic's message as of now, for its subscribers after a pub/sub outage: whatever they
 * missed leads to this state (they drop it when they have it already). Other topics: nothing.
 */
async function currentRequestMessage(db: Db, topic: string): Promise<unknown> {
  const prefix = requestTopic('');
  if (!topic.startsWith(prefix)) return null;
  const row = await findRequestById(db, topic.slice(prefix.length));
  return row && toSnapshotMessage(row);
}

/** The part of SHUTDOWN_GRACE_MS kept for closing pools and connections after work has drained (at most a quarter). */
const CLOSE_RESERVE_MS = 1_000;

/**
 * One step of a graceful stop, given at most `ms`: a step that fails or overruns is logged and
 * left behind, so the ones after it still run and the process still exits within its grace.
 */
async function shutdownStep(log: Logger, name: string, run: () => Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<'overrun'>((resolve) => (timer = setTimeout(() => resolve('overrun'), ms)));
  try {
    const outcome = await Promise.race([Promise.resolve().then(run), overrun]);
    if (outcome === 'overrun') log.warn({ step: name, ms }, 'shutdown step did not finish within the grace; left behind');
  } catch (err) {
    log.warn({ err, step: name }, 'shutdown step failed');
  } finally {
    clearTimeout(timer);
  }
}

/** The resolution engine and everything it drives, wired from configuration. */
function composeEngine(o: {
  config: Config;
  db: Db;
  requests: RequestService;
  directory: SellerDirectory;
  gates: SellerGates;
  metrics: Metrics;
  inventory: InventoryGuard;
  callRate: CallRateLimiter;
  pauses: SharedPauses | undefined;
  pubsub: PubSub;
  clock: Clock;
  log: Logger;
  connector: PartnerConnector;
  publicUrl: string;
  /** Redis: the offer cache and rounds are the fleet's. Null: this instance's alone. */
  offerStore: RedisOffers | null;
}): Engine {
  const { config, db, requests, directory, gates, metrics, inventory, callRate, pauses, pubsub, clock, connector } = o;
  const e = config.engine;
  const log = o.log.child({ component: 'engine' });
  const owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  // With Redis, a quote one instance received is a hit on every other, and a book has one round fleet-wide.
  const store = o.offerStore;
  const shared = store && new FleetOfferCache({ pubsub, shared: store, instance: owner, clock, log });
  const cache: OfferCache = shared ?? new MemoryOfferCache();
  // Renewed while the round runs: a dead leader's rounds are taken over within seconds, and never later than its requests.
  const fleet = store && shared ? new FleetRounds({ cache: shared, shared: store, instance: owner, leaseMs: Math.min(e.leaseMs, 5_000) }) : undefined;
  const stats = new SellerStats();
  // The one way every seller call is made — quotes, revalidations, orders, status checks.
  const pipeline = new SellerPipeline({ connector, gates, stats, globalConcurrency: e.globalConcurrency, metrics, callRate, pauses });
  const callbackUrl = (sellerId: string) => `${o.publicUrl}/partners/${sellerId}/callbacks`;
  let engine: Engine | null = null;
  const rounds = new RoundCoordinator({
    directory,
    pipeline,
    cache,
    stats,
    clock,
    log,
    improvementWindowMs: e.improvementWindowMs,
    maxSellersPerRound: e.maxSellersPerRound,
    callbackUrl,
    metrics,
    onOffersChanged: (bookKey) => void engine?.offersChanged(bookKey),
    fleet,
  });
  const driver = new AttemptDriver({
    db,
    requests,
    pipeline,
    gateway: new SandboxPaymentGateway(db, clock),
    cache,
    directory,
    clock,
    log,
    owner,
    leaseMs: e.leaseMs,
    unknownBackoffMs: e.orderRetryBackoffMs,
    inlineRetries: e.orderInlineRetries,
    attentionAfterTries: e.orderAttentionAfterTries,
    metrics,
  });
  const ordering = new OrderingService({
    db,
    requests,
    driver,
    pipeline,
    inventory,
    gates,
    cache,
    directory,
    clock,
    owner,
    callbackUrl,
    awaitQuote: (ref, ms, since) => rounds.waitForQuote(ref, ms, undefined, since),
    metrics,
  });
  engine = new Engine({
    db,
    requests,
    rounds,
    ordering,
    driver,
    directory,
    cache,
    pubsub,
    clock,
    log,
    owner,
    config: {
      pollMs: e.pollMs,
      maxActive: e.maxActive,
      leaseMs: e.leaseMs,
      recheckBaseMs: e.recheckBaseMs,
      recheckMaxMs: e.recheckMaxMs,
      reconcileIntervalMs: e.reconcileIntervalMs,
    },
    metrics,
  });
  return engine;
}

/** Counts outcomes and creation-to-outcome time from committed request changes. */
function countOutcome(metrics: Metrics, row: RequestRow, change: Change): void {
  if (change.type === 'CREATED') metrics.requestsCreated.inc();
  if (!change.to) return;
  if (change.to === 'QUOTED' || change.to === 'OUT_OF_STOCK' || isTerminal(change.to)) metrics.outcomes.inc({ status: change.to });
  // A search ending QUOTED or OUT_OF_STOCK is an outcome the user sees; a new best price while QUOTED is not.
  const settled = (change.to === 'QUOTED' || change.to === 'OUT_OF_STOCK') && change.type === change.to;
  if (settled || isTerminal(change.to)) metrics.resolution.observe({ status: change.to }, (row.updatedAt.getTime() - row.createdAt.getTime()) / 1000);
}

/** Gauges read at scrape time: queue lag, work in flight, subscriptions, breakers, attention. */
function registerGauges(
  metrics: Metrics,
  o: { db: Db; clock: Clock; engine: Engine | null; gates: SellerGates | null; sellers: SellerService; ws: WsHandle; pubsub: PubSub },
): void {
  metrics.gauge('broker_queue_lag_seconds', 'Age of the oldest due request nobody is working on', async () => {
    const now = o.clock.now();
    const oldest = await oldestDue(o.db, now);
    return oldest ? Math.max(0, (now.getTime() - oldest.getTime()) / 1000) : 0;
  });
  metrics.gauge('broker_rounds_in_flight', 'Rounds of quotes running on this instance', () => o.engine?.roundsInFlight() ?? 0);
  metrics.gauge('broker_requests_active', 'Requests this instance is searching or ordering for', () => o.engine?.activeCount() ?? 0);
  metrics.gauge('broker_websocket_connections', 'GraphQL WebSocket connections', () => o.ws.clients());
  // Request topics only: the engine's own subscriptions (signals, quotes, fleet offers) are not users'.
  metrics.gauge('broker_subscriptions', 'Live request subscriptions on this instance', () => o.pubsub.size(requestTopic('')));
  metrics.gauge('broker_attempts_needing_attention', 'Unfinished order attempts flagged for an operator', async () => (await attemptsNeedingAttention(o.db)).length);
  metrics.labelledGauge('broker_dead_letters_open', 'Dead letters not yet resolved (re-driven or dismissed), by kind', 'kind', () => countOpenDeadLetters(o.db));
  metrics.gauge('broker_webhook_outbox_lag_seconds', 'How long the oldest claimable webhook delivery has been due', () => webhookOutboxLagSeconds(o.db, o.clock.now()));
  metrics.labelledGauge('broker_breaker_state', 'Seller circuit breakers: 0 closed, 1 half-open, 2 open', 'seller', async () => {
    const gates = o.gates;
    if (!gates) return [];
    const code = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 } as const;
    return (await o.sellers.list()).flatMap((s) => {
      const gate = gates.peek(s.id);
      return gate ? [[s.name, code[gate.health().breaker]] as [string, number]] : [];
    });
  });
}
