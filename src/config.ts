import { ManifestError, TrustedDocuments } from './http/trusted-documents.js';

/**
 * All configuration, read from the environment in this one module; defaults live here.
 * Everything else receives the typed object.
 */
export interface Config {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  /** Prefix of every Redis key and channel: deployments (or test runs) sharing a Redis stay apart. */
  redisPrefix: string;
  /** Undefined: generate one per process and print ready-made tokens (embedded default). */
  jwtSecret: string | undefined;
  sandbox: 'auto' | 'on' | 'off';
  logLevel: string;
  /** OTEL_EXPORTER_OTLP_ENDPOINT: traces are exported there (OTLP/HTTP); unset, tracing is off and costs nothing. */
  otlpEndpoint: string | undefined;
  /** OTEL_SERVICE_NAME, the traces' service name. */
  otelServiceName: string;
  sellerUrls: 'any' | 'public';
  /** Webhook endpoint URLs: `public` = https to public addresses only, checked at every connection; `any` = also http, any host. */
  webhookUrls: 'any' | 'public';
  webhooks: {
    pollMs: number;
    /** Deliveries being sent from one instance at once, and per endpoint across the fleet. */
    maxInFlight: number;
    perEndpoint: number;
    /** Sockets one instance keeps to one receiving host (many users' endpoints may share one). */
    connectionsPerOrigin: number;
    /** A receiver's whole answer must come within this (API.md: 10 s). */
    timeoutMs: number;
    /** First retry's delay (halved to doubled by jitter), doubling up to the maximum. */
    retryBaseMs: number;
    retryMaxMs: number;
    /** Retried for this long, then dead-lettered. */
    retryWindowMs: number;
    /** Consecutive failures that pause an endpoint until its next retry is due. */
    breakerAfter: number;
    /** Delivered outbox rows are deleted this long after delivery (dead letters are kept). */
    retentionMs: number;
    /** How often each instance sweeps, and the most rows one delete takes. */
    sweepEveryMs: number;
    sweepBatch: number;
  };
  /** Farthest request deadline accepted, from now. */
  maxExpiryHorizonMs: number;
  /** Largest HTTP request body accepted. */
  bodyLimitBytes: number;
  /** graphql-ws: time a client has to send connection_init. */
  wsConnectionInitTimeoutMs: number;
  /** graphql-ws: largest WebSocket message accepted. */
  wsMaxPayloadBytes: number;
  /** How long shutdown waits for in-flight HTTP requests before closing them. */
  shutdownGraceMs: number;
  /**
   * How far the old generation grows past what survived the last full collection before the next
   * one, in percent: V8's factor replaced by 1 + this/100, in every mode. Null leaves V8's own
   * factor (1.1× to 4×, by how fast it collects and how short memory is).
   */
  heapGrowthPercent: number | null;
  /** Database connection pool size (Postgres). */
  dbPoolSize: number;
  /** Named prepared statements on a Postgres server; off only behind a pooler that cannot keep them. */
  dbPreparedStatements: boolean;
  /** The planner's `random_page_cost` for the broker's sessions; null leaves the server's own. */
  dbRandomPageCost: number | null;
  /** Serve schema introspection (the playground needs it). */
  introspection: boolean;
  /** Hide field suggestions ("Did you mean …?") in errors. */
  hideSchemaDetails: boolean;
  queryLimits: { maxDepth: number; maxAliases: number; maxDirectives: number; maxTokens: number; maxCost: number };
  /** WebSocket: subscriptions at once on one connection, and connections at once per user. */
  wsMaxSubscriptionsPerConnection: number;
  wsMaxConnectionsPerUser: number;
  /** Browser origins allowed to open WebSockets; empty = any (non-browser clients send none). */
  allowedOrigins: string[];
  /**
   * TRUSTED_DOCUMENTS: a persisted-documents manifest read at boot; when set, both transports run
   * only its documents (by id, or their exact text). Unset: any operation.
   */
  trustedDocuments: TrustedDocuments | undefined;
  /** PENDING requests beyond which new ones are refused with OVERLOADED. */
  maxBacklog: number;
  /** The retry hint given with OVERLOADED. */
  overloadedRetryAfterMs: number;
  /** Mutations per user: sustained rate and burst (each root mutation field costs one). */
  rateLimitPerMinute: number;
  rateLimitBurst: number;
  /** Where partners reach this server (callback URLs); defaults to the listen address. */
  publicUrl: string | undefined;
  /** Most keep-alive connections the partner connector opens to one seller origin (default: the engine's global concurrency). */
  connectionsPerOrigin: number;
  sandboxPort: number;
  sandboxSeed: number;
  /** Multiplies the sandbox sellers' simulated latencies (0: answer at once). */
  sandboxLatencyScale: number;
  engine: {
    enabled: boolean;
    pollMs: number;
    maxActive: number;
    leaseMs: number;
    /** Seller calls in flight at once across all sellers (each seller also has its own cap). */
    globalConcurrency: number;
    /** After the first valid offer, how long calls in flight may still beat it (0: pure early exit). */
    improvementWindowMs: number;
    /** The most sellers one round hears from (cached answers first); the rest are asked first by the book's next round. */
    maxSellersPerRound: number;
    recheckBaseMs: number;
    recheckMaxMs: number;
    reconcileIntervalMs: number;
    /** Waits before re-checking an order whose outcome is unknown, one per try; the last repeats. */
    orderRetryBackoffMs: number[];
    orderInlineRetries: number;
    orderAttentionAfterTries: number;
    /** Where each seller's adaptive concurrency limit starts (it grows up to the seller's maxConcurrency). */
    sellerInitialConcurrency: number;
    /** Consecutive failed calls that open a seller's circuit breaker. */
    breakerThreshold: number;
    /** Wait before an open breaker lets one probe call through (again after each failed probe). */
    breakerHalfOpenMs: number;
  };
}

