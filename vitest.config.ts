import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

// Unit tests sit beside the code (src/**/x.test.ts); end-to-end suites that start the real server
// live in test/. With TEST_DATABASE_URL set, every suite runs against that Postgres server
// (a fresh database per test file) instead of embedded PGlite, and with TEST_REDIS_URL against
// Redis pub/sub; test/services/ holds the suites that only make sense with real shared services
// (several instances on one database), so they run in that mode only.
const services = Boolean(process.env.TEST_DATABASE_URL);
export default defineConfig({
  resolve: {
    // graphql 16 has no `exports` map: Node loads its CommonJS build for the libraries, while
    // Vite would hand our own code the .mjs build — two graphql realms that refuse each other's
    // schemas. Point our code at the same build Node uses, as it is under `npm start`.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['src/**/*.test.ts', 'test/*.test.ts', 'test/browser/*.test.ts', ...(services ? ['test/services/**/*.test.ts'] : [])],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
