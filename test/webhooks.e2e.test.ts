import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usd } from './support/fixtures.js';
import { eventually, startTestServer, type TestServer } from './support/server.js';
import { startWorld, type World } from './support/world.js';

/**
 * Webhooks end to end (API.md "Webhooks", SPEC §8): endpoints through GraphQL, events written to
 * the outbox with the status change, delivered by the relay to receivers on 127.0.0.1 (allowed
 * under WEBHOOK_URLS=any), signed per Standard Webhooks, retried, in revision order per request.
 * Every assertion is on what a receiver or the API can see.
 */

const CREATE_ENDPOINT = `mutation($input: WebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id url events enabled createdAt } secret userErrors { field code message } }
}`;
const LIST_ENDPOINTS = `{ webhookEndpoints { id url events enabled createdAt } }`;
const DELETE_ENDPOINT = `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { endpoint { id } secret userErrors { field code } } }`;
const CANCEL = `mutation($id: ID!) { cancelPurchaseRequest(id: $id) { purchaseRequest { id status } userErrors { code } } }`;
const DEAD_LETTERS = `{ deadLetters(includeResolved: true) { id kind ref payload lastError resolvedAt } }`;
const REDRIVE = `mutation($id: ID!) { redriveDeadLetter(id: $id) { deadLetter { id resolvedAt } userErrors { code } } }`;
const EVENTS = `query($id: ID!) { purchaseRequest(id: $id) { id status revision events { status revision } } }`;

const ALL_EVENTS = ['ORDERED', 'QUOTED', 'OUT_OF_STOCK', 'EXPIRED', 'FAILED', 'CANCELED'];

interface Receipt {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
}

