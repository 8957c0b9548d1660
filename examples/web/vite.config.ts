import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** Where the dev server sends /graphql (HTTP and WebSocket): a broker started with `npm start`. */
export const BROKER_URL = process.env.BROKER_URL ?? 'http://127.0.0.1:4000';

// `npm run web`: the app and the broker look like one origin to the browser, so it needs no CORS
// and the broker's ALLOWED_ORIGINS sees the page's own origin on the WebSocket.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  server: {
    proxy: { '/graphql': { target: BROKER_URL, ws: true } },
  },
  // Bundled up front: discovering them on the first page load would reload the page once.
  optimizeDeps: { include: ['graphql', 'graphql-ws'] },
});
