import { defineConfig } from 'drizzle-kit';

// Migrations are generated from src/db/schema.ts and applied at start-up, unchanged, on both
// embedded PGlite and Postgres (src/db/client.ts).
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './src/db/migrations',
});