/** A user's receiver: records every try; `answer` decides the status per try. */
class Receiver {
  readonly receipts: Receipt[] = [];
  answer: (path: string, webhookId: string, tryNo: number) => number = () => 200;
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const id = String(req.headers['webhook-id']);
        const tryNo = this.receipts.filter((r) => r.headers['webhook-id'] === id).length + 1;
        const answered = this.answer(req.url ?? '', id, tryNo);
        this.receipts.push({ path: req.url ?? '', headers: req.headers, body, answered });
        res.writeHead(answered).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Successful deliveries on `path`, one per webhook-id (receivers deduplicate on it), in arrival order. */
  delivered(path: string): { id: string; body: any; raw: string }[] {
    const seen = new Set<string>();
    const out: { id: string; body: any; raw: string }[] = [];
    for (const r of this.receipts) {
      const id = String(r.headers['webhook-id']);
      if (r.path !== path || r.answered !== 200 || seen.has(id)) continue;
      seen.add(id);
      out.push({ id, body: JSON.parse(r.body), raw: r.body });
    }
    return out;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Verifies a receipt's signature independently of the broker's code: HMAC-SHA256 per the spec. */
function verify(secret: string, r: Receipt): boolean {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const ts = String(r.headers['webhook-timestamp']);
  if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const expected = createHmac('sha256', key).update(`${r.headers['webhook-id']}.${ts}.${r.body}`).digest();
  return String(r.headers['webhook-signature'])
    .split(' ')
    .some((s) => {
      const [version, sig] = s.split(',');
      const got = Buffer.from(sig ?? '', 'base64');
      return version === 'v1' && got.length === expected.length && timingSafeEqual(got, expected);
    });
}

describe('webhook endpoints through GraphQL', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ WEBHOOK_URLS: 'any' });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('creates an endpoint with a whsec_ secret shown once, lists it for its owner only, and deletes it for its owner only', async () => {
    const created = (await s.gql(CREATE_ENDPOINT, { input: { url: 'https://hooks.example.com/broker' } })).data.createWebhookEndpoint;
    expect(created.userErrors).toEqual([]);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(created.secret.slice(6), 'base64').length).toBeGreaterThanOrEqual(24);
    expect(created.endpoint).toMatchObject({ url: 'https://hooks.example.com/broker', events: ALL_EVENTS, enabled: true });

    const filtered = (await s.gql(CREATE_ENDPOINT, { input: { url: 'http://127.0.0.1:9/x', events: ['CANCELED', 'ORDERED', 'ORDERED'] } })).data.createWebhookEndpoint;
    expect(filtered.userErrors).toEqual([]);
    expect(filtered.endpoint.events).toEqual(['ORDERED', 'CANCELED']);

    const mine = (await s.gql(LIST_ENDPOINTS)).data.webhookEndpoints;
    expect(mine.map((e: any) => e.id)).toEqual([created.endpoint.id, filtered.endpoint.id]);
    expect((await s.gql(LIST_ENDPOINTS, {}, s.tokens.bob)).data.webhookEndpoints).toEqual([]);

    const bobDeletes = (await s.gql(DELETE_ENDPOINT, { id: created.endpoint.id }, s.tokens.bob)).data.deleteWebhookEndpoint;
    expect(bobDeletes).toEqual({ endpoint: null, secret: null, userErrors: [{ field: ['id'], code: 'NOT_FOUND' }] });
    expect((await s.gql(DELETE_ENDPOINT, { id: 'not-a-uuid' })).data.deleteWebhookEndpoint.userErrors[0].code).toBe('NOT_FOUND');

    const deleted = (await s.gql(DELETE_ENDPOINT, { id: created.endpoint.id })).data.deleteWebhookEndpoint;
    expect(deleted).toEqual({ endpoint: { id: created.endpoint.id }, secret: null, userErrors: [] });
    expect((await s.gql(LIST_ENDPOINTS)).data.webhookEndpoints.map((e: any) => e.id)).toEqual([filtered.endpoint.id]);
    expect((await s.gql(DELETE_ENDPOINT, { id: created.endpoint.id })).data.deleteWebhookEndpoint.userErrors[0].code).toBe('NOT_FOUND');
  });

  it.each(['not a url', 'ftp://hooks.example.com/x', 'https://user:pw@hooks.example.com/x', '/relative', 'https://hooks.example.com/x#frag'])(
    'refuses the url %s with INVALID_URL',
    async (url) => {
      const p = (await s.gql(CREATE_ENDPOINT, { input: { url } })).data.createWebhookEndpoint;
      expect(p.endpoint).toBeNull();
      expect(p.secret).toBeNull();
      expect(p.userErrors).toMatchObject([{ code: 'INVALID_URL', field: ['input', 'url'] }]);
    },
  );

  it('refuses events no webhook is sent for', async () => {
    for (const events of [[], ['PENDING'], ['ORDERING', 'ORDERED']]) {
      const p = (await s.gql(CREATE_ENDPOINT, { input: { url: 'https://hooks.example.com/x', events } })).data.createWebhookEndpoint;
      expect(p.userErrors).toMatchObject([{ code: 'INVALID_INPUT', field: ['input', 'events'] }]);
    }
  });

  it('needs a signed-in user', async () => {
    const res = await s.gql(LIST_ENDPOINTS, {}, null);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('with WEBHOOK_URLS=public', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ WEBHOOK_URLS: 'public' });
  });
  afterAll(async () => {
    await s?.close();
  });

  it.each([
    'http://hooks.example.com/x',
    'https://localhost/x',
    'https://api.localhost/x',
    'https://127.0.0.1/x',
    'https://10.0.0.5/x',
    'https://169.254.169.254/latest/meta-data',
    'https://[::1]/x',
    'https://[fd00::1]/x',
    'https://[::ffff:127.0.0.1]/x',
    'https://2130706433/x',
  ])('refuses %s', async (url) => {
    const p = (await s.gql(CREATE_ENDPOINT, { input: { url } })).data.createWebhookEndpoint;
    expect(p.userErrors).toMatchObject([{ code: 'INVALID_URL', field: ['input', 'url'] }]);
  });

  it('accepts a public https URL (its addresses are checked again at every delivery)', async () => {
    const p = (await s.gql(CREATE_ENDPOINT, { input: { url: 'https://hooks.example.com/broker' } })).data.createWebhookEndpoint;
    expect(p.userErrors).toEqual([]);
  });
});

