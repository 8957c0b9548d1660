import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { getEventListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Address } from '../domain/types.js';
import { guardedConnect } from '../infra/ssrf.js';
import {
  centsToDecimal,
  parseRetryAfter,
  PartnerConnector,
  type ConnectorSeller,
  type OrderParams,
  type OrderStatusParams,
  type QuoteParams,
} from './connector.js';
import type { EndpointConfig } from './seller-config.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let server: Server;
let port: number;
let handler: Handler;
let received: Received[];
let connections = 0;
let connector: PartnerConnector;

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received = [];
  handler = (_req, res) => json(res, 500, { error: 'no handler' });
  connector = new PartnerConnector({ userAgent: 'broker-test/1' });
});

afterEach(async () => {
  await connector.close();
});

const quoteEndpoint: EndpointConfig = {
  method: 'GET',
  path: '/quote/{{isbn}}?title={{title}}&author={{author}}&condition={{condition}}',
  headers: {},
  body: null,
  response: { offers: 'offers', itemPrice: 'price', currency: 'currency', offerId: 'id', condition: 'condition' },
};

const orderEndpoint: EndpointConfig = {
  method: 'POST',
  path: '/orders',
  headers: { 'Idempotency-Key': '{{idempotencyKey}}' },
  body: {
    isbn: '{{isbn}}',
    quantity: 1,
    offer: '{{offerId}}',
    totalCents: '{{totalCents}}',
    total: '{{total}}',
    currency: '{{currency}}',
    shipTo: '{{shipping}}',
    city: '{{shipping.city}}',
    line2: '{{shipping.line2}}',
    note: 'Pay {{total}} {{currency}} for {{title}}',
  },
  response: { orderId: 'order.id', total: 'order.total', deliveryEta: 'order.eta' },
};

const statusEndpoint: EndpointConfig = {
  method: 'GET',
  path: '/orders/{{sellerOrderId}}',
  headers: { 'X-Idempotency-Key': '{{idempotencyKey}}' },
  body: null,
  response: { orderId: 'id', total: 'total', amounts: 'cents' },
};

function seller(overrides: Partial<ConnectorSeller> = {}): ConnectorSeller {
  return {
    id: 'acme',
    baseUrl: `http://127.0.0.1:${port}/acme`,
    headers: { 'X-Api-Key': 'secret-key', 'X-Both': 'seller' },
    timeoutMs: 2000,
    quote: quoteEndpoint,
    order: orderEndpoint,
    orderStatus: statusEndpoint,
    ...overrides,
  };
}

const book = { isbn: '9780141439518', title: 'Pride and Prejudice', author: 'Jane Austen' };

const quoteParams: QuoteParams = {
  book,
  condition: 'any',
  requestId: 'req-1',
  quoteRef: 'qr-1',
  callbackUrl: 'http://broker.test/partners/acme/callbacks',
};

const shipping: Address = {
  name: 'Ada Lovelace',
  line1: '12 St James Sq',
  line2: null,
  city: 'London',
  region: null,
  postalCode: 'SW1Y 4JH',
  country: 'GB',
};

const orderParams: OrderParams = {
  book,
  requestId: 'req-1',
  idempotencyKey: 'idem-1',
  offerId: 'offer-7',
  totalCents: 1234,
  currency: 'USD',
  shipping,
};

const statusParams: OrderStatusParams = {
  book,
  requestId: 'req-1',
  idempotencyKey: 'idem-1',
  sellerOrderId: 'o-42',
};

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port: free } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return free;
}

