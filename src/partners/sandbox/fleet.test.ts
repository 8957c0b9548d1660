import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseOrderResponse, parseQuoteResponse, type OrderMapping, type ParsedOffer, type QuoteMapping } from '../mapping.js';
import { PartnerConnector } from '../connector.js';
import { type SellerInputShape, validateSellerInput } from '../seller-config.js';
import { renderBody, renderPath, renderText } from '../template.js';
import { CATALOG, type CatalogBook } from './catalog.js';
import { defaultSellerSpecs, quietKnobs, type SandboxSellerSpec, SandboxError, SandboxFleet } from './fleet.js';

// ---- a minimal generic-connector client: render the templates, call, map the answer ----

type Kind = 'quote' | 'order' | 'orderStatus';

interface Call {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

const SHIP_TO = {
  name: 'Ada Lovelace',
  line1: '12 St James Sq',
  line2: null,
  city: 'London',
  region: 'LND',
  postalCode: 'SW1Y 4JH',
  country: 'GB',
};

function values(book: Partial<CatalogBook>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    isbn: book.isbn ?? null,
    title: book.title ?? '',
    author: book.author ?? '',
    requestId: 'req-0001',
    condition: 'any',
    quoteRef: 'qr-1',
    callbackUrl: 'http://127.0.0.1:1/callbacks',
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

async function call(input: SellerInputShape, kind: Kind, vals: Record<string, unknown>, signal?: AbortSignal): Promise<Call> {
  const ep = input[kind]!;
  const headers = { ...renderHeaders(input.headers, vals), ...renderHeaders(ep.headers, vals) };
  let body: string | undefined;
  if (ep.body !== undefined && ep.body !== null) {
    body = JSON.stringify(renderBody(ep.body, vals));
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(input.baseUrl + renderPath(ep.path, vals), {
    method: ep.method,
    headers,
    ...(body !== undefined ? { body } : {}),
    ...(signal ? { signal } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const quoteMapping = (input: SellerInputShape) => input.quote.response as QuoteMapping;
const orderMapping = (input: SellerInputShape, kind: 'order' | 'orderStatus' = 'order') => input[kind]!.response as OrderMapping;

async function quoteOffers(input: SellerInputShape, vals: Record<string, unknown>): Promise<ParsedOffer[] | null> {
  const res = await call(input, 'quote', vals);
  if (res.status === 404) return null;
  expect(res.status).toBe(200);
  const parsed = parseQuoteResponse(res.json, quoteMapping(input));
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.offers;
}

const orderValues = (book: CatalogBook, offer: ParsedOffer, key: string) =>
  values(book, {
    idempotencyKey: key,
    offerId: offer.offerId,
    totalCents: offer.totalCents,
    total: `${Math.floor(offer.totalCents / 100)}.${String(offer.totalCents % 100).padStart(2, '0')}`,
  });

// ---- fixtures ----

let fleet: SandboxFleet;
let inputs: Map<string, SellerInputShape>;

async function startFleet(options: ConstructorParameters<typeof SandboxFleet>[0] = {}): Promise<void> {
  fleet = new SandboxFleet({ latencyScale: 0, ...options });
  await fleet.start();
  const specs = fleet.specs();
  inputs = new Map(fleet.sellerInputs().map((input, i) => [specs[i]!.key, input]));
}

const input = (key: string) => inputs.get(key)!;

/** The first in-print book the seller quotes (in the given condition), with its offers. */
async function carriedBook(key: string, condition = 'any'): Promise<{ book: CatalogBook; offers: ParsedOffer[] }> {
  for (const book of CATALOG) {
    const offers = await quoteOffers(input(key), values(book, { condition }));
    if (offers && offers.length > 0 && offers.every((o) => o.available)) return { book, offers };
  }
  throw new Error(`${key} carries nothing in condition ${condition}`);
}

/** Quote answers of every seller for every book: a fingerprint of the seeded state. */
async function fingerprint(): Promise<string[]> {
  const out: string[] = [];
  for (const [key, inp] of inputs) {
    for (const book of CATALOG) out.push(`${key} ${book.isbn} ${(await call(inp, 'quote', values(book))).text}`);
  }
  return out;
}

afterEach(async () => {
  await fleet?.stop();
});

describe('SandboxFleet configuration', () => {
  beforeEach(() => startFleet());

  it('has 8 default sellers over 3 tiers, both shapes, no faults, tiered latencies', () => {
    const specs = fleet.specs();
    expect(specs).toHaveLength(8);
    expect(specs.filter((s) => s.tier === 1)).toHaveLength(3);
    expect(specs.filter((s) => s.tier === 2)).toHaveLength(3);
    expect(specs.filter((s) => s.tier === 3)).toHaveLength(2);
    expect(specs.filter((s) => s.shape === 'flat').length).toBeGreaterThanOrEqual(2);
    expect(specs.filter((s) => s.shape === 'offers').length).toBeGreaterThanOrEqual(2);
    expect(new Set(specs.map((s) => s.priceFactor)).size).toBe(8);
    for (const s of specs) {
      expect(s.knobs.script).toEqual([]);
      expect(s.knobs.down).toBe(false);
      expect(s.knobs.errorRate + s.knobs.timeoutRate + s.knobs.rate429 + s.knobs.malformedRate).toBe(0);
      const median = s.knobs.latency.medianMs;
      if (s.tier === 1) expect(median).toBeLessThan(60);
      if (s.tier === 3) expect(median).toBeGreaterThan(100);
    }
  });

  it('gives connector configurations that the seller validator accepts', () => {
    const all = fleet.sellerInputs();
    expect(all).toHaveLength(8);
    for (const inp of all) {
      const result = validateSellerInput(inp, { sellerUrls: 'any' });
      expect(result.ok ? [] : result.errors).toEqual([]);
      expect(inp.baseUrl.startsWith(`${fleet.url}/`)).toBe(true);
    }
  });

  it('refuses unknown sellers and bad knobs', () => {
    expect(() => fleet.configure('nobody', { down: true })).toThrow(SandboxError);
    expect(() => fleet.configure('pageturner', { errorRate: 2 })).toThrow(/errorRate/);
    expect(() => fleet.configure('pageturner', { script: [{ endpoint: 'quote', fault: 'reject409' }] })).toThrow(/order endpoint/);
    expect(() => fleet.setInventory('pageturner', '9780000000000', 1)).toThrow(SandboxError);
    expect(() => new SandboxFleet({ sellers: [{ ...defaultSellerSpecs()[0]!, key: 'Bad Key' }] })).toThrow(/key/);
  });

  it('answers 401 without the API key and 404 for unknown sellers and paths', async () => {
    const res = await fetch(`${input('pageturner').baseUrl}/quote?isbn=9780141439518`);
    expect(res.status).toBe(401);
    expect((await fetch(`${fleet.url}/nobody/quote`)).status).toBe(404);
    expect((await fetch(`${fleet.url}/pageturner/elsewhere`)).status).toBe(404);
  });
});

describe('SandboxFleet seeding', () => {
  it('is deterministic by seed and differs between seeds', async () => {
    await startFleet({ seed: 7 });
    const first = await fingerprint();
    await fleet.stop();
    await startFleet({ seed: 7 });
    expect(await fingerprint()).toEqual(first);
    await fleet.stop();
    await startFleet({ seed: 8 });
    expect(await fingerprint()).not.toEqual(first);
  });

  it('carries every in-print book somewhere, out-of-print nowhere, scarce books only in lower tiers', async () => {
    await startFleet();
    const tierOf = new Map(fleet.specs().map((s) => [s.key, s.tier]));
    for (const book of CATALOG) {
      const carriers: string[] = [];
      for (const [key, inp] of inputs) {
        const offers = await quoteOffers(inp, values(book));
        if (offers && offers.length > 0) carriers.push(key);
      }
      if (book.outOfPrint) expect(carriers, book.title).toEqual([]);
      else expect(carriers.length, book.title).toBeGreaterThan(0);
      for (const key of carriers) expect(tierOf.get(key)!, `${book.title} at ${key}`).toBeGreaterThanOrEqual(book.minTier ?? 1);
    }
  });

  it('ranks sellers differently from book to book', async () => {
    await startFleet();
    const cheapest = new Set<string>();
    for (const book of CATALOG.filter((b) => !b.outOfPrint && !b.minTier)) {
      let best: { key: string; total: number } | null = null;
      for (const [key, inp] of inputs) {
        for (const offer of (await quoteOffers(inp, values(book, { condition: 'new' }))) ?? []) {
          if (!best || offer.totalCents < best.total) best = { key, total: offer.totalCents };
        }
      }
      if (best) cheapest.add(best.key);
    }
    expect(cheapest.size).toBeGreaterThanOrEqual(3);
  });
});

describe('SandboxFleet through the generic connector', () => {
  beforeEach(() => startFleet());

  for (const key of ['pageturner', 'novella', 'dogear', 'remainders']) {
    it(`quotes, orders and reports order status for ${key}`, async () => {
      const inp = input(key);
      const { book, offers } = await carriedBook(key);
      const offer = offers[0]!;
      expect(offer.currency).toBe('USD');
      expect(offer.offerId).toBeTruthy();
      expect(offer.inventory).toBeGreaterThan(0);
      expect(offer.totalCents).toBe(offer.itemCents + offer.shippingCents + offer.taxCents + offer.feesCents);
      expect(offer.totalCents).toBe(fleet.currentTotal(key, offer.offerId!));

      const placed = await call(inp, 'order', orderValues(book, offer, `${key}-attempt-1`));
      expect(placed.status).toBeGreaterThanOrEqual(200);
      expect(placed.status).toBeLessThan(300);
      const order = parseOrderResponse(placed.json, orderMapping(inp));
      expect(order.orderId).toBeTruthy();
      expect(order.totalCents).toBe(offer.totalCents);
      expect(order.deliveryEta!.getTime()).toBeGreaterThan(Date.now());

      const status = await call(inp, 'orderStatus', values(book, { idempotencyKey: `${key}-attempt-1` }));
      expect(status.status).toBe(200);
      expect(parseOrderResponse(status.json, orderMapping(inp, 'orderStatus')).orderId).toBe(order.orderId);
      const unknown = await call(inp, 'orderStatus', values(book, { idempotencyKey: `${key}-never-sent` }));
      expect(unknown.status).toBe(404);

      expect(fleet.ledger(key)).toEqual([
        expect.objectContaining({
          sellerKey: key,
          orderId: order.orderId,
          idempotencyKey: `${key}-attempt-1`,
          isbn: book.isbn,
          offerId: offer.offerId,
          totalCents: offer.totalCents,
        }),
      ]);
      // Flat sellers get the request id in the body, offers sellers in a header.
      expect(fleet.ledger(key)[0]!.requestId).toBe('req-0001');
    });
  }

  it('looks books up by title and author when there is no ISBN', async () => {
    const { book, offers } = await carriedBook('novella');
    const byTitle = await quoteOffers(
      input('novella'),
      values({ title: book.title.toUpperCase(), author: ` ${book.author.toLowerCase()} ` }),
    );
    expect(byTitle).toEqual(offers);
    const missing = await call(input('pageturner'), 'quote', values({}));
    expect(missing.status).toBe(400);
  });

  it('answers 404 (flat) or an empty list (offers) for books it does not have', async () => {
    const outOfPrint = CATALOG.find((b) => b.outOfPrint)!;
    expect((await call(input('pageturner'), 'quote', values(outOfPrint))).status).toBe(404);
    expect((await call(input('novella'), 'quote', values(outOfPrint))).status).toBe(404);
    expect((await call(input('pageturner'), 'quote', values({ isbn: '9780000000002' }))).status).toBe(404);
  });

  it('honours the condition parameter', async () => {
    // A used-too offers seller with both conditions for some book.
    const inp = input('chapterhouse');
    let found = false;
    for (const book of CATALOG) {
      const all = (await quoteOffers(inp, values(book))) ?? [];
      if (!all.some((o) => o.condition === 'NEW') || !all.some((o) => o.condition === 'USED')) continue;
      const used = (await quoteOffers(inp, values(book, { condition: 'used' })))!;
      const fresh = (await quoteOffers(inp, values(book, { condition: 'new' })))!;
      expect(used.map((o) => o.condition)).toEqual(['USED']);
      expect(fresh.map((o) => o.condition)).toEqual(['NEW']);
      expect(used[0]!.itemCents).toBeLessThan(fresh[0]!.itemCents);
      found = true;
      break;
    }
    expect(found).toBe(true);

    // A flat used-too seller: a used-only book is quoted used, and refused when new is asked for.
    let usedOnly = false;
    for (const book of CATALOG) {
      const any = await quoteOffers(input('dogear'), values(book));
      if (!any || any[0]!.condition !== 'USED') continue;
      expect((await call(input('dogear'), 'quote', values(book, { condition: 'new' }))).status).toBe(404);
      usedOnly = true;
      break;
    }
    expect(usedOnly).toBe(true);
  });

  it('is idempotent per key: one order, one ledger entry, one copy taken', async () => {
    const inp = input('pageturner');
    const { book, offers } = await carriedBook('pageturner');
    const offer = offers[0]!;
    const first = await call(inp, 'order', orderValues(book, offer, 'same-key'));
    const second = await call(inp, 'order', orderValues(book, offer, 'same-key'));
    expect(second.status).toBe(first.status);
    expect(second.text).toBe(first.text);
    expect(fleet.ledger('pageturner')).toHaveLength(1);
    const after = (await quoteOffers(inp, values(book)))![0]!;
    expect(after.inventory).toBe(offer.inventory! - 1);
  });

  it('refuses a changed price with 409, no stock with 410 and an unknown offer with 422', async () => {
    const inp = input('novella');
    const { book, offers } = await carriedBook('novella', 'new');
    const offer = offers[0]!;

    fleet.setPrice('novella', book.isbn, offer.itemCents + 100);
    const changed = await call(inp, 'order', orderValues(book, offer, 'k-409'));
    expect([changed.status, changed.json]).toEqual([409, { error: 'price_changed' }]);

    const fresh = (await quoteOffers(inp, values(book, { condition: 'new' })))![0]!;
    expect(fresh.totalCents).toBeGreaterThan(offer.totalCents);
    fleet.setInventory('novella', book.isbn, 0);
    const gone = await call(inp, 'order', orderValues(book, fresh, 'k-410'));
    expect([gone.status, gone.json]).toEqual([410, { error: 'out_of_stock' }]);
    expect((await quoteOffers(inp, values(book, { condition: 'new' })))![0]!.available).toBe(false);

    const unknown = await call(inp, 'order', orderValues(book, { ...fresh, offerId: 'NO-SUCH-SKU' }, 'k-422'));
    expect(unknown.status).toBe(422);

    expect(fleet.ledger()).toEqual([]);
    // A refused key was not placed: orderStatus says 404.
    expect((await call(inp, 'orderStatus', values(book, { idempotencyKey: 'k-409' }))).status).toBe(404);
  });

  it('sells a last copy once when two orders race for it', async () => {
    const inp = input('pageturner');
    const { book, offers } = await carriedBook('pageturner');
    fleet.setInventory('pageturner', book.isbn, 1);
    const offer = offers[0]!;
    const results = await Promise.all([
      call(inp, 'order', orderValues(book, offer, 'race-a')),
      call(inp, 'order', orderValues(book, offer, 'race-b')),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 410]);
    expect(fleet.ledger()).toHaveLength(1);
  });

  it('counts calls by endpoint and outcome, and reset() restores the seeded start', async () => {
    const inp = input('pageturner');
    const { book, offers } = await carriedBook('pageturner');
    const before = fleet.stats().pageturner!;
    await call(inp, 'order', orderValues(book, offers[0]!, 'count-1'));
    await call(inp, 'orderStatus', values(book, { idempotencyKey: 'count-1' }));
    await call(inp, 'orderStatus', values(book, { idempotencyKey: 'count-2' }));
    const after = fleet.stats().pageturner!;
    expect(after.order - before.order).toBe(1);
    expect(after.orderStatus - before.orderStatus).toBe(2);
    expect(after.quote).toBe(before.quote);
    expect(after.byStatus['201']).toBe(1);
    expect(after.byStatus['404']! - (before.byStatus['404'] ?? 0)).toBe(1);

    fleet.configure('pageturner', { down: true });
    fleet.setPrice('pageturner', book.isbn, 1);
    fleet.reset();
    expect(fleet.stats().pageturner).toEqual({ quote: 0, order: 0, orderStatus: 0, byStatus: {}, callbacksSent: 0, callbacksFailed: 0 });
    expect(fleet.ledger()).toEqual([]);
    expect(fleet.specs()[0]!.knobs.down).toBe(false);
    expect((await quoteOffers(inp, values(book)))).toEqual(offers);
  });
});

describe('SandboxFleet faults', () => {
  beforeEach(() => startFleet());

  it('plays scripted faults once each, in order, then answers normally', async () => {
    const inp = input('novella');
    const { book } = await carriedBook('novella');
    fleet.configure('novella', {
      script: [
        { endpoint: 'quote', fault: 'error500' },
        { endpoint: 'quote', fault: 'rate429' },
        { endpoint: 'quote', fault: 'malformed' },
      ],
    });
    const e500 = await call(inp, 'quote', values(book));
    expect(e500.status).toBe(500);
    const e429 = await call(inp, 'quote', values(book));
    expect(e429.status).toBe(429);
    expect(e429.headers.get('retry-after')).toBe('1');
    const malformed = await call(inp, 'quote', values(book));
    expect(malformed.status).toBe(200);
    expect(malformed.json).toBeUndefined();
    expect((await call(inp, 'quote', values(book))).status).toBe(200);
    expect(fleet.stats().novella!.byStatus).toMatchObject({ '500': 1, '429': 1 });
    expect(fleet.specs().find((s) => s.key === 'novella')!.knobs.script).toEqual([]);
  });

  it('holds a timed-out call open until the client gives up', async () => {
    const inp = input('pageturner');
    const { book } = await carriedBook('pageturner');
    fleet.configure('pageturner', { script: [{ endpoint: 'quote', fault: 'timeout' }] });
    const started = Date.now();
    await expect(call(inp, 'quote', values(book), AbortSignal.timeout(150))).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(fleet.stats().pageturner!.byStatus.timeout).toBe(1);
    expect((await call(inp, 'quote', values(book))).status).toBe(200);
  });

  it('answers slowly when told to', async () => {
    const inp = input('pageturner');
    const { book } = await carriedBook('pageturner');
    fleet.configure('pageturner', { script: [{ endpoint: 'quote', fault: 'slow', ms: 120 }] });
    const started = Date.now();
    expect((await call(inp, 'quote', values(book))).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
  });

  it('rejects an order with 409 and places nothing', async () => {
    const inp = input('pageturner');
    const { book, offers } = await carriedBook('pageturner');
    fleet.configure('pageturner', { script: [{ endpoint: 'order', fault: 'reject409' }] });
    expect((await call(inp, 'order', orderValues(book, offers[0]!, 'rej'))).status).toBe(409);
    expect(fleet.ledger()).toEqual([]);
  });

  it('places an order and never answers (timeoutAfterSuccess); orderStatus finds it', async () => {
    const inp = input('remainders');
    const { book, offers } = await carriedBook('remainders');
    fleet.configure('remainders', { script: [{ endpoint: 'order', fault: 'timeoutAfterSuccess' }] });
    await expect(call(inp, 'order', orderValues(book, offers[0]!, 'lost-answer'), AbortSignal.timeout(150))).rejects.toThrow();
    expect(fleet.ledger('remainders')).toHaveLength(1);
    const status = await call(inp, 'orderStatus', values(book, { idempotencyKey: 'lost-answer' }));
    expect(status.status).toBe(200);
    expect(parseOrderResponse(status.json, orderMapping(inp, 'orderStatus')).orderId).toBe(fleet.ledger()[0]!.orderId);
    // The retry with the same key gets the order, not a second one.
    const retry = await call(inp, 'order', orderValues(book, offers[0]!, 'lost-answer'));
    expect(retry.status).toBe(200);
    expect(fleet.ledger()).toHaveLength(1);
  });

  it('drops the connection when the seller is down', async () => {
    const { book } = await carriedBook('dogear');
    fleet.configure('dogear', { down: true });
    await expect(call(input('dogear'), 'quote', values(book))).rejects.toThrow();
    expect(fleet.stats().dogear!.byStatus.down).toBe(1);
    fleet.configure('dogear', { down: false });
    expect((await call(input('dogear'), 'quote', values(book))).status).toBe(200);
  });

  it('draws rate-based faults from the seed', async () => {
    const { book } = await carriedBook('pageturner');
    const run = async () => {
      fleet.reset();
      fleet.configure('pageturner', { errorRate: 0.5 });
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) statuses.push((await call(input('pageturner'), 'quote', values(book))).status);
      return statuses;
    };
    const first = await run();
    expect(first.filter((s) => s === 500).length).toBeGreaterThan(5);
    expect(first.filter((s) => s === 200).length).toBeGreaterThan(5);
    expect(await run()).toEqual(first);
  });

  it('stop() closes held and waiting calls and leaves no timers behind', async () => {
    await fleet.stop();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const baseline = timers();
    await startFleet({ latencyScale: 1 });
    const { book } = await carriedBook('pageturner');
    fleet.configure('pageturner', {
      script: [
        { endpoint: 'quote', fault: 'timeout' },
        { endpoint: 'quote', fault: 'slow', ms: 60_000 },
      ],
    });
    const q0 = fleet.stats().pageturner!.quote;
    const held = call(input('pageturner'), 'quote', values(book)).then(() => 'answered', () => 'closed');
    const slow = call(input('pageturner'), 'quote', values(book)).then(() => 'answered', () => 'closed');
    const deadline = Date.now() + 5_000;
    while (fleet.stats().pageturner!.quote < q0 + 2 && Date.now() < deadline) {
      await new Promise((r) => setImmediate(r));
    }
    const started = Date.now();
    await fleet.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await held).toBe('closed');
    expect(await slow).toBe('closed');
    expect(timers()).toBeLessThanOrEqual(baseline);
  });
});

describe('SandboxFleet with custom sellers', () => {
  it('accepts a custom seller list', async () => {
    const spec: SandboxSellerSpec = {
      key: 'solo',
      name: 'Solo Books',
      tier: 1,
      shape: 'offers',
      priceFactor: 1,
      shippingCents: 0,
      taxRate: 0,
      feeCents: 0,
      carries: 1,
      usedToo: false,
      knobs: quietKnobs(10, 20),
    };
    await startFleet({ sellers: [spec] });
    expect(fleet.sellerInputs()).toHaveLength(1);
    for (const book of CATALOG.filter((b) => !b.outOfPrint && !b.minTier)) {
      const offers = await quoteOffers(input('solo'), values(book));
      expect(offers?.length, book.title).toBe(1);
    }
  });
});

describe('SandboxFleet title search', () => {
  beforeEach(() => startFleet());

  const TITLE_SELLERS = ['pageturner', 'novella', 'chapterhouse', 'dogear', 'remainders'];
  const ISBN_ONLY = ['inkwell', 'foliofox', 'oldbindery'];
  /** A quote (or order) for a book given by title (and maybe author), with no ISBN. */
  const byTitle = (title: string, author: string | null = null, extra: Record<string, unknown> = {}) =>
    values({}, { title, author, ...extra });
  const surname = (author: string) => author.split(/[;]/)[0]!.trim().split(/\s+/).pop()!;

  it('has five title-searching sellers (both shapes, every tier) and three ISBN-only ones', () => {
    const specs = fleet.specs();
    const searching = specs.filter((s) => s.titleSearch !== false);
    expect(searching.map((s) => s.key)).toEqual(TITLE_SELLERS);
    expect(specs.filter((s) => s.titleSearch === false).map((s) => s.key)).toEqual(ISBN_ONLY);
    expect(new Set(searching.map((s) => s.shape))).toEqual(new Set(['flat', 'offers']));
    expect(new Set(searching.map((s) => s.tier))).toEqual(new Set([1, 2, 3]));
  });

  it('finds a book by its title alone (any case, punctuation, spacing, leading article) with the offers its ISBN gets', async () => {
    for (const key of TITLE_SELLERS) {
      const { book, offers } = await carriedBook(key);
      const messy = `  ${book.title.toUpperCase().replace(/^THE /, '').replace(/ /g, '   ')} !`;
      expect(await quoteOffers(input(key), byTitle(messy)), `${key}: ${messy}`).toEqual(offers);
      const withArticle = /^(the|a|an) /i.test(book.title) ? book.title : `The ${book.title}`;
      expect(await quoteOffers(input(key), byTitle(withArticle)), key).toEqual(offers);
    }
  });

  it('quotes every in-print book by title somewhere, always at the same prices as by ISBN', async () => {
    for (const book of CATALOG.filter((b) => !b.outOfPrint)) {
      let carriers = 0;
      for (const key of TITLE_SELLERS) {
        const viaIsbn = await quoteOffers(input(key), values({ isbn: book.isbn }));
        const viaTitle = await quoteOffers(input(key), byTitle(book.title));
        const viaTitleAuthor = await quoteOffers(input(key), byTitle(book.title, book.author));
        expect(viaTitle, `${key}: ${book.title}`).toEqual(viaIsbn);
        expect(viaTitleAuthor, `${key}: ${book.title} by ${book.author}`).toEqual(viaIsbn);
        if (viaTitle && viaTitle.length > 0) carriers += 1;
      }
      expect(carriers, book.title).toBeGreaterThan(0);
    }
  });

  it('narrows a title by author: a surname or initials match, another author finds nothing', async () => {
    for (const key of ['pageturner', 'novella']) {
      const { book, offers } = await carriedBook(key);
      expect(await quoteOffers(input(key), byTitle(book.title, surname(book.author).toUpperCase())), key).toEqual(offers);
      expect(await quoteOffers(input(key), byTitle(book.title, book.author.replace(/\./g, ''))), key).toEqual(offers);
      const wrong = await call(input(key), 'quote', byTitle(book.title, 'Stephen King'));
      expect(wrong.status, key).toBe(404);
    }
    const tolkien = CATALOG.find((b) => b.title === 'The Hobbit')!;
    let carrier = '';
    let viaIsbn: ParsedOffer[] | null = null;
    for (const key of TITLE_SELLERS) {
      viaIsbn = await quoteOffers(input(key), values({ isbn: tolkien.isbn }));
      carrier = key;
      if (viaIsbn && viaIsbn.length > 0) break;
    }
    expect(viaIsbn?.length).toBeGreaterThan(0);
    for (const author of ['Tolkien', 'JRR Tolkien', 'J.R.R. Tolkien', 'tolkien, j. r. r.']) {
      expect(await quoteOffers(input(carrier), byTitle('hobbit', author)), author).toEqual(viaIsbn);
    }
  });

  it('answers 404 (does not carry) for a title that is not in the catalog or an out-of-print one', async () => {
    const outOfPrint = CATALOG.find((b) => b.outOfPrint)!;
    for (const key of ['pageturner', 'novella']) {
      const unknown = await call(input(key), 'quote', byTitle('A Book Nobody Ever Wrote', 'Anonymous'));
      expect(unknown.status, key).toBe(404);
      expect((await call(input(key), 'quote', byTitle('A Book Nobody Ever Wrote'))).status, key).toBe(404);
      expect((await call(input(key), 'quote', byTitle(outOfPrint.title))).status, key).toBe(404);
    }
    expect((await call(input('pageturner'), 'quote', byTitle('A Book Nobody Ever Wrote'))).json).toEqual({ error: 'not_carried' });
  });

  it('ISBN-only sellers answer 400 "isbn is required" to a quote without an ISBN, and quote by ISBN as before', async () => {
    const dune = CATALOG.find((b) => b.title === 'Dune')!;
    for (const key of ISBN_ONLY) {
      for (const vals of [byTitle(dune.title), byTitle(dune.title, dune.author)]) {
        const res = await call(input(key), 'quote', vals);
        expect(res.status, key).toBe(400);
        expect(res.headers.get('content-type'), key).toMatch(/application\/json/);
        expect(JSON.stringify(res.json), key).toContain('isbn is required');
      }
      const { offers } = await carriedBook(key);
      expect(offers.length, key).toBeGreaterThan(0);
    }
    expect((await call(input('inkwell'), 'quote', byTitle('Dune'))).json).toEqual({ error: 'isbn_required', message: 'isbn is required' });
    expect((await call(input('foliofox'), 'quote', byTitle('Dune'))).json).toEqual({
      error: { code: 'ISBN_REQUIRED', message: 'isbn is required' },
    });
    // A title-searching seller asked for no book at all.
    expect((await call(input('novella'), 'quote', byTitle('  '))).status).toBe(400);
  });

  for (const key of ['pageturner', 'novella']) {
    it(`${key} places an order for an offer found by title (the order carries no ISBN)`, async () => {
      const { book } = await carriedBook(key);
      const offer = (await quoteOffers(input(key), byTitle(book.title)))!.find((o) => o.available)!;
      const placed = await call(
        input(key),
        'order',
        byTitle(book.title, null, {
          idempotencyKey: `${key}-by-title-1`,
          offerId: offer.offerId,
          totalCents: offer.totalCents,
          total: `${Math.floor(offer.totalCents / 100)}.${String(offer.totalCents % 100).padStart(2, '0')}`,
        }),
      );
      expect(placed.status, placed.text).toBeGreaterThanOrEqual(200);
      expect(placed.status, placed.text).toBeLessThan(300);
      expect(parseOrderResponse(placed.json, orderMapping(input(key))).totalCents).toBe(offer.totalCents);
      expect(fleet.ledger(key)).toEqual([
        expect.objectContaining({ isbn: book.isbn, offerId: offer.offerId, totalCents: offer.totalCents }),
      ]);
    });
  }

  it('works through the broker\'s own connector: a title-only request (no author) is quoted and bought', async () => {
    const connector = new PartnerConnector();
    try {
      const seller = (key: string) => {
        const checked = validateSellerInput(input(key), { sellerUrls: 'any' });
        if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
        const c = checked.value;
        return { id: key, baseUrl: c.baseUrl, headers: c.headers ?? {}, timeoutMs: c.timeoutMs, quote: c.quote, order: c.order, orderStatus: c.orderStatus };
      };
      const quote = (key: string, isbn: string | null, title: string | null) =>
        connector.quote(seller(key), {
          book: { isbn, title, author: null },
          condition: 'any',
          requestId: 'req-title',
          quoteRef: `qr-${key}`,
          callbackUrl: 'http://127.0.0.1:9/unused',
        });
      for (const key of ['pageturner', 'novella']) {
        const { book } = await carriedBook(key);
        const viaTitle = await quote(key, null, book.title);
        const viaIsbn = await quote(key, book.isbn, null);
        expect(viaTitle.kind, key).toBe('offers');
        if (viaTitle.kind !== 'offers' || viaIsbn.kind !== 'offers') throw new Error('no offers');
        expect(viaTitle.offers, key).toEqual(viaIsbn.offers);
        const offer = viaTitle.offers.find((o) => o.available)!;
        const placed = await connector.order(seller(key), {
          book: { isbn: null, title: book.title, author: null },
          requestId: 'req-title',
          idempotencyKey: `${key}-connector-title`,
          offerId: offer.offerId,
          totalCents: offer.totalCents,
          currency: 'USD',
          shipping: SHIP_TO,
        });
        expect(placed.kind, key).toBe('confirmed');
        expect(fleet.ledger(key).at(-1)).toEqual(expect.objectContaining({ isbn: book.isbn, offerId: offer.offerId }));
      }
      // An ISBN-only seller gives no offers for it (400: it cannot answer this query).
      const refused = await quote('inkwell', null, 'Dune');
      expect(refused.kind).not.toBe('offers');
      expect(fleet.stats().inkwell!.byStatus['400']).toBe(1);
    } finally {
      await connector.close();
    }
  });
});