describe('webhook delivery', () => {
  let w: World;
  const receiver = new Receiver();
  let aliceSecret = '';
  let bobSecret = '';

  beforeAll(async () => {
    await receiver.start();
    w = await startWorld({
      sellers: [{ key: 'pageturner' }, { key: 'dogear' }, { key: 'chapterhouse' }],
      env: {
        WEBHOOK_URLS: 'any',
        WEBHOOK_POLL_MS: '50',
        WEBHOOK_RETRY_BASE_MS: '40',
        WEBHOOK_RETRY_MAX_MS: '200',
        WEBHOOK_RETRY_WINDOW_MS: '3000',
        WEBHOOK_BREAKER_AFTER: '3',
      },
    });
    const alice = (await w.server.gql(CREATE_ENDPOINT, { input: { url: `${receiver.url}/alice` } })).data.createWebhookEndpoint;
    const bob = (await w.server.gql(CREATE_ENDPOINT, { input: { url: `${receiver.url}/bob` } }, w.server.tokens.bob)).data.createWebhookEndpoint;
    aliceSecret = alice.secret;
    bobSecret = bob.secret;
  }, 60_000);
  afterAll(async () => {
    await w?.close();
    await receiver.stop();
  });

  /** The request's events that are webhook outcomes: a change to one of the statuses (QUOTED drops are not in `events`' shape, so QUOTED counts on a change). */
  async function outcomes(id: string, token: string): Promise<{ status: string; revision: number }[]> {
    const r = (await w.server.gql(EVENTS, { id }, token)).data.purchaseRequest;
    const out: { status: string; revision: number }[] = [];
    let previous = '';
    for (const e of r.events) {
      if (ALL_EVENTS.includes(e.status) && e.status !== previous) out.push({ status: e.status, revision: e.revision });
      previous = e.status;
    }
    return out;
  }

  it('delivers every outcome, signed, with a stable webhook-id across retries, in revision order per request, to its own user only', async () => {
    // Each event fails twice before it is taken.
    receiver.answer = (path, _id, tryNo) => (path.startsWith('/alice') || path.startsWith('/bob') ? (tryNo <= 2 ? 500 : 200) : 200);
    const ordered = await w.create({ book: { isbn: '9780141439518' }, maxTotalPrice: usd(5000) });
    const tooDear = await w.create({ book: { isbn: '9780141439518' }, maxTotalPrice: usd(1000) });
    const outOfPrint = await w.create({ book: { isbn: '9780679722762' }, maxTotalPrice: usd(5000) });
    const bobs = await w.create({ book: { isbn: '9780141439518' }, maxTotalPrice: usd(5000) }, w.server.tokens.bob);

    await w.until(ordered, (r) => r.status === 'ORDERED', 20_000);
    await eventually(async () => (await w.server.gql(EVENTS, { id: bobs }, w.server.tokens.bob)).data.purchaseRequest.status === 'ORDERED', 20_000);
    await w.until(tooDear, (r) => r.status === 'QUOTED' || r.status === 'OUT_OF_STOCK', 20_000);
    await w.until(outOfPrint, (r) => r.status === 'OUT_OF_STOCK', 20_000);
    for (const id of [tooDear, outOfPrint]) expect((await w.server.gql(CANCEL, { id })).data.cancelPurchaseRequest.userErrors).toEqual([]);

    const expected = new Map<string, { status: string; revision: number }[]>();
    for (const id of [ordered, tooDear, outOfPrint]) expected.set(id, await outcomes(id, w.server.tokens.alice));
    expected.set(bobs, await outcomes(bobs, w.server.tokens.bob));
    expect(expected.get(ordered)!.at(-1)!.status).toBe('ORDERED');
    expect(expected.get(tooDear)!.at(-1)!.status).toBe('CANCELED');
    expect(expected.get(outOfPrint)!.map((e) => e.status)).toEqual(['OUT_OF_STOCK', 'CANCELED']);

    const want = (path: string, ids: string[]) => ids.reduce((n, id) => n + expected.get(id)!.length, 0) <= receiver.delivered(path).length;
    await eventually(() => Promise.resolve(want('/alice', [ordered, tooDear, outOfPrint]) && want('/bob', [bobs])), 20_000);

    for (const [path, secret, ids] of [
      ['/alice', aliceSecret, [ordered, tooDear, outOfPrint]],
      ['/bob', bobSecret, [bobs]],
    ] as const) {
      const delivered = receiver.delivered(path);
      // Exactly the user's own requests' outcomes, each once after deduplication.
      const got = new Map<string, { status: string; revision: number }[]>();
      for (const d of delivered) {
        expect(d.body.type).toBe(`purchase_request.${d.body.data.status.toLowerCase()}`);
        expect(new Date(d.body.timestamp).toISOString()).toBe(d.body.timestamp);
        got.set(d.body.data.id, [...(got.get(d.body.data.id) ?? []), { status: d.body.data.status, revision: d.body.data.revision }]);
      }
      expect([...got.keys()].sort()).toEqual([...ids].sort());
      for (const id of ids) expect(got.get(id)).toEqual(expected.get(id));

      const tries = receiver.receipts.filter((r) => r.path === path);
      // Signed on every try; the failed tries and the one taken carry the same id and the same bytes.
      for (const r of tries) expect(verify(secret, r)).toBe(true);
      // Traces are not exported here (no OpenTelemetry SDK): no traceparent (test/tracing.e2e.test.ts has it on).
      for (const r of tries) expect(r.headers.traceparent).toBeUndefined();
      for (const d of delivered) {
        const same = tries.filter((r) => r.headers['webhook-id'] === d.id);
        expect(same.map((r) => r.answered)).toEqual([500, 500, 200]);
        expect(new Set(same.map((r) => r.body))).toEqual(new Set([d.raw]));
      }
      // Revision order per request: no try of revision n+1 before revision n was taken.
      const lastRevision = new Map<string, number>();
      for (const r of tries) {
        const data = JSON.parse(r.body).data;
        expect(data.revision).toBeGreaterThanOrEqual(lastRevision.get(data.id) ?? 0);
        lastRevision.set(data.id, data.revision);
      }
    }

    // The data is the request as the API shows it.
    const order = receiver.delivered('/alice').find((d) => d.body.data.id === ordered && d.body.data.status === 'ORDERED')!.body.data;
    const api = await w.get(ordered);
    expect(order).toMatchObject({ id: ordered, revision: expect.any(Number), failureReason: null });
    expect(order.order.sellerOrderId).toBe(api.order.sellerOrderId);
    expect(order.bestOffer.total).toEqual({ cents: api.bestOffer.total.cents, currency: 'USD' });

    // An operator sees the deliveries and the failed tries in /metrics.
    const metrics = await (await fetch(`${w.server.url}/metrics`)).text();
    const count = (outcome: string) => Number(new RegExp(`^broker_webhook_deliveries_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    const deliveries = receiver.delivered('/alice').length + receiver.delivered('/bob').length;
    expect(count('delivered')).toBeGreaterThanOrEqual(deliveries);
    expect(count('retry')).toBeGreaterThanOrEqual(2 * deliveries);
  }, 90_000);

  it('a receiver answering 410 Gone has its endpoint disabled and is sent nothing more', async () => {
    const gone = (await w.server.gql(CREATE_ENDPOINT, { input: { url: `${receiver.url}/gone`, events: ['CANCELED'] } }, w.server.tokens.bob)).data
      .createWebhookEndpoint;
    receiver.answer = (path) => (path === '/gone' ? 410 : 200);
    const first = await w.create({ book: { isbn: '9780679722762' }, maxTotalPrice: usd(5000) }, w.server.tokens.bob);
    await w.server.gql(CANCEL, { id: first }, w.server.tokens.bob);
    await eventually(async () => {
      const list = (await w.server.gql(LIST_ENDPOINTS, {}, w.server.tokens.bob)).data.webhookEndpoints;
      return list.find((e: any) => e.id === gone.endpoint.id)?.enabled === false;
    }, 15_000);
    const second = await w.create({ book: { isbn: '9780679722762' }, maxTotalPrice: usd(5000) }, w.server.tokens.bob);
    await w.server.gql(CANCEL, { id: second }, w.server.tokens.bob);
    // Bob's other endpoint hears of the second cancel: by then the disabled one would have too.
    await eventually(() => Promise.resolve(receiver.delivered('/bob').some((d) => d.body.data.id === second && d.body.data.status === 'CANCELED')), 15_000);
    expect(receiver.receipts.filter((r) => r.path === '/gone')).toHaveLength(1);
  }, 60_000);

  it('dead-letters a delivery that keeps failing past its retry window, for an admin to re-drive', async () => {
    const failing = (await w.server.gql(CREATE_ENDPOINT, { input: { url: `${receiver.url}/down`, events: ['CANCELED'] } })).data.createWebhookEndpoint;
    let up = false;
    receiver.answer = (path) => (path === '/down' ? (up ? 200 : 503) : 200);
    const id = await w.create({ book: { isbn: '9780679722762' }, maxTotalPrice: usd(5000) });
    await w.server.gql(CANCEL, { id });
    const letter = await eventually(async () => {
      const letters = (await w.server.gql(DEAD_LETTERS, {}, w.server.tokens.admin)).data.deadLetters;
      return letters.find((l: any) => l.kind === 'webhook' && l.payload.requestId === id && l.payload.endpointId === failing.endpoint.id);
    }, 20_000);
    expect(letter.lastError).toBe('HTTP 503');
    expect(letter.resolvedAt).toBeNull();
    const triesBefore = receiver.receipts.filter((r) => r.path === '/down').length;
    expect(triesBefore).toBeGreaterThan(1);

    up = true;
    const redriven = (await w.server.gql(REDRIVE, { id: letter.id }, w.server.tokens.admin)).data.redriveDeadLetter;
    expect(redriven.userErrors).toEqual([]);
    expect(redriven.deadLetter.resolvedAt).not.toBeNull();
    await eventually(() => Promise.resolve(receiver.delivered('/down').length === 1), 15_000);
    const taken = receiver.delivered('/down')[0]!;
    expect(taken.id).toBe(letter.payload.webhookId);
    expect(taken.body.data).toMatchObject({ id, status: 'CANCELED' });
    // The endpoint is healthy again: the request's lifecycle never waited for it.
    expect((await w.get(id)).status).toBe('CANCELED');
  }, 60_000);
});