describe('quote', () => {
  it('maps a 2xx answer to offers and sends the rendered request', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        offers: [
          { id: 'a1', price: '12.99', currency: 'usd', condition: 'new' },
          { id: 'a2', price: 7.5, condition: 'good' },
        ],
      });
    const outcome = await connector.quote(seller(), quoteParams);
    expect(outcome).toMatchObject({ kind: 'offers' });
    if (outcome.kind !== 'offers') throw new Error('unreachable');
    expect(outcome.offers.map((o) => [o.offerId, o.totalCents, o.currency, o.condition])).toEqual([
      ['a1', 1299, 'USD', 'NEW'],
      ['a2', 750, 'USD', 'USED'],
    ]);
    expect(outcome.latencyMs).toBeGreaterThan(0);

    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request!.method).toBe('GET');
    expect(request!.url).toBe(
      '/acme/quote/9780141439518?title=Pride%20and%20Prejudice&author=Jane%20Austen&condition=any',
    );
    expect(request!.headers['user-agent']).toBe('broker-test/1');
    expect(request!.headers['x-api-key']).toBe('secret-key');
    expect(request!.headers['content-type']).toBeUndefined();
    expect(request!.body).toBe('');
  });

  it('URL-encodes hostile values in the path and never expands placeholders inside values', async () => {
    handler = (_req, res) => json(res, 200, { offers: [] });
    const title = 'a b/c?d#e&f=g%20 ünï 📚 {{isbn}}';
    const outcome = await connector.quote(seller(), {
      ...quoteParams,
      book: { isbn: '../../admin', title, author: null },
    });
    expect(outcome).toMatchObject({ kind: 'offers', offers: [] });
    const url = new URL(received[0]!.url, 'http://x');
    expect(url.pathname).toBe('/acme/quote/..%2F..%2Fadmin');
    expect(url.searchParams.get('title')).toBe(title);
    expect(url.searchParams.get('author')).toBe('');
    expect([...url.searchParams.keys()]).toEqual(['title', 'author', 'condition']);
  });

  it('merges seller and endpoint headers case-insensitively, the endpoint winning, and renders them', async () => {
    handler = (_req, res) => json(res, 200, { offers: [] });
    const quote: EndpointConfig = {
      ...quoteEndpoint,
      headers: { 'x-both': 'endpoint', 'X-Ref': '{{quoteRef}} for {{requestId}}' },
    };
    await connector.quote(seller({ quote }), quoteParams);
    const { headers } = received[0]!;
    expect(headers['x-both']).toBe('endpoint');
    expect(headers['x-ref']).toBe('qr-1 for req-1');
    expect(headers['x-api-key']).toBe('secret-key');
  });

  it('is pending on 202 and not carried on 404', async () => {
    handler = (_req, res) => json(res, 202, { accepted: true });
    expect(await connector.quote(seller(), quoteParams)).toMatchObject({ kind: 'pending' });
    handler = (_req, res) => json(res, 404, { error: 'unknown isbn' });
    expect(await connector.quote(seller(), quoteParams)).toMatchObject({ kind: 'not_carried' });
  });

  it('fails on other statuses, honouring Retry-After on 429', async () => {
    handler = (_req, res) => json(res, 500, { error: 'boom' });
    expect(await connector.quote(seller(), quoteParams)).toMatchObject({
      kind: 'failed',
      status: 500,
      cause: { kind: 'http', status: 500 },
      retryAfterMs: null,
    });
    handler = (_req, res) => json(res, 429, { error: 'slow down' }, { 'retry-after': '2' });
    expect(await connector.quote(seller(), quoteParams)).toMatchObject({
      kind: 'failed',
      status: 429,
      retryAfterMs: 2000,
    });
    handler = (_req, res) => json(res, 418, { error: 'teapot' }, { 'retry-after': '2' });
    expect(await connector.quote(seller(), quoteParams)).toMatchObject({ kind: 'failed', status: 418, retryAfterMs: null });
  });

  it.each([400, 422])('is unanswerable on %i: the seller cannot answer this query, which is not a failure', async (status) => {
    handler = (_req, res) => json(res, status, { error: 'title search not supported' });
    const outcome = await connector.quote(seller(), quoteParams);
    expect(outcome).toMatchObject({ kind: 'unanswerable', status });
    expect(outcome).not.toHaveProperty('cause');
  });

  it('fails on malformed JSON, an empty 2xx body and a body the mapping cannot read', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"offers": [');
    };
    expect(await connector.quote(seller(), quoteParams)).toMatchObject({
      kind: 'failed',
      status: 200,
      cause: { kind: 'unreadable' },
      reason: 'malformed JSON',
    });
    handler = (_req, res) => {
      res.writeHead(200);
      res.end();
    };
    expect(await connector.quote(seller(), quoteParams)).toMatchObject({ kind: 'failed', cause: { kind: 'unreadable' }, reason: 'empty response body' });
    handler = (_req, res) => json(res, 200, { offers: [{ id: 'a1', price: 'twelve' }] });
    const unreadable = await connector.quote(seller(), quoteParams);
    expect(unreadable).toMatchObject({ kind: 'failed', status: 200, cause: { kind: 'unreadable' } });
    if (unreadable.kind !== 'failed') throw new Error('unreachable');
    expect(unreadable.reason).toContain('itemPrice');
  });

  it('fails on a body larger than the limit, declared or streamed', async () => {
    const small = new PartnerConnector({ maxResponseBytes: 1024 });
    try {
      const big = JSON.stringify({ offers: [], padding: 'x'.repeat(4096) });
      handler = (_req, res) => json(res, 200, JSON.parse(big));
      expect(await small.quote(seller(), quoteParams)).toMatchObject({ kind: 'failed', status: 200 });

      // Chunked, no content-length: the limit is enforced while reading.
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.on('error', () => {});
        res.write('{"offers": [], "padding": "');
        for (let i = 0; i < 64; i++) res.write('y'.repeat(1024));
        res.end('"}');
      };
      const outcome = await small.quote(seller(), quoteParams);
      expect(outcome).toMatchObject({ kind: 'failed', status: 200, cause: { kind: 'unreadable' } });
      if (outcome.kind !== 'failed') throw new Error('unreachable');
      expect(outcome.reason).toContain('larger than 1024 bytes');
    } finally {
      await small.close();
    }
  });

  it('fails a template error without sending anything', async () => {
    const quote: EndpointConfig = { ...quoteEndpoint, path: '/quote/{{idempotencyKey}}' };
    const outcome = await connector.quote(seller({ quote }), quoteParams);
    expect(outcome).toMatchObject({ kind: 'failed', status: null, cause: { kind: 'unsendable' } });
    if (outcome.kind !== 'failed') throw new Error('unreachable');
    expect(outcome.reason).toContain('{{idempotencyKey}}');
    expect(received).toHaveLength(0);
  });

  it('refuses a CR/LF rendered into a header without sending the request', async () => {
    handler = (_req, res) => json(res, 200, { offers: [] });
    const quote: EndpointConfig = { ...quoteEndpoint, headers: { 'X-Title': '{{title}}' } };
    const evil = 'Evil\r\nX-Injected: yes';
    const outcome = await connector.quote(seller({ quote }), { ...quoteParams, book: { ...book, title: evil } });
    expect(outcome).toMatchObject({ kind: 'failed', status: null, cause: { kind: 'unsendable' } });
    if (outcome.kind !== 'failed') throw new Error('unreachable');
    expect(outcome.reason).toContain('x-title');
    expect(outcome.reason).not.toContain('Evil');
    expect(received).toHaveLength(0);

    // The same configuration still works for a clean value.
    expect(await connector.quote(seller({ quote }), quoteParams)).toMatchObject({ kind: 'offers' });
    expect(received[0]!.headers['x-title']).toBe(book.title);
  });

  it('times out a partner that never answers', async () => {
    handler = () => {};
    const started = performance.now();
    const outcome = await connector.quote(seller({ timeoutMs: 100 }), quoteParams);
    expect(performance.now() - started).toBeLessThan(900);
    expect(outcome).toMatchObject({ kind: 'failed', cause: { kind: 'timeout' }, status: null });
  });

  it('times out a partner that stalls part-way through its answer, and closes the connection', async () => {
    const closed = deferred();
    handler = (req, res) => {
      req.socket.once('close', () => closed.resolve());
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"offers": [');
    };
    const outcome = await connector.quote(seller({ timeoutMs: 100 }), quoteParams);
    expect(outcome).toMatchObject({ kind: 'failed', cause: { kind: 'timeout' }, status: 200 });
    await closed.promise;
  });

  it('stops a call when the caller aborts, and closes the connection', async () => {
    const arrived = deferred();
    const closed = deferred();
    handler = (req) => {
      req.socket.once('close', () => closed.resolve());
      arrived.resolve();
    };
    const controller = new AbortController();
    const call = connector.quote(seller(), quoteParams, controller.signal);
    await arrived.promise;
    controller.abort();
    expect(await call).toMatchObject({ kind: 'failed', cause: { kind: 'aborted' } });
    await closed.promise;
  });

  it('shares one caller signal across many concurrent calls and lets go of it afterwards', async () => {
    handler = (_req, res) => json(res, 200, { offers: [] });
    const controller = new AbortController();
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, () => connector.quote(seller(), quoteParams, controller.signal)),
    );
    expect(outcomes.every((o) => o.kind === 'offers')).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('does not call at all when the signal is already aborted', async () => {
    const outcome = await connector.quote(seller(), quoteParams, AbortSignal.abort());
    expect(outcome).toMatchObject({ kind: 'failed', cause: { kind: 'aborted' } });
    expect(received).toHaveLength(0);
  });

  it('fails when the connection is refused', async () => {
    const free = await closedPort();
    const outcome = await connector.quote(seller({ baseUrl: `http://127.0.0.1:${free}` }), quoteParams);
    expect(outcome).toMatchObject({ kind: 'failed', status: null, cause: { kind: 'network', errno: 'ECONNREFUSED' } });
    if (outcome.kind !== 'failed') throw new Error('unreachable');
    expect(outcome.reason).toContain('ECONNREFUSED');
  });

  it('under SELLER_URLS=public, never connects to a name that resolves to a loopback address (checked per connection)', async () => {
    const guarded = new PartnerConnector({
      userAgent: 'broker-test/1',
      // A name whose DNS answer turned to 127.0.0.1 after the seller was saved (rebinding).
      connect: guardedConnect((_host, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }])),
    });
    handler = (_req, res) => json(res, 200, { offers: [] });
    const outcome = await guarded.quote(seller({ baseUrl: `http://books.example.com:${port}/acme` }), quoteParams);
    await guarded.close();
    expect(outcome).toMatchObject({ kind: 'failed', status: null, cause: { kind: 'network', errno: 'EADDRBLOCKED' } });
    expect(received).toHaveLength(0);
  });

  it('names the errno of a connection reset before an answer', async () => {
    handler = (req) => req.socket.destroy();
    const outcome = await connector.quote(seller(), quoteParams);
    expect(outcome).toMatchObject({ kind: 'failed', status: null, cause: { kind: 'network' } });
    if (outcome.kind !== 'failed' || outcome.cause.kind !== 'network') throw new Error('unreachable');
    expect(outcome.cause.errno).toMatch(/^(ECONNRESET|UND_ERR_SOCKET|EPIPE)$/);
  });

  it('reuses keep-alive sockets for sequential calls', async () => {
    handler = (_req, res) => json(res, 200, { offers: [{ id: 'a', price: '1.00' }] });
    const before = connections;
    const kinds = [];
    for (let i = 0; i < 20; i++) kinds.push((await connector.quote(seller(), quoteParams)).kind);
    expect(kinds).toEqual(Array(20).fill('offers'));
    expect(connections - before).toBeLessThanOrEqual(2);
    expect(received).toHaveLength(20);
  });

  it('keeps sockets reusable after error statuses', async () => {
    handler = (_req, res) => json(res, 503, { error: 'x'.repeat(10_000) });
    const before = connections;
    for (let i = 0; i < 10; i++) {
      expect(await connector.quote(seller(), quoteParams)).toMatchObject({ kind: 'failed', status: 503 });
    }
    expect(connections - before).toBeLessThanOrEqual(2);
  });
});

