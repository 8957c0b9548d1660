/**
 * Webhook receiver for the outbox-cost phase: answers every POST with 204 once its body is read
 * (a receiver that takes everything at once, so only the broker's own cost is measured) and
 * counts them; GET /stats answers `{"received": n}`. Prints `{"url": …}` once listening.
 */
import { createServer } from 'node:http';
import { serveUntilStopped } from './lifecycle.js';

let received = 0;
const http = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ received }));
    return;
  }
  req.resume();
  req.on('end', () => {
    if (req.method === 'POST') received += 1;
    res.writeHead(req.method === 'POST' ? 204 : 404);
    res.end();
  });
});
http.keepAliveTimeout = 30_000;

await serveUntilStopped(http, () => http.closeAllConnections());
