import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { inSpan } from '../src/infra/tracing.js';
import { PartnerConnector } from '../src/partners/connector.js';
import { usd } from './support/fixtures.js';
import { eventually } from './support/server.js';
import { type World, startWorld } from './support/world.js';

/**
 * Traces (issue 13 item 4), seen through an in-memory exporter registered as the process's SDK,
 * as OTEL_EXPORTER_OTLP_ENDPOINT would register the OTLP one: the span tree of one ordered
 * request, `traceparent` on partner calls and on webhook deliveries, the trace id in log lines.
 * (With no SDK registered no `traceparent` is sent: test/webhooks.e2e.test.ts.)
 */

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();

let w: World;
beforeAll(async () => {
  // PageTurner (tier 1) has the book; Dog-Ear (tier 2) is never asked: the round exits early.
  // A long lease: a create slowed by a busy machine still starts the request it wrote.
  w = await startWorld({ sellers: [{ key: 'pageturner' }, { key: 'dogear' }], env: { ENGINE_LEASE_MS: '20000' } });
});
afterAll(async () => {
  await w?.close();
  await provider.shutdown();
});

const spans = () => exporter.getFinishedSpans();
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const childrenOf = (parent: ReadableSpan, all: ReadableSpan[]) => all.filter((s) => parentOf(s) === parent.spanContext().spanId);

describe('traces', () => {
  it('one ordered request: GraphQL operation, claim → request → round → quote calls, attempt → steps → order call', async () => {
    exporter.reset();
    const id = await w.create({ book: { isbn: '9780141439518' }, maxTotalPrice: usd(5000) });
    expect((await w.until(id, (r) => ['ORDERED', 'FAILED'].includes(r.status))).status).toBe('ORDERED');

    // The request's span ends after the attempt settles it.
    const all = await eventually(async () => {
      const s = spans();
      return s.some((x) => x.name === 'engine.request' && x.attributes['broker.request.id'] === id) ? s : null;
    });

    const op = all.find((s) => s.name === 'graphql.mutation' && s.attributes['graphql.operation.type'] === 'mutation');
    expect(op, 'the createPurchaseRequest operation span').toBeDefined();

    const request = all.find((s) => s.name === 'engine.request' && s.attributes['broker.request.id'] === id)!;
    const claim = all.find((s) => s.spanContext().spanId === parentOf(request));
    expect(claim?.name).toBe('engine.claim');
    expect(claim!.attributes['broker.claimed']).toBeGreaterThanOrEqual(1);
    // Created on an instance whose engine runs: taken as it was written, in a trace of its own.
    expect(claim!.attributes['broker.claim.on_create']).toBe(true);
    expect(claim!.spanContext().traceId).not.toBe(op!.spanContext().traceId);

    const inTrace = all.filter((s) => s.spanContext().traceId === request.spanContext().traceId);
    const [round] = childrenOf(request, inTrace).filter((s) => s.name === 'round');
    expect(round).toBeDefined();
    expect(round!.attributes).toMatchObject({
      'broker.book': 'isbn:9780141439518',
      'broker.round.members': 1,
      'broker.round.calls': 1,
      'broker.round.cache_hits': 0,
      'broker.round.calls_skipped': 1,
      'broker.round.early_exit': true,
    });
    const quotes = childrenOf(round!, inTrace);
    expect(quotes.map((s) => [s.name, s.attributes['broker.seller'], s.attributes['broker.call.kind'], s.attributes['broker.call.outcome'], s.attributes['http.response.status_code']])).toEqual([
      ['seller.quote', 'PageTurner Books', 'quote', 'offers', undefined],
    ]);

    const [attempt] = childrenOf(request, inTrace).filter((s) => s.name === 'attempt');
    expect(attempt?.attributes).toMatchObject({ 'broker.attempt.no': 1, 'broker.attempt.outcome': 'succeeded' });
    const steps = childrenOf(attempt!, inTrace).sort((a, b) => (a.startTime[0] - b.startTime[0]) * 1e9 + (a.startTime[1] - b.startTime[1]));
    expect(steps.map((s) => s.name)).toEqual(['attempt.authorizing', 'attempt.ordering', 'attempt.capturing']);
    const ordering = steps[1]!;
    expect(childrenOf(ordering, inTrace).map((s) => [s.name, s.attributes['broker.call.outcome']])).toEqual([['seller.order', 'confirmed']]);

    // Support goes from the request's events to its traces: CREATED in the operation's trace, the
    // engine's events in the request's.
    const events = (await w.detail(id, `query Q($id: ID!) { purchaseRequest(id: $id) { events { type traceId } } }`)).events as { type: string; traceId: string | null }[];
    expect(events[0]).toEqual({ type: 'CREATED', traceId: op!.spanContext().traceId });
    const engineEvents = events.slice(1);
    expect(engineEvents.map((e) => e.type)).toContain('ORDERED');
    for (const e of engineEvents) expect(e.traceId, e.type).toBe(request.spanContext().traceId);
  });

  it('sends traceparent with partner calls made inside a span, and none outside', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const partner: Server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ offers: [] }));
    });
    await new Promise<void>((r) => partner.listen(0, '127.0.0.1', r));
    const connector = new PartnerConnector({});
    try {
      const seller = {
        id: 'acme',
        baseUrl: `http://127.0.0.1:${(partner.address() as AddressInfo).port}`,
        headers: {},
        timeoutMs: 2000,
        quote: { method: 'GET' as const, path: '/quote/{{isbn}}', headers: {}, body: null, response: { offers: 'offers', itemPrice: 'price' } },
        order: null,
        orderStatus: null,
      };
      const params = { book: { isbn: '9780141439518', title: null, author: null }, condition: 'any' as const, requestId: 'r', quoteRef: 'q', callbackUrl: 'http://x/cb' };
      let traceparent = '';
      await inSpan('caller', {}, async (span) => {
        traceparent = `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`;
        await connector.quote(seller as never, params as never);
      });
      await connector.quote(seller as never, params as never);
      expect(seen.map((h) => h.traceparent)).toEqual([traceparent, undefined]);
    } finally {
      await connector.close();
      partner.closeAllConnections();
      await new Promise<void>((r) => partner.close(() => r()));
    }
  });

  it('puts the trace id in every log line written inside a span', async () => {
    const lines: any[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const log = createLogger('info', sink);
    let traceId = '';
    await inSpan('work', {}, async (span) => {
      traceId = span.spanContext().traceId;
      log.info('inside');
    });
    log.info('outside');
    expect(lines.map((l) => [l.msg, l.traceId])).toEqual([
      ['inside', traceId],
      ['outside', undefined],
    ]);
  });
});

