/**
 * Reference: a raw `ws` server that broadcasts one message to every connected client when told
 * to (POST /broadcast?rev=N) — the floor for subscription fan-out on this machine. The message has
 * the shape and size of the broker's graphql-ws `next` message for the same subscription.
 * Prints `{"url": …}` once listening.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { serveUntilStopped } from './lifecycle.js';

const clients = new Set<WebSocket>();
const http = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://ref');
  if (req.method === 'POST' && url.pathname === '/broadcast') {
    const rev = Number(url.searchParams.get('rev') ?? '0');
    const id = url.searchParams.get('id') ?? '00000000-0000-0000-0000-000000000000';
    const message = JSON.stringify({
      id: '1',
      type: 'next',
      payload: { data: { purchaseRequestUpdated: { id, status: 'OUT_OF_STOCK', revision: rev } } },
    });
    for (const ws of clients) ws.send(message);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ sent: clients.size }));
    return;
  }
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ server: http });
wss.on('connection', (ws) => {
  clients.add(ws);
  ws.on('close', () => clients.delete(ws));
  ws.on('error', () => clients.delete(ws));
});

await serveUntilStopped(http, () => {
  for (const ws of clients) ws.terminate();
  wss.close();
});
