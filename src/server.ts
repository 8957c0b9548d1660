import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { Config } from './config.js';
import { type Database, openDatabase } from './db/client.js';
import { type Clock, systemClock } from './engine/clock.js';
import { assertLifecycleValid } from './engine/lifecycle.js';
import { RequestService } from './engine/requests.js';
import { SellerService } from './engine/sellers.js';
import { Auth } from './http/auth.js';
import { makeErrorFormatter } from './http/errors.js';
import { createHttpHandler } from './http/routes.js';
import { type WsHandle, attachGraphQLWs } from './http/ws.js';
import { MemoryPubSub, type PubSub } from './infra/pubsub.js';
import { RedisPubSub } from './infra/redis-pubsub.js';
import { type Logger, createLogger } from './logger.js';
import type { Context, Services } from './resolvers/context.js';
import { buildSchema } from './schema/index.js';

export const GRAPHQL_PATH = '/graphql';

export interface StartOptions {
  log?: Logger;
  clock?: Clock;
  /** Sees every SQL statement (tests count queries to catch N+1 patterns). */
  onQuery?: (sql: string) => void;
}

export interface App {
  readonly url: string;
  readonly port: number;
  readonly auth: Auth;
  readonly services: Services;
  readonly log: Logger;
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
    onQuery: options.onQuery,
  });
  let pubsub: PubSub | undefined;
  let httpServer: Server | undefined;
  let ws: WsHandle | undefined;
  let apollo: ApolloServer<Context> | undefined;
  try {
    await database.migrate();
    if (config.redisUrl) {
      const redis = new RedisPubSub(config.redisUrl);
      pubsub = redis;
      await redis.ready();
    } else {
      pubsub = new MemoryPubSub();
    }
    const db = database.db;
    const services: Services = {
      db,
      pubsub,
      requests: new RequestService({ db, pubsub, clock, limits: { maxHorizonMs: config.maxExpiryHorizonMs } }),
      sellers: new SellerService({ db, clock, sellerUrls: config.sellerUrls }),
    };
    const auth = new Auth(config.jwtSecret);
    const schema = buildSchema();
    const formatError = makeErrorFormatter(log);

    apollo = new ApolloServer<Context>({
      schema,
      formatError,
      includeStacktraceInErrorResponses: false,
      introspection: config.introspection,
      csrfPrevention: true,
      plugins: [ApolloServerPluginLandingPageDisabled()],
      logger: log.child({ component: 'apollo' }),
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
      }),
    );
    httpServer = server;
    ws = attachGraphQLWs({
      server,
      path: GRAPHQL_PATH,
      schema,
      services,
      auth,
      log,
      formatError,
      validationRules: [],
      connectionInitTimeoutMs: config.wsConnectionInitTimeoutMs,
      maxPayloadBytes: config.wsMaxPayloadBytes,
    });

    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}`;
    log.info({ url, storage: database.kind, pubsub: config.redisUrl ? 'redis' : 'memory' }, 'server listening');

    let phase: Phase = 'running';
    let stopping: Promise<void> | undefined;
    const wsHandle = ws;
    const apolloServer = apollo;
    const bus = pubsub;
    const stop = () => {
      if (phase !== 'running') return stopping!;
      phase = 'stopping';
      stopping = (async () => {
        log.info('shutting down');
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await wsHandle.close();
        await bus.close();
        const grace = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
        await closed;
        clearTimeout(grace);
        await apolloServer.stop();
        await database.close();
        phase = 'stopped';
        log.info('stopped');
      })();
      return stopping;
    };

    return { url, port, auth, services, log, stop };
  } catch (e) {
    // Start-up failed part-way: release whatever was opened, then report.
    await ws?.close().catch(() => {});
    httpServer?.close();
    await apollo?.stop().catch(() => {});
    await pubsub?.close().catch(() => {});
    await database.close().catch(() => {});
    throw e;
  }
}