type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === 'production';
  const globalConcurrency = int(env, 'ENGINE_GLOBAL_CONCURRENCY', 512, 1, 100_000);
  return {
    port: int(env, 'PORT', 4000, 0, 65535),
    host: env.HOST || '127.0.0.1',
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: env.DATA_DIR || './.data',
    redisUrl: env.REDIS_URL || undefined,
    redisPrefix: env.REDIS_PREFIX || 'broker:',
    jwtSecret: env.JWT_SECRET || undefined,
    sandbox: oneOf(env, 'SANDBOX', ['auto', 'on', 'off'] as const, 'auto'),
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
    otelServiceName: env.OTEL_SERVICE_NAME || 'book-purchase-broker',
    sellerUrls: oneOf(env, 'SELLER_URLS', ['any', 'public'] as const, 'any'),
    webhookUrls: oneOf(env, 'WEBHOOK_URLS', ['any', 'public'] as const, production ? 'public' : 'any'),
    webhooks: {
      pollMs: int(env, 'WEBHOOK_POLL_MS', 500, 10, 60_000),
      maxInFlight: int(env, 'WEBHOOK_MAX_IN_FLIGHT', 256, 1, 10_000),
      perEndpoint: int(env, 'WEBHOOK_CONCURRENCY_PER_ENDPOINT', 4, 1, 1_000),
      connectionsPerOrigin: int(env, 'WEBHOOK_CONNECTIONS_PER_ORIGIN', 64, 1, 10_000),
      timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 10_000),
      retryBaseMs: int(env, 'WEBHOOK_RETRY_BASE_MS', 5_000, 1, 3_600_000),
      retryMaxMs: int(env, 'WEBHOOK_RETRY_MAX_MS', 4 * 3_600_000, 1, 86_400_000),
      retryWindowMs: int(env, 'WEBHOOK_RETRY_WINDOW_MS', 25 * 3_600_000, 1, 30 * 86_400_000),
      breakerAfter: int(env, 'WEBHOOK_BREAKER_AFTER', 5, 1, 1_000),
      retentionMs: int(env, 'WEBHOOK_RETENTION_HOURS', 72, 1, 24 * 366) * 3_600_000,
      sweepEveryMs: int(env, 'WEBHOOK_SWEEP_INTERVAL_MS', 300_000, 1_000, 86_400_000),
      sweepBatch: int(env, 'WEBHOOK_SWEEP_BATCH', 1_000, 1, 100_000),
    },
    maxExpiryHorizonMs: int(env, 'MAX_EXPIRY_HORIZON_HOURS', 24 * 30, 1, 24 * 366) * 3_600_000,
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 1_048_576, 1024, 64 * 1_048_576),
    wsConnectionInitTimeoutMs: int(env, 'WS_CONNECTION_INIT_TIMEOUT_MS', 5000, 100, 60_000),
    wsMaxPayloadBytes: int(env, 'WS_MAX_PAYLOAD_BYTES', 65_536, 1024, 16 * 1_048_576),
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 10_000, 0, 300_000),
    heapGrowthPercent: heapGrowth(env),
    dbPoolSize: int(env, 'DB_POOL_SIZE', 10, 1, 1000),
    dbPreparedStatements: bool(env, 'DB_PREPARED_STATEMENTS', true),
    dbRandomPageCost: env.DB_RANDOM_PAGE_COST === 'server' ? null : num(env, 'DB_RANDOM_PAGE_COST', 1.1, 0.1, 100),
    introspection: bool(env, 'INTROSPECTION', !production),
    hideSchemaDetails: bool(env, 'HIDE_SCHEMA_DETAILS', production),
    queryLimits: {
      maxDepth: int(env, 'QUERY_MAX_DEPTH', 12, 1, 1000),
      maxAliases: int(env, 'QUERY_MAX_ALIASES', 30, 0, 10_000),
      maxDirectives: int(env, 'QUERY_MAX_DIRECTIVES', 20, 0, 10_000),
      maxTokens: int(env, 'QUERY_MAX_TOKENS', 5_000, 10, 1_000_000),
      maxCost: int(env, 'QUERY_MAX_COST', 50_000, 1, 100_000_000),
    },
    wsMaxSubscriptionsPerConnection: int(env, 'WS_MAX_SUBSCRIPTIONS_PER_CONNECTION', 100, 1, 100_000),
    wsMaxConnectionsPerUser: int(env, 'WS_MAX_CONNECTIONS_PER_USER', 20, 1, 100_000),
    allowedOrigins: (env.ALLOWED_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean),
    trustedDocuments: manifest(env, 'TRUSTED_DOCUMENTS'),
    maxBacklog: int(env, 'MAX_BACKLOG', 10_000, 1, 10_000_000),
    overloadedRetryAfterMs: int(env, 'OVERLOADED_RETRY_AFTER_MS', 2_000, 1, 3_600_000),
    rateLimitPerMinute: int(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 10_000_000),
    rateLimitBurst: int(env, 'RATE_LIMIT_BURST', 120, 1, 10_000_000),
    publicUrl: env.PUBLIC_URL || undefined,
    // As many as the engine may have calls in flight: with fewer, calls to sellers that share an
    // origin would wait for a socket inside the HTTP client, timed (and held to their timeout) as
    // if the seller were slow, while their own limits counted them as sent.
    connectionsPerOrigin: int(env, 'PARTNER_CONNECTIONS_PER_ORIGIN', globalConcurrency, 1, 100_000),
    sandboxPort: int(env, 'SANDBOX_PORT', 0, 0, 65535),
    sandboxSeed: int(env, 'SANDBOX_SEED', 1, 0, 2 ** 31),
    sandboxLatencyScale: num(env, 'SANDBOX_LATENCY_SCALE', 1, 0, 100),
    engine: {
      enabled: bool(env, 'ENGINE', true),
      pollMs: int(env, 'ENGINE_POLL_MS', 500, 10, 60_000),
      maxActive: int(env, 'ENGINE_MAX_ACTIVE', 1024, 1, 100_000),
      leaseMs: int(env, 'ENGINE_LEASE_MS', 15_000, 200, 600_000),
      globalConcurrency,
      improvementWindowMs: int(env, 'IMPROVEMENT_WINDOW_MS', 30, 0, 60_000),
      maxSellersPerRound: int(env, 'ROUND_MAX_SELLERS', 16, 1, 1_000_000),
      recheckBaseMs: int(env, 'RECHECK_INTERVAL_MS', 60_000, 10, 86_400_000),
      recheckMaxMs: int(env, 'RECHECK_MAX_MS', 30 * 60_000, 10, 86_400_000),
      reconcileIntervalMs: int(env, 'RECONCILE_INTERVAL_MS', 2_000, 10, 3_600_000),
      orderRetryBackoffMs: intList(env, 'ORDER_RETRY_BACKOFF_MS', [250, 1_000, 5_000, 30_000, 120_000]),
      orderInlineRetries: int(env, 'ORDER_INLINE_RETRIES', 2, 0, 20),
      orderAttentionAfterTries: int(env, 'ORDER_ATTENTION_AFTER_TRIES', 10, 1, 10_000),
      sellerInitialConcurrency: int(env, 'SELLER_INITIAL_CONCURRENCY', 16, 1, 100_000),
      breakerThreshold: int(env, 'BREAKER_THRESHOLD', 5, 1, 1_000),
      breakerHalfOpenMs: int(env, 'BREAKER_HALF_OPEN_MS', 2_000, 10, 3_600_000),
    },
  };
}

