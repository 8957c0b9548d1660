import { pino } from 'pino';
import { relative } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { ConfigError, loadConfig } from './config.js';
import { DataDirError, jwtSecretPath, prepareDataDir, readJwtSecret, saveJwtSecret, usesDataDir } from './data-dir.js';
import { Auth } from './http/auth.js';
import { createLogger } from './logger.js';
import { GRAPHQL_PATH, ListenError, startServer } from './server.js';

/** Past SHUTDOWN_GRACE_MS, how long a stop may still take before the process exits anyway. */
const SHUTDOWN_OVERRUN_MS = 2_000;

/** `npm start`: run the server from the environment; the embedded default needs no setup at all. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`configuration error: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  // V8 lets the old generation grow to up to 4× what survived its last full collection before it
  // collects again: under load the broker's 70–90 MB live became 200+ MB of heap and 450+ MB of
  // RSS. Half again is enough room: in the full benchmark the peak RSS fell from 433 to 255 MB
  // for about 15% more broker CPU per request (README, Benchmark); `v8` makes the other trade.
  // Embedded, where PGlite's memory shares the process, the default is 30%.
  // V8 reads the flag at each collection, so setting it here, before the server starts, holds
  // for the whole process.
  if (config.heapGrowthPercent !== null) setFlagsFromString(`--heap-growing-percent=${config.heapGrowthPercent}`);
  // Lines written as they are logged, not by pino's default asynchronous writer: `process.exit`
  // with one of its writes in flight loses or reorders the last lines ("stopped" among them).
  // At the default level the broker logs a handful of lines, none per request.
  const log = createLogger(config.logLevel, pino.destination({ dest: 1, sync: true }));
  // JWT_SECRET unset: the embedded default makes its own, and keeps it in DATA_DIR so the tokens
  // it prints survive restarts. With DATABASE_URL (a deployment) or an in-memory database there
  // is no folder of ours: a per-process secret, as before.
  let secret: { kind: 'saved' | 'new' | 'process'; value: string } | null = null;
  try {
    if (usesDataDir(config)) prepareDataDir(config.dataDir);
    if (!config.jwtSecret) {
      const saved = usesDataDir(config) ? readJwtSecret(config.dataDir) : null;
      secret = saved ? { kind: 'saved', value: saved } : { kind: usesDataDir(config) ? 'new' : 'process', value: Auth.generateSecret() };
      config = { ...config, jwtSecret: secret.value };
    }
  } catch (e) {
    if (e instanceof DataDirError) cannotStart(e.message);
    throw e;
  }

  // Loaded only when asked for: without it, @opentelemetry/api's spans are no-ops.
  const tracing = config.otlpEndpoint ? (await import('./infra/otel-sdk.js')).startTracing({ serviceName: config.otelServiceName }) : null;
  if (tracing) log.info({ endpoint: config.otlpEndpoint }, 'exporting traces over OTLP');

  const app = await startServer(config, { log }).catch((e: unknown) => {
    if (e instanceof ListenError) cannotStart(e.message);
    throw e;
  });

  if (secret) {
    let kept = secret.kind === 'saved';
    if (secret.kind === 'new') {
      // Only now: PGlite sets up a fresh database only in an empty folder.
      try {
        saveJwtSecret(config.dataDir, secret.value);
        kept = true;
      } catch (e) {
        log.warn({ err: e }, 'could not save the generated JWT secret: the tokens below last until this process exits');
      }
    }
    const path = jwtSecretPath(config.dataDir);
    const shown = relative(process.cwd(), path);
    const file = shown.startsWith('..') ? path : shown;
    const about = kept
      ? [
          `  JWT_SECRET is unset, so the broker made a secret of its own, kept in ${file}:`,
          '  these tokens (valid 7 days) keep working across restarts. Delete that file to revoke them',
          '  all, or set JWT_SECRET to use your own. In the playground, paste one into the Headers tab',
          '  as {"Authorization": "Bearer <token>"}.',
        ]
      : ['  JWT_SECRET is unset, so this process made its own. Tokens valid until it exits:'];
    const auth = app.auth;
    const [user, admin] = await Promise.all([auth.issue('demo-user', 'user'), auth.issue('demo-admin', 'admin')]);
    process.stdout.write(
      [
        '',
        `  Book purchase broker on ${app.url}`,
        `  Playground:   ${app.url}/`,
        `  GraphQL:      ${app.url}${GRAPHQL_PATH}  (WebSocket: ${app.url.replace(/^http/, 'ws')}${GRAPHQL_PATH})`,
        '',
        ...about,
        `  user  (sub=demo-user):  ${user}`,
        `  admin (sub=demo-admin): ${admin}`,
        '',
        '',
      ].join('\n'),
    );
  }

  // SIGTERM (a rolling deploy) or SIGINT: stop taking work, finish or hand back what is in
  // flight, exit 0 within SHUTDOWN_GRACE_MS. A second signal exits at once.
  const graceMs = config.shutdownGraceMs;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting without finishing the shutdown');
      process.exit(1);
    }
    log.info({ signal, graceMs }, 'signal received');
    // Work cut off at the end of the grace may fail on its way out (its pools closed under it):
    // that is the shutdown working, not a crash that should turn the exit code to 1.
    process.on('unhandledRejection', (err: unknown) => log.warn({ err }, 'work cut off by the shutdown failed'));
    // Every step of the stop is bounded; this only guards against one that is not.
    setTimeout(() => {
      log.error({ graceMs }, 'shutdown did not finish within its grace; exiting');
      process.exit(1);
    }, graceMs + SHUTDOWN_OVERRUN_MS).unref();
    app
      .stop()
      // The last spans are flushed, but never for longer than a second.
      .then(() => tracing && Promise.race([tracing.shutdown().catch(() => {}), new Promise((r) => setTimeout(r, 1_000).unref())]))
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** A start-up problem the person starting the broker can fix: one line saying how, no stack. */
function cannotStart(message: string): never {
  console.error(`cannot start: ${message}`);
  process.exit(2);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