describe('order', () => {
  it('confirms a 2xx with an order id, substituting typed values into the body', async () => {
    handler = (_req, res) => json(res, 201, { order: { id: 991, total: '12.34', eta: '2030-01-02' } });
    const outcome = await connector.order(seller(), orderParams);
    expect(outcome).toMatchObject({ kind: 'confirmed', orderId: '991', totalCents: 1234 });
    if (outcome.kind !== 'confirmed') throw new Error('unreachable');
    expect(outcome.deliveryEta?.toISOString()).toBe('2030-01-02T00:00:00.000Z');

    const [request] = received;
    expect(request!.method).toBe('POST');
    expect(request!.url).toBe('/acme/orders');
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.headers['idempotency-key']).toBe('idem-1');
    expect(JSON.parse(request!.body)).toEqual({
      isbn: '9780141439518',
      quantity: 1,
      offer: 'offer-7',
      totalCents: 1234,
      total: '12.34',
      currency: 'USD',
      shipTo: shipping,
      city: 'London',
      line2: null,
      note: 'Pay 12.34 USD for Pride and Prejudice',
    });
  });

  it('keeps a configured content-type and sends a static body unchanged', async () => {
    handler = (_req, res) => json(res, 200, { order: { id: 'x' } });
    const order: EndpointConfig = {
      ...orderEndpoint,
      headers: { 'Content-Type': 'application/vnd.acme+json' },
      body: { fixed: true },
    };
    expect(await connector.order(seller({ order }), orderParams)).toMatchObject({ kind: 'confirmed', orderId: 'x' });
    expect(received[0]!.headers['content-type']).toBe('application/vnd.acme+json');
    expect(received[0]!.body).toBe('{"fixed":true}');
  });

  it('is unknown on a 2xx without a readable order id', async () => {
    handler = (_req, res) => json(res, 200, { ok: true });
    expect(await connector.order(seller(), orderParams)).toMatchObject({
      kind: 'unknown',
      status: 200,
      reason: 'unreadable confirmation',
    });
    handler = (_req, res) => {
      res.writeHead(200);
      res.end('<html>thanks</html>');
    };
    const outcome = await connector.order(seller(), orderParams);
    expect(outcome).toMatchObject({ kind: 'unknown', status: 200 });
    if (outcome.kind !== 'unknown') throw new Error('unreachable');
    expect(outcome.reason).toMatch(/^unreadable confirmation/);
  });

  it('is pending on 202', async () => {
    handler = (_req, res) => json(res, 202, {});
    expect(await connector.order(seller(), orderParams)).toMatchObject({ kind: 'pending' });
  });

  it.each([409, 410, 422])('is rejected on %i', async (status) => {
    handler = (_req, res) => json(res, status, { error: 'out of stock' });
    expect(await connector.order(seller(), orderParams)).toMatchObject({ kind: 'rejected', status });
  });

  it.each([429, 500, 503, 400, 301])('is unknown on %i', async (status) => {
    handler = (_req, res) => json(res, status, { error: 'x' }, status === 429 ? { 'retry-after': '3' } : {});
    expect(await connector.order(seller(), orderParams)).toMatchObject({
      kind: 'unknown',
      status,
      retryAfterMs: status === 429 ? 3000 : null,
    });
  });

  it('is unknown on a timeout and on a refused connection', async () => {
    handler = () => {};
    expect(await connector.order(seller({ timeoutMs: 100 }), orderParams)).toMatchObject({
      kind: 'unknown',
      cause: { kind: 'timeout' },
      status: null,
    });
    const free = await closedPort();
    expect(await connector.order(seller({ baseUrl: `http://127.0.0.1:${free}` }), orderParams)).toMatchObject({
      kind: 'unknown',
      cause: { kind: 'network', errno: 'ECONNREFUSED' },
    });
  });

  it('is unknown (aborted) when the caller aborts', async () => {
    const arrived = deferred();
    handler = () => arrived.resolve();
    const controller = new AbortController();
    const call = connector.order(seller(), orderParams, controller.signal);
    await arrived.promise;
    controller.abort();
    expect(await call).toMatchObject({ kind: 'unknown', cause: { kind: 'aborted' } });
  });
});