describe('webhook deliveries', () => {
  it('carry traceparent naming the delivery try\'s own span, a trace of its own that names the request', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const receiver: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push(req.headers);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
      const created = await w.server.gql(
        `mutation($input: WebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } userErrors { code } } }`,
        { input: { url, events: ['ORDERED'] } },
      );
      expect(created.data.createWebhookEndpoint.userErrors).toEqual([]);
      exporter.reset();
      const id = await w.create({ book: { isbn: '9780141439518' }, maxTotalPrice: usd(5000) });
      expect((await w.until(id, (r) => ['ORDERED', 'FAILED'].includes(r.status))).status).toBe('ORDERED');

      const headers = await eventually(async () => seen[0]);
      const webhookId = String(headers['webhook-id']);
      const delivery = await eventually(async () => spans().find((s) => s.name === 'webhook.deliver' && s.attributes['webhook.id'] === webhookId));
      const { traceId, spanId } = delivery.spanContext();
      expect(headers.traceparent).toBe(`00-${traceId}-${spanId}-01`);
      expect(delivery.attributes).toMatchObject({ 'broker.request.id': id, 'webhook.outcome': '204', 'webhook.attempt': 1 });
      // Not a child of whatever woke the relay (the request's round, another user's mutation).
      expect(parentOf(delivery)).toBeUndefined();
    } finally {
      receiver.closeAllConnections();
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  });
});
