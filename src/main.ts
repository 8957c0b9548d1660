import { ConfigError, loadConfig } from './config.js';
import { Auth } from './http/auth.js';
import { createLogger } from './logger.js';
import { GRAPHQL_PATH, startServer } from './server.js';

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
  const log = createLogger(config.logLevel);
  const generatedSecret = !config.jwtSecret;
  if (generatedSecret) config = { ...config, jwtSecret: Auth.generateSecret() };

  const app = await startServer(config, { log });

  if (generatedSecret) {
    // Only for the embedded default: a per-process secret, so these tokens die with the process.
    const auth = app.auth;
    const [user, admin] = await Promise.all([auth.issue('demo-user', 'user'), auth.issue('demo-admin', 'admin')]);
    process.stdout.write(
      [
        '',
        `  Book purchase broker on ${app.url}`,
        `  Playground:   ${app.url}/`,
        `  GraphQL:      ${app.url}${GRAPHQL_PATH}  (WebSocket: ${app.url.replace(/^http/, 'ws')}${GRAPHQL_PATH})`,
        '',
        '  JWT_SECRET is unset, so this process made its own. Tokens valid until it exits:',
        `  user  (sub=demo-user):  ${user}`,
        `  admin (sub=demo-admin): ${admin}`,
        '',
        '',
      ].join('\n'),
    );
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(1);
    log.info({ signal }, 'signal received');
    app.stop().then(
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

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
