import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseOrderResponse, parseQuoteResponse, type OrderMapping, type ParsedOffer, type QuoteMapping } from '../mapping.js';
import { type SellerInputShape, validateSellerInput } from '../seller-config.js';
import { renderBody, renderPath, renderText } from '../template.js';
import { CATALOG, type CatalogBook } from './catalog.js';
import { type AsyncKnobs, type CallbackMessage, sandboxCallbackSecret, SandboxFleet } from './fleet.js';

// ---- the broker's side: a callback receiver ----

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  at: number;
}

let receiver: Server;
let receiverUrl: string;
let received: Received[] = [];
/** What the receiver answers; tests that make it fail put it back. */
let receiverStatus = 200;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      res.writeHead(receiverStatus, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: receiverStatus < 300 }));
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  const closed = new Promise<void>((resolve) => receiver.close(() => resolve()));
  receiver.closeAllConnections();
  await closed;
});

const callbackPath = (key: string) => `/partners/${key}/callbacks`;
const arrivedAt = (path: string) => received.filter((r) => r.path === path);

/** Verifies X-Signature exactly as the broker does: HMAC-SHA256 over `${t}.${rawBody}`, 5-minute window. */
function signatureValid(r: Received, secret: string): boolean {
  const header = r.headers['x-signature'];
  if (typeof header !== 'string') return false;
  const parts = Object.fromEntries(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = parts.t;
  const v1 = parts.v1;
  if (t === undefined || v1 === undefined || !/^\d+$/.test(t) || !/^[0-9a-f]{64}$/.test(v1)) return false;
  if (Math.abs(Date.now() / 1000 - Number(t)) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${r.raw}`).digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}

async function waitFor(what: string, done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the connector's side: render the templates, call ----

const SHIP_TO = { name: 'Ada Lovelace', line1: '12 St James Sq', line2: null, city: 'London', region: 'LND', postalCode: 'SW1Y 4JH', country: 'GB' };

function values(key: string, book: CatalogBook, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    isbn: book.isbn,
    title: book.title,
    author: book.author,
    requestId: 'req-async',
    condition: 'any',
    quoteRef: `${book.isbn}|${key}`,
    callbackUrl: `${receiverUrl}${callbackPath(key)}`,
    currency: 'USD',
    shipping: SHIP_TO,
    sellerOrderId: null,
    ...extra,
  };
}

function renderHeaders(headers: unknown, vals: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((headers ?? {}) as Record<string, string>)) out[k] = renderText(v, vals);
  return out;
}

async function call(input: SellerInputShape, kind: 'quote' | 'order', vals: Record<string, unknown>): Promise<{ status: number; json: unknown }> {
  const ep = input[kind];
  const headers = { ...renderHeaders(input.headers, vals), ...renderHeaders(ep.headers, vals) };
  let body: string | undefined;
  if (ep.body !== undefined && ep.body !== null) {
    body = JSON.stringify(renderBody(ep.body, vals));
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(input.baseUrl + renderPath(ep.path, vals), { method: ep.method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

const quoteMapping = (input: SellerInputShape) => input.quote.response as QuoteMapping;
const orderMapping = (input: SellerInputShape) => input.order.response as OrderMapping;

function offersOf(input: SellerInputShape, body: unknown): ParsedOffer[] {
  const parsed = parseQuoteResponse(body, quoteMapping(input));
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.offers;
}

const decimal = (cents: number) => `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
const orderValues = (key: string, book: CatalogBook, offer: ParsedOffer, idempotencyKey: string, totalCents = offer.totalCents) =>
  values(key, book, { idempotencyKey, offerId: offer.offerId, totalCents, total: decimal(totalCents) });

// ---- fixtures ----

let fleet: SandboxFleet;
let inputs: Map<string, SellerInputShape>;

async function startFleet(seed = 1): Promise<void> {
  fleet = new SandboxFleet({ latencyScale: 0, seed });
  await fleet.start();
  const specs = fleet.specs();
  inputs = new Map(fleet.sellerInputs().map((inp, i) => [specs[i]!.key, inp]));
}

const input = (key: string) => inputs.get(key)!;

function asyncKnobs(patch: Partial<AsyncKnobs> = {}): AsyncKnobs {
  return { quotes: true, orders: true, delayMs: 0, duplicateRate: 0, lateRate: 0, lateMs: 0, ...patch };
}

/** The first book the seller carries with every offer in stock (asked synchronously), and the book it does not carry. */
async function books(key: string): Promise<{ book: CatalogBook; offers: ParsedOffer[]; missing: CatalogBook }> {
  let carried: { book: CatalogBook; offers: ParsedOffer[] } | undefined;
  let missing: CatalogBook | undefined;
  for (const book of CATALOG) {
    const res = await call(input(key), 'quote', values(key, book));
    if (res.status === 404) missing ??= book;
    else if (!carried) {
      const offers = offersOf(input(key), res.json);
      if (offers.length > 0 && offers.every((o) => o.available)) carried = { book, offers };
    }
    if (carried && missing) return { ...carried, missing };
  }
  throw new Error(`${key}: no carried and uncarried book found`);
}

beforeEach(async () => {
  received = [];
  receiverStatus = 200;
  await startFleet();
});

afterEach(async () => {
  await fleet?.stop();
});

const SHAPES = [
  ['pageturner', 'flat', 201],
  ['novella', 'offers', 200],
] as const;

describe('sandbox sellers ready for asynchronous mode', () => {
  it('carry {{quoteRef}} and {{callbackUrl}} in every quote template and a deterministic callback secret', async () => {
    const all = fleet.sellerInputs();
    const keys = fleet.specs().map((s) => s.key);
    for (const [i, inp] of all.entries()) {
      const template = JSON.stringify({ path: inp.quote.path, body: inp.quote.body ?? null });
      expect(template).toContain('{{quoteRef}}');
      expect(template).toContain('{{callbackUrl}}');
      expect(inp.callbackSecret).toBe(sandboxCallbackSecret(keys[i]!, 1));
      expect(inp.callbackSecret!.length).toBeGreaterThanOrEqual(16);
      const result = validateSellerInput(inp, { sellerUrls: 'any' });
      expect(result.ok ? [] : result.errors).toEqual([]);
    }
    expect(new Set(all.map((s) => s.callbackSecret)).size).toBe(all.length);
    expect(sandboxCallbackSecret('pageturner')).toBe(sandboxCallbackSecret('pageturner', 1));
    expect(sandboxCallbackSecret('pageturner', 2)).not.toBe(sandboxCallbackSecret('pageturner', 1));

    // Synchronous by default: the extra parameters change nothing and nothing is posted.
    const { book } = await books('pageturner');
    expect((await call(input('pageturner'), 'quote', values('pageturner', book))).status).toBe(200);
    await sleep(50);
    expect(received).toEqual([]);
    expect(fleet.specs().every((s) => s.knobs.async === null)).toBe(true);
  });

  it('is switched through configure() and the admin endpoint, and reset() makes it synchronous again', async () => {
    const knobs = asyncKnobs({ orders: false, delayMs: 25, callbackUrl: `${receiverUrl}/elsewhere` });
    const res = await fetch(`${fleet.url}/_admin/sellers/pageturner`, { method: 'POST', body: JSON.stringify({ async: knobs }) });
    expect(res.status).toBe(200);
    expect(fleet.specs().find((s) => s.key === 'pageturner')!.knobs.async).toEqual(knobs);

    const bad = [{ quotes: 'yes' }, { ...knobs, delayMs: -1 }, { ...knobs, duplicateRate: 2 }, { ...knobs, sometimes: true }, { ...knobs, callbackUrl: 'ftp://x' }, 7];
    for (const async of bad) {
      const refused = await fetch(`${fleet.url}/_admin/sellers/pageturner`, { method: 'POST', body: JSON.stringify({ async }) });
      expect(refused.status, JSON.stringify(async)).toBe(400);
      expect(() => fleet.configure('novella', { async: async as AsyncKnobs })).toThrow(/async/);
    }

    fleet.configure('novella', { async: asyncKnobs() });
    fleet.configure('novella', { async: null });
    expect(fleet.specs().find((s) => s.key === 'novella')!.knobs.async).toBeNull();
    fleet.configure('novella', { async: asyncKnobs() });
    fleet.reset();
    expect(fleet.specs().every((s) => s.knobs.async === null)).toBe(true);
    expect(fleet.stats().novella).toMatchObject({ callbacksSent: 0, callbacksFailed: 0 });
  });
});

describe('asynchronous quotes', () => {
  for (const [key, shape] of SHAPES) {
    it(`answer 202 at once and post the signed result later (${shape})`, async () => {
      const inp = input(key);
      const { book, offers, missing } = await books(key);
      fleet.configure(key, { async: asyncKnobs({ orders: false, delayMs: 200 }) });

      const started = Date.now();
      const res = await call(inp, 'quote', values(key, book, { quoteRef: `ref with spaces & symbols|${key}` }));
      expect(res.status).toBe(202);
      expect(res.json).toEqual({});
      expect(received).toEqual([]);

      await waitFor('the quote callback', () => received.length === 1);
      const [cb] = received;
      expect(cb!.at - started).toBeGreaterThanOrEqual(190);
      expect(cb!.path).toBe(callbackPath(key));
      expect(cb!.headers['content-type']).toBe('application/json');
      expect(signatureValid(cb!, inp.callbackSecret!)).toBe(true);
      expect(signatureValid(cb!, sandboxCallbackSecret('someone-else'))).toBe(false);
      const message = JSON.parse(cb!.raw) as CallbackMessage;
      expect(message).toMatchObject({ type: 'quote', quoteRef: `ref with spaces & symbols|${key}` });
      expect(offersOf(inp, message.body)).toEqual(offers);

      // Not carried: still 404, at once, and nothing is posted.
      expect((await call(inp, 'quote', values(key, missing))).status).toBe(404);
      await sleep(300);
      expect(received).toHaveLength(1);
      expect(fleet.stats()[key]).toMatchObject({ callbacksSent: 1, callbacksFailed: 0 });
      expect(fleet.stats()[key]!.byStatus).toMatchObject({ '202': 1 });
    });
  }

  it('post duplicates when duplicateRate is 1 and late when lateRate is 1', async () => {
    const inp = input('novella');
    const { book } = await books('novella');
    fleet.configure('novella', { async: asyncKnobs({ orders: false, duplicateRate: 1 }) });
    expect((await call(inp, 'quote', values('novella', book, { quoteRef: 'dup' }))).status).toBe(202);
    await waitFor('both copies', () => received.length === 2);
    expect(received[1]!.raw).toBe(received[0]!.raw);
    for (const r of received) expect(signatureValid(r, inp.callbackSecret!)).toBe(true);
    // The receiver has both bodies before the sandbox has read the second answer and counted it.
    await waitFor('both counted as sent', () => fleet.stats().novella?.callbacksSent === 2);
    expect(fleet.stats().novella).toMatchObject({ callbacksSent: 2, callbacksFailed: 0 });

    received = [];
    fleet.configure('novella', { async: asyncKnobs({ orders: false, delayMs: 0, lateRate: 1, lateMs: 300 }) });
    const started = Date.now();
    expect((await call(inp, 'quote', values('novella', book, { quoteRef: 'late' }))).status).toBe(202);
    await sleep(150);
    expect(received).toEqual([]);
    await waitFor('the late callback', () => received.length === 1);
    expect(received[0]!.at - started).toBeGreaterThanOrEqual(290);
    expect(JSON.parse(received[0]!.raw)).toMatchObject({ type: 'quote', quoteRef: 'late' });
  });
});

describe('asynchronous orders', () => {
  for (const [key, shape, placedStatus] of SHAPES) {
    it(`answer 202 and post the outcome: ${placedStatus} placed, the same again on repeat, 409 and 410 refused (${shape})`, async () => {
      const inp = input(key);
      const { book, offers } = await books(key);
      const offer = offers[0]!;
      fleet.setInventory(key, book.isbn, 5);
      fleet.configure(key, { async: asyncKnobs({ quotes: false }) });
      // A (synchronous) quote tells the seller where the broker takes callbacks.
      expect((await call(inp, 'quote', values(key, book))).status).toBe(200);

      const messages = () =>
        arrivedAt(callbackPath(key)).map((r) => {
          expect(signatureValid(r, inp.callbackSecret!)).toBe(true);
          return JSON.parse(r.raw) as Extract<CallbackMessage, { type: 'order' }>;
        });

      const placed = await call(inp, 'order', orderValues(key, book, offer, 'async-1'));
      expect(placed.status).toBe(202);
      expect(placed.json).toEqual({});
      await waitFor('the order callback', () => received.length === 1);
      const [first] = messages();
      expect(first).toMatchObject({ type: 'order', idempotencyKey: 'async-1', status: placedStatus });
      const ledger = fleet.ledger(key);
      expect(ledger).toHaveLength(1);
      expect(parseOrderResponse(first!.body, orderMapping(inp))).toMatchObject({ orderId: ledger[0]!.orderId, totalCents: offer.totalCents });

      // The same key: 202 again, the stored result posted again, nothing placed twice.
      expect((await call(inp, 'order', orderValues(key, book, offer, 'async-1'))).status).toBe(202);
      await waitFor('the repeated callback', () => received.length === 2);
      expect(messages()[1]).toEqual(first);
      expect(fleet.ledger(key)).toHaveLength(1);

      expect((await call(inp, 'order', orderValues(key, book, offer, 'async-2', offer.totalCents - 1))).status).toBe(202);
      await waitFor('the 409', () => received.length === 3);
      expect(messages()[2]).toMatchObject({ type: 'order', idempotencyKey: 'async-2', status: 409 });

      fleet.setInventory(key, book.isbn, 0);
      expect((await call(inp, 'order', orderValues(key, book, offer, 'async-3'))).status).toBe(202);
      await waitFor('the 410', () => received.length === 4);
      expect(messages()[3]).toMatchObject({ type: 'order', idempotencyKey: 'async-3', status: 410 });
      expect(fleet.ledger(key)).toHaveLength(1);

      // The callbackUrl knob overrides the latest quote's.
      fleet.configure(key, { async: asyncKnobs({ quotes: false, callbackUrl: `${receiverUrl}/override` }) });
      expect((await call(inp, 'order', orderValues(key, book, offer, 'async-4'))).status).toBe(202);
      await waitFor('the overridden callback', () => arrivedAt('/override').length === 1);
      expect(JSON.parse(arrivedAt('/override')[0]!.raw)).toMatchObject({ idempotencyKey: 'async-4', status: 410 });
      expect(fleet.stats()[key]).toMatchObject({ callbacksSent: 5, callbacksFailed: 0 });
    });
  }

  it('answers an unreadable order 422 at once', async () => {
    fleet.configure('pageturner', { async: asyncKnobs() });
    const res = await fetch(`${input('pageturner').baseUrl}/orders`, {
      method: 'POST',
      headers: { ...(input('pageturner').headers as Record<string, string>), 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(422);
  });
});

describe('callback delivery', () => {
  it('counts failed attempts and retries each callback up to 3 times; never throws', async () => {
    const { book } = await books('novella');
    receiverStatus = 503;
    fleet.configure('novella', { async: asyncKnobs({ orders: false }) });
    expect((await call(input('novella'), 'quote', values('novella', book))).status).toBe(202);
    await waitFor('four failed attempts', () => fleet.stats().novella!.callbacksFailed === 4);
    await sleep(500);
    expect(fleet.stats().novella).toMatchObject({ callbacksSent: 0, callbacksFailed: 4 });
    expect(received).toHaveLength(4);
    expect(new Set(received.map((r) => r.raw)).size).toBe(1);

    // Connection refused.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/callbacks`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { book: other, offers } = await books('pageturner');
    fleet.configure('pageturner', { async: asyncKnobs({ quotes: false, callbackUrl: deadUrl }) });
    expect((await call(input('pageturner'), 'order', orderValues('pageturner', other, offers[0]!, 'refused-1'))).status).toBe(202);
    await waitFor('four refused attempts', () => fleet.stats().pageturner!.callbacksFailed === 4);
    expect(fleet.ledger('pageturner')).toHaveLength(1);

    // No quote yet and no callbackUrl knob: nowhere to post, one failure.
    const { book: third, offers: thirdOffers } = await books('inkwell');
    fleet.reset();
    fleet.configure('inkwell', { async: asyncKnobs({ quotes: false }) });
    expect((await call(input('inkwell'), 'order', orderValues('inkwell', third, thirdOffers[0]!, 'nowhere-1'))).status).toBe(202);
    await waitFor('the undeliverable callback', () => fleet.stats().inkwell!.callbacksFailed === 1);
    expect(fleet.ledger('inkwell')).toHaveLength(1);
  });

  it('stop() cancels pending callbacks and retries and leaves no timers behind', async () => {
    await fleet.stop();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const baseline = timers();
    await startFleet();
    const { book } = await books('pageturner');
    const { book: other } = await books('novella');
    fleet.configure('pageturner', { async: asyncKnobs({ delayMs: 60_000 }) });
    expect((await call(input('pageturner'), 'quote', values('pageturner', book))).status).toBe(202);
    // novella's callback fails once, then waits out its backoff.
    receiverStatus = 500;
    fleet.configure('novella', { async: asyncKnobs({ orders: false, delayMs: 0 }) });
    expect((await call(input('novella'), 'quote', values('novella', other))).status).toBe(202);
    await waitFor('a failed attempt', () => fleet.stats().novella!.callbacksFailed === 1);

    const started = Date.now();
    await fleet.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(timers()).toBeLessThanOrEqual(baseline);
    const count = received.length;
    await sleep(400);
    expect(received).toHaveLength(count);
  });
});