describe('orderStatus', () => {
  it('is placed on a 2xx with an order id', async () => {
    handler = (_req, res) => json(res, 200, { id: 'o-42', total: 1234 });
    expect(await connector.orderStatus(seller(), statusParams)).toMatchObject({
      kind: 'placed',
      orderId: 'o-42',
      totalCents: 1234,
      deliveryEta: null,
    });
    expect(received[0]!.url).toBe('/acme/orders/o-42');
    expect(received[0]!.headers['x-idempotency-key']).toBe('idem-1');
  });

  it('is not placed on 404', async () => {
    handler = (_req, res) => json(res, 404, {});
    expect(await connector.orderStatus(seller(), { ...statusParams, sellerOrderId: null })).toMatchObject({
      kind: 'not_placed',
    });
    expect(received[0]!.url).toBe('/acme/orders/');
  });

  it('is unknown otherwise', async () => {
    handler = (_req, res) => json(res, 500, {});
    expect(await connector.orderStatus(seller(), statusParams)).toMatchObject({ kind: 'unknown', status: 500 });
    handler = (_req, res) => json(res, 200, { status: 'processing' });
    expect(await connector.orderStatus(seller(), statusParams)).toMatchObject({ kind: 'unknown', status: 200 });
    handler = () => {};
    expect(await connector.orderStatus(seller({ timeoutMs: 100 }), statusParams)).toMatchObject({
      kind: 'unknown',
      cause: { kind: 'timeout' },
    });
  });

  it('is unknown without calling when the seller has no orderStatus endpoint', async () => {
    expect(await connector.orderStatus(seller({ orderStatus: null }), statusParams)).toMatchObject({
      kind: 'unknown',
      reason: 'no orderStatus endpoint',
      status: null,
    });
    expect(received).toHaveLength(0);
  });
});

describe('helpers', () => {
  it('turns cents into an exact decimal string', () => {
    expect(centsToDecimal(0)).toBe('0.00');
    expect(centsToDecimal(5)).toBe('0.05');
    expect(centsToDecimal(100)).toBe('1.00');
    expect(centsToDecimal(1999)).toBe('19.99');
    expect(centsToDecimal(29)).toBe('0.29');
    expect(centsToDecimal(Number.MAX_SAFE_INTEGER)).toBe('90071992547409.91');
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Mon, 31 Dec 2029 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
  });
});
