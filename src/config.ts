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
  /** Undefined: generate one per process and print ready-made tokens (embedded default). */
  jwtSecret: string | undefined;
  sandbox: 'auto' | 'on' | 'off';
  logLevel: string;
  sellerUrls: 'any' | 'public';
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
  /** Database connection pool size (Postgres). */
  dbPoolSize: number;
  /** Serve schema introspection (the playground needs it). */
  introspection: boolean;
}

type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === 'production';
  return {
    port: int(env, 'PORT', 4000, 0, 65535),
    host: env.HOST || '127.0.0.1',
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: env.DATA_DIR || './.data',
    redisUrl: env.REDIS_URL || undefined,
    jwtSecret: env.JWT_SECRET || undefined,
    sandbox: oneOf(env, 'SANDBOX', ['auto', 'on', 'off'] as const, 'auto'),
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    sellerUrls: oneOf(env, 'SELLER_URLS', ['any', 'public'] as const, 'any'),
    maxExpiryHorizonMs: int(env, 'MAX_EXPIRY_HORIZON_HOURS', 24 * 30, 1, 24 * 366) * 3_600_000,
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 1_048_576, 1024, 64 * 1_048_576),
    wsConnectionInitTimeoutMs: int(env, 'WS_CONNECTION_INIT_TIMEOUT_MS', 5000, 100, 60_000),
    wsMaxPayloadBytes: int(env, 'WS_MAX_PAYLOAD_BYTES', 65_536, 1024, 16 * 1_048_576),
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 10_000, 0, 300_000),
    dbPoolSize: int(env, 'DB_POOL_SIZE', 10, 1, 1000),
    introspection: bool(env, 'INTROSPECTION', !production),
  };
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