function manifest(env: Env, name: string): TrustedDocuments | undefined {
  const path = env[name];
  if (path === undefined || path === '') return undefined;
  try {
    return TrustedDocuments.fromFile(path);
  } catch (e) {
    if (e instanceof ManifestError) throw new ConfigError(`${name} must name a persisted-documents manifest (JSON: document id → text): ${e.message}`, { cause: e });
    throw e;
  }
}

function num(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function intList(env: Env, name: string, fallback: number[]): number[] {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const list = raw.split(',').map((x) => Number(x.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 0 || n > 86_400_000)) {
    throw new ConfigError(`${name} must be a comma-separated list of milliseconds, got ${JSON.stringify(raw)}`);
  }
  return list;
}

function heapGrowth(env: Env): number | null {
  const raw = env.HEAP_GROWTH_PERCENT;
  if (raw === 'v8') return null;
  try {
    // Embedded, Postgres lives in this process too (its WASM heap, its compiled code): the
    // JavaScript heap gets the smaller share of the memory (README, Configuration).
    return int(env, 'HEAP_GROWTH_PERCENT', env.DATABASE_URL ? 50 : 30, 10, 300);
  } catch {
    throw new ConfigError(`HEAP_GROWTH_PERCENT must be an integer from 10 to 300, or v8 (V8's own factor), got ${JSON.stringify(raw)}`);
  }
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if ((allowed as readonly string[]).includes(raw)) return raw as T;
  throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
}
