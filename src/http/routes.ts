import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ApolloServer, HeaderMap } from '@apollo/server';
import type { Logger } from 'pino';
import type { Database } from '../db/client.js';
import { type Context, type Services, makeContext } from '../resolvers/context.js';
import type { Auth } from './auth.js';
import { servePlayground, servePlaygroundAsset } from './playground.js';
import type { CallbackReceiver } from '../partners/callbacks.js';
import type { Metrics } from '../infra/metrics.js';
import { context, propagation } from '@opentelemetry/api';
import { inSpan } from '../infra/tracing.js';

export interface HttpDeps {
  apollo: ApolloServer<Context>;
  services: Services;
  database: Database;
  auth: Auth;
  log: Logger;
  bodyLimitBytes: number;
  callbacks: CallbackReceiver;
  metrics: Metrics;
}

const CALLBACK_PATH = /^\/partners\/([0-9a-fA-F-]{36})\/callbacks$/;

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** The one HTTP entry point: GraphQL over HTTP, health and readiness. */
export function createHttpHandler(d: HttpDeps) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    route(d, req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        sendJson(res, err.status, { errors: [{ message: err.message, extensions: { code: err.code } }] });
        return;
      }
      d.log.error({ err }, 'unhandled error in HTTP handler');
      if (!res.headersSent) sendJson(res, 500, { errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      else res.destroy();
    });
  };
}

async function route(d: HttpDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const method = req.method ?? 'GET';
  switch (url.pathname) {
    case '/healthz':
      return sendJson(res, 200, { status: 'ok' });
    case '/metrics': {
      const { contentType, body } = await d.metrics.render();
      res.writeHead(200, { 'content-type': contentType });
      res.end(body);
      return;
    }
    case '/readyz': {
      const ready = await d.database.ready();
      return ready.ok ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready', reason: ready.reason });
    }
    case '/':
    case '/graphql':
      if ((method === 'GET' || method === 'HEAD') && wantsHtml(req)) return servePlayground(req, res);
      if (url.pathname === '/') return sendJson(res, 404, { error: 'not found' });
      return graphql(d, req, res, method, url.search);
    default:
      if (CALLBACK_PATH.test(url.pathname)) {
        if (method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });
        const sellerId = CALLBACK_PATH.exec(url.pathname)![1]!.toLowerCase();
        const raw = await readRaw(req, d.bodyLimitBytes);
        const header = req.headers['x-signature'];
        const reply = await d.callbacks.receive(sellerId, Array.isArray(header) ? header[0] : header, raw);
        return sendJson(res, reply.status, reply.body);
      }
      if (url.pathname.startsWith('/playground/') && (method === 'GET' || method === 'HEAD')) {
        if (servePlaygroundAsset(url.pathname.slice('/playground/'.length), req, res)) return;
      }
      return sendJson(res, 404, { error: 'not found' });
  }
}

async function graphql(d: HttpDeps, req: IncomingMessage, res: ServerResponse, method: string, search: string) {
  // Every answer is one viewer's data, a mutation's outcome or an error about them: no cache may
  // keep it. Set first, so the refusals sent before Apollo (413, unreadable JSON) carry it too.
  res.setHeader('cache-control', 'no-store');
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const body = method === 'POST' ? await readBody(req, d.bodyLimitBytes, headers.get('content-type')) : undefined;
  // The operation's span (named by the operationTracing plugin), continuing the caller's trace if it sent one.
  const response = await inSpan(
    'graphql',
    { 'http.request.method': method.toUpperCase() },
    () =>
      d.apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: method.toUpperCase(), headers, search, body },
        context: async () => makeContext(d.services, await d.auth.viewerFrom(req.headers.authorization)),
      }),
    propagation.extract(context.active(), req.headers),
  );
  res.statusCode = response.status ?? 200;
  for (const [name, value] of response.headers) res.setHeader(name, value);
  if (response.body.kind === 'complete') {
    res.end(response.body.string);
    return;
  }
  for await (const chunk of response.body.asyncIterator) res.write(chunk);
  res.end();
}

/** Reads the raw body, refusing anything over the limit with 413. */
async function readRaw(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads the body up to the limit; JSON bodies are parsed, others passed on as text for Apollo to refuse. */
async function readBody(req: IncomingMessage, limit: number, contentType: string | undefined): Promise<unknown> {
  const text = await readRaw(req, limit);
  if (!contentType || !/^application\/(graphql-response\+)?json\b/i.test(contentType.trim())) return text;
  if (text.trim() === '') throw new HttpError(400, 'BAD_REQUEST', 'request body is empty');
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', 'request body is not valid JSON');
  }
}

function wantsHtml(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').includes('text/html');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
