import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { callbackSignature } from '../src/partners/sandbox/fleet.js';
import { CANCEL, usd } from './support/fixtures.js';
import { startPartnerProxy } from './support/proxy.js';
import { eventually } from './support/server.js';
import { type World, startWorld, trackedRequests } from './support/world.js';

/**
 * Asynchronous partners (API.md "Asynchronous partners", SPEC §5), end to end: quotes and orders
 * answered 202 and settled by signed callbacks to POST /partners/{sellerId}/callbacks; duplicate
 * and late callbacks; forged ones; and callbacks the broker cannot process, kept as dead letters.
 *
 * Two partners: Novella, a sandbox seller switched to the sandbox's own asynchronous mode, and
 * PageTurner behind a small partner-side proxy that, for books the test chooses, answers quotes 202
 * and keeps the seller's real answer — so the test itself posts the callback, when and how it
 * likes, exactly as the partner would (same quoteRef, same callback URL, signed with the seller's
 * callback secret). Each test uses its own book.
 */

const NOVELLA_TIMEOUT_MS = 1_000;

const BOOK = {
  gatsby: '9780743273565',
  catcher: '9780316769488',
  fahrenheit: '9781451673319',
  jane: '9780141441146',
  road: '9780307387899',
  sapiens: '9780062316097',
  beloved: '9781400033416',
  wuthering: '9780141439556',
};

const DETAIL = `query Detail($id: ID!) {
  purchaseRequest(id: $id) {
    id status revision
    order { sellerOrderId seller { id } total { cents } }
    events { type status revision message }
    attempts { attemptNo state paymentState sellerOrderId seller { id } }
  }
}`;
const LEDGER = `query Ledger($id: ID!) { paymentLedger(requestId: $id) { key operation amountCents result effective } }`;
const DEAD_LETTERS = `query Letters($all: Boolean) { deadLetters(includeResolved: $all) { id kind ref payload lastError failures resolvedAt } }`;
const REDRIVE = `mutation Redrive($id: ID!) {
  redriveDeadLetter(id: $id) { deadLetter { id kind ref failures lastError resolvedAt } userErrors { code } }
}`;

/** What the proxy kept of a quote it answered 202: where and how the partner must call back. */
interface Held {
  quoteRef: string;
  callbackUrl: string;
  body: unknown;
}

interface HoldingProxy {
  url: string;
  /** From now on, quotes for this ISBN are answered 202 and the seller's answer is kept. */
  hold(isbn: string): void;
  /** Waits for the first held quote for this ISBN. */
  held(isbn: string): Promise<Held>;
  close(): Promise<void>;
}

/** A partner-side proxy in front of a flat-shaped sandbox seller (quotes are GET …/quote?isbn=…&ref=…&cb=…). */
async function startHoldingProxy(upstream: string): Promise<HoldingProxy> {
  const holding = new Set<string>();
  const kept = new Map<string, Held>();
  const proxy = await startPartnerProxy(upstream, {
    answer(req, res, up) {
      const url = new URL(req.url ?? '/', 'http://proxy');
      const isbn = url.searchParams.get('isbn') ?? '';
      if (req.method === 'GET' && url.pathname.endsWith('/quote') && holding.has(isbn) && up.status === 200) {
        if (!kept.has(isbn)) {
          kept.set(isbn, { quoteRef: url.searchParams.get('ref') ?? '', callbackUrl: url.searchParams.get('cb') ?? '', body: JSON.parse(up.text) });
        }
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{}');
        return true;
      }
      return false;
    },
  });
  return {
    url: proxy.url,
    hold: (isbn) => void holding.add(isbn),
    held: (isbn) => eventually(async () => kept.get(isbn) ?? null, 10_000),
    close: proxy.close,
  };
}

let w: World;
let proxy: HoldingProxy;
/** The proxied PageTurner's broker id and secret, and Novella's. */
let pt: { id: string; secret: string };
let novella: { id: string; secret: string };
/** Requests a test created, canceled after it. */
const { create, cancelAll } = trackedRequests(() => w, CANCEL);

beforeAll(async () => {
  w = await startWorld({
    // Novella's price check at order time is not relied on: a cached price of it is revalidated
    // with a quote, which an asynchronous seller answers by callback.
    sellers: [{ key: 'novella', tier: 1, timeoutMs: NOVELLA_TIMEOUT_MS, orderChecksPrice: false }],
    // A deferred order is looked at again only after 3 s: within that, only its callback settles it.
    env: { ORDER_RETRY_BACKOFF_MS: '3000' },
  });
  proxy = await startHoldingProxy(w.sandbox.url);
  const input = w.sandbox.sellers.find((s) => s.baseUrl.endsWith('/pageturner'))!;
  const res = await w.server.gql(
    `mutation($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { code message } } }`,
    {
      input: {
        ...input,
        name: 'PageTurner (asynchronous)',
        tier: 1,
        // A held quote is waited for this long: the test posts its callback well within it.
        timeoutMs: 10_000,
        offerTtlSeconds: 0,
        baseUrl: `${proxy.url}/pageturner`,
      },
    },
    w.server.tokens.admin,
  );
  if (!res.data?.upsertSeller?.seller) throw new Error(`upsertSeller failed: ${JSON.stringify(res.errors ?? res.data?.upsertSeller)}`);
  pt = { id: res.data.upsertSeller.seller.id, secret: input.callbackSecret! };
  const novellaInput = w.sandbox.sellers.find((s) => s.baseUrl.endsWith('/novella'))!;
  novella = { id: w.sellerIds.novella!, secret: novellaInput.callbackSecret! };
});
afterAll(async () => {
  await w?.close();
  await proxy?.close();
});
afterEach(async () => {
  await cancelAll();
  await w.sandbox.configure('novella', { async: null });
});

const detail = (id: string): Promise<any> => w.detail(id, DETAIL);
/** Polls the detailed view until `predicate` holds. */
const until = (id: string, predicate: (r: any) => boolean, timeoutMs?: number): Promise<any> => w.until(id, predicate, timeoutMs, DETAIL);

async function payments(id: string): Promise<any[]> {
  const res = await w.server.gql(LEDGER, { id }, w.server.tokens.admin);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data.paymentLedger;
}

async function deadLetters(all = false): Promise<any[]> {
  const res = await w.server.gql(DEAD_LETTERS, { all }, w.server.tokens.admin);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data.deadLetters;
}

async function ordersFor(id: string) {
  return (await w.sandbox.ledger()).filter((e) => e.requestId === id);
}

/** The book at one seller only: `qty` new copies at an item price; none at the other. */
async function stockAt(key: 'novella' | 'pageturner', isbn: string, itemCents: number, qty = 10): Promise<void> {
  await w.sandbox.setInventory(key, isbn, qty, 'new');
  await w.sandbox.setPrice(key, isbn, itemCents, 'new');
  await w.sandbox.setInventory(key === 'novella' ? 'pageturner' : 'novella', isbn, 0);
}

/** POSTs a callback as a partner would; `signature` undefined sends none. */
async function postCallback(sellerId: string, raw: string, signature: string | undefined): Promise<{ status: number; body: any }> {
  const res = await fetch(`${w.server.url}/partners/${sellerId}/callbacks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature !== undefined ? { 'X-Signature': signature } : {}) },
    body: raw,
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const count = (r: any, type: string) => r.events.filter((e: { type: string }) => e.type === type).length;
const effective = (calls: any[], operation: string) => calls.filter((c) => c.operation === operation && c.effective);

const ASYNC = { quotes: true, orders: true, delayMs: 100, duplicateRate: 0, lateRate: 0, lateMs: 0 };

describe('asynchronous partners', () => {
  it('resolves a request through callbacks: the quote arrives later, then the order is confirmed later', async () => {
    const isbn = BOOK.gatsby;
    await stockAt('novella', isbn, 1200);
    await w.sandbox.configure('novella', { async: ASYNC });
    const before = (await w.sandbox.stats()).novella!;

    const id = await create(isbn, 5000);
    const r = await until(id, (x) => x.status === 'ORDERED');

    const orders = await ordersFor(id);
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ sellerKey: 'novella', idempotencyKey: `${id}:1` });
    expect(r.order).toMatchObject({ sellerOrderId: orders[0]!.orderId, seller: { id: novella.id } });
    expect(r.attempts).toEqual([expect.objectContaining({ attemptNo: 1, state: 'SUCCEEDED', paymentState: 'CAPTURED' })]);

    const after = await eventually(async () => {
      const s = (await w.sandbox.stats()).novella!;
      return s.callbacksSent - before.callbacksSent >= 2 ? s : null;
    });
    // Both the quote and the order were answered 202 and settled by a callback each.
    expect((after.byStatus['202'] ?? 0) - (before.byStatus['202'] ?? 0)).toBe(2);
    expect(after.callbacksSent - before.callbacksSent).toBe(2);
    expect(after.callbacksFailed).toBe(before.callbacksFailed);
    // The order's callback settled it: nobody had to ask the status endpoint.
    expect(after.orderStatus).toBe(before.orderStatus);

    const calls = await payments(id);
    expect(effective(calls, 'capture')).toEqual([expect.objectContaining({ key: `${id}:1`, amountCents: orders[0]!.totalCents })]);
    expect(effective(calls, 'authorize')).toHaveLength(1);
  });

  it('duplicate callbacks change nothing: one order, one capture, no repeated events', async () => {
    const isbn = BOOK.catcher;
    await stockAt('novella', isbn, 1100);
    await w.sandbox.configure('novella', { async: { ...ASYNC, duplicateRate: 1 } });
    const before = (await w.sandbox.stats()).novella!;

    const id = await create(isbn, 5000);
    await until(id, (x) => x.status === 'ORDERED');
    // Every callback (the quote's and the order's) was delivered twice, and accepted both times.
    await eventually(async () => {
      const s = (await w.sandbox.stats()).novella!;
      return s.callbacksSent - before.callbacksSent >= 4 ? s : null;
    });
    const r = await detail(id);

    expect(await ordersFor(id)).toHaveLength(1);
    expect(r.attempts).toHaveLength(1);
    const calls = await payments(id);
    expect(effective(calls, 'capture')).toHaveLength(1);
    expect(effective(calls, 'authorize')).toHaveLength(1);
    expect(calls.filter((c) => c.operation === 'void')).toEqual([]);

    expect(count(r, 'SEARCH_STARTED')).toBe(1);
    expect(count(r, 'ORDER_STARTED')).toBe(1);
    expect(count(r, 'ORDERED')).toBe(1);
    expect(r.events.at(-1).type).toBe('ORDERED');
    expect(r.events.map((e: { revision: number }) => e.revision)).toEqual(r.events.map((_: unknown, i: number) => i + 1));
    expect(r.revision).toBe(r.events.length);
    const s = (await w.sandbox.stats()).novella!;
    expect(s.callbacksFailed).toBe(before.callbacksFailed);
  });

  it('a quote callback that arrives after the request was canceled does not start an order', async () => {
    const isbn = BOOK.fahrenheit;
    await stockAt('novella', isbn, 1300);
    // The quote's callback comes long after the round stopped waiting for it.
    await w.sandbox.configure('novella', { async: { ...ASYNC, orders: false, lateRate: 1, lateMs: 2_500 } });
    const before = (await w.sandbox.stats()).novella!;

    const id = await create(isbn, 5000);
    await until(id, (r) => r.status === 'OUT_OF_STOCK' || r.status === 'QUOTED');
    const canceled = await w.server.gql(CANCEL, { id });
    expect(canceled.data.cancelPurchaseRequest.purchaseRequest.status).toBe('CANCELED');
    const revision = (await detail(id)).revision;

    await eventually(async () => (await w.sandbox.stats()).novella!.callbacksSent > before.callbacksSent, 10_000);
    const r = await detail(id);
    expect(r.status).toBe('CANCELED');
    expect(r.revision).toBe(revision);
    expect(r.attempts).toEqual([]);
    expect(await ordersFor(id)).toEqual([]);
    expect(await payments(id)).toEqual([]);
    expect((await w.sandbox.stats()).novella!.order).toBe(before.order);
  });

  it('a quote callback that arrives after the request expired does not start an order', async () => {
    const isbn = BOOK.jane;
    await stockAt('novella', isbn, 1000);
    await w.sandbox.configure('novella', { async: { ...ASYNC, orders: false, lateRate: 1, lateMs: 3_500 } });
    const before = (await w.sandbox.stats()).novella!;

    const id = await create(isbn, 5000, { expiresAt: new Date(Date.now() + 1_500).toISOString() });
    await until(id, (r) => r.status === 'EXPIRED');
    const revision = (await detail(id)).revision;

    await eventually(async () => (await w.sandbox.stats()).novella!.callbacksSent > before.callbacksSent, 10_000);
    const r = await detail(id);
    expect(r.status).toBe('EXPIRED');
    expect(r.revision).toBe(revision);
    expect(r.attempts).toEqual([]);
    expect(await ordersFor(id)).toEqual([]);
    expect(await payments(id)).toEqual([]);
    expect((await w.sandbox.stats()).novella!.order).toBe(before.order);
  });

  it('a second request for a book an asynchronous seller quoted moments ago is ordered too (its cached offer is revalidated)', async () => {
    const isbn = BOOK.wuthering;
    await stockAt('novella', isbn, 900);
    await w.sandbox.configure('novella', { async: { ...ASYNC, orders: false } });

    const first = await create(isbn, 5000);
    await until(first, (r) => r.status === 'ORDERED');
    // Same book, same seller, copies left: nothing stands in the way but the cached offer.
    const quotes = (await w.sandbox.stats()).novella!.quote;
    const second = await create(isbn, 5000);
    const r = await until(second, (x) => x.status === 'ORDERED', 15_000);
    expect(r.order.seller.id).toBe(novella.id);
    // A fresh quote, answered by callback, before the order on the cached price (one more if the
    // callback came later than Novella's timeout and the revalidation was tried again).
    expect((await w.sandbox.stats()).novella!.quote).toBeGreaterThanOrEqual(quotes + 1);
    expect(await ordersFor(second)).toHaveLength(1);
  });
});

describe('callback authenticity', () => {
  it('refuses forged callbacks (401/404/400) and they change nothing; the genuine one then orders, and its duplicate is a no-op', async () => {
    const isbn = BOOK.road;
    await stockAt('pageturner', isbn, 1000);
    proxy.hold(isbn);
    const id = await create(isbn, 5000);
    const held = await proxy.held(isbn);
    expect(held.callbackUrl).toBe(`${w.server.url}/partners/${pt.id}/callbacks`);

    const genuine = JSON.stringify({ type: 'quote', quoteRef: held.quoteRef, body: held.body });
    const cheaper = JSON.stringify({ type: 'quote', quoteRef: held.quoteRef, body: { ...(held.body as object), price: '0.50' } });
    const sign = (raw: string, secret = pt.secret, t = nowSeconds()) => callbackSignature(secret, raw, t);
    const lettersBefore = (await deadLetters(true)).length;
    const r0 = await until(id, (r) => r.status === 'SEARCHING');

    const forged: Array<[string, string, string, string | undefined, number]> = [
      ['no signature', pt.id, genuine, undefined, 401],
      ['a signature of zeros', pt.id, genuine, `t=${nowSeconds()},v1=${'0'.repeat(64)}`, 401],
      ['a garbled signature header', pt.id, genuine, 'v1=abc', 401],
      ["signed with another seller's secret", pt.id, genuine, sign(genuine, novella.secret), 401],
      ['a body changed after signing', pt.id, cheaper, sign(genuine), 401],
      ['a timestamp six minutes old', pt.id, genuine, sign(genuine, pt.secret, nowSeconds() - 360), 401],
      ['a timestamp six minutes ahead', pt.id, genuine, sign(genuine, pt.secret, nowSeconds() + 360), 401],
      ['an unknown seller id', randomUUID(), genuine, sign(genuine), 404],
      ['a seller id that is not an id', 'pageturner', genuine, sign(genuine), 404],
      ['a body that is not JSON', pt.id, 'quote: cheap', sign('quote: cheap'), 400],
      ['neither a quote nor an order', pt.id, '{"type":"refund","amount":1}', sign('{"type":"refund","amount":1}'), 400],
      ['a quote without its reference', pt.id, '{"type":"quote","body":{}}', sign('{"type":"quote","body":{}}'), 400],
    ];
    for (const [what, sellerId, raw, signature, status] of forged) {
      const res = await postCallback(sellerId, raw, signature);
      expect(res.status, what).toBe(status);
    }
    // Properly signed by another seller, for a quote that seller was never asked for: accepted, ignored.
    const crossed = await postCallback(novella.id, genuine, sign(genuine, novella.secret));
    expect(crossed.status).toBe(200);
    expect(crossed.body).toMatchObject({ result: 'ignored' });

    const r1 = await detail(id);
    expect(r1.status).toBe('SEARCHING');
    expect(r1.revision).toBe(r0.revision);
    expect(r1.attempts).toEqual([]);
    expect(await ordersFor(id)).toEqual([]);
    expect((await deadLetters(true)).length).toBe(lettersBefore);

    const accepted = await postCallback(pt.id, genuine, sign(genuine));
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ result: 'applied' });
    const r2 = await until(id, (r) => r.status === 'ORDERED');
    expect(r2.order.seller.id).toBe(pt.id);
    const orders = await ordersFor(id);
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ sellerKey: 'pageturner', idempotencyKey: `${id}:1` });

    const again = await postCallback(pt.id, genuine, sign(genuine));
    expect(again.status).toBe(200);
    const r3 = await detail(id);
    expect(r3.revision).toBe(r2.revision);
    expect(await ordersFor(id)).toHaveLength(1);
    expect(effective(await payments(id), 'capture')).toHaveLength(1);
    expect((await deadLetters(true)).length).toBe(lettersBefore);
  });

  it('a signed callback for an unknown idempotency key or quote reference is a 200 no-op', async () => {
    const ledgerBefore = (await w.sandbox.ledger()).length;
    const lettersBefore = (await deadLetters(true)).length;

    const order = JSON.stringify({
      type: 'order',
      idempotencyKey: `${randomUUID()}:1`,
      status: 201,
      body: { order: { id: 'PAG-FORGED-000001', total: '10.00', eta: '2030-01-01' } },
    });
    const o = await postCallback(pt.id, order, callbackSignature(pt.secret, order));
    expect(o.status).toBe(200);
    expect(o.body).toMatchObject({ result: 'ignored' });

    const quote = JSON.stringify({ type: 'quote', quoteRef: 'no-such-quote', body: { price: '1.00' } });
    const q = await postCallback(pt.id, quote, callbackSignature(pt.secret, quote));
    expect(q.status).toBe(200);
    expect(q.body).toMatchObject({ result: 'ignored' });

    expect((await w.sandbox.ledger()).length).toBe(ledgerBefore);
    expect((await deadLetters(true)).length).toBe(lettersBefore);
  });
});

describe('dead letters', () => {
  it('keeps a callback it cannot process as a dead letter, visible to admins; a re-drive that still fails records another failure', async () => {
    const isbn = BOOK.sapiens;
    await stockAt('pageturner', isbn, 2000);
    proxy.hold(isbn);
    const id = await create(isbn, 8000);
    const held = await proxy.held(isbn);
    const r0 = await until(id, (r) => r.status === 'SEARCHING');

    // A quote the seller's mapping cannot read (the price is not an amount).
    const unreadable = JSON.stringify({ type: 'quote', quoteRef: held.quoteRef, body: { price: 'twelve dollars', stock: 3 } });
    const res = await postCallback(pt.id, unreadable, callbackSignature(pt.secret, unreadable));
    expect(res.status).toBeGreaterThanOrEqual(200);
    expect(res.status).toBeLessThan(300);

    const letters = await deadLetters();
    const letter = letters.find((l) => l.kind === 'callback' && l.payload?.quoteRef === held.quoteRef);
    expect(letter).toMatchObject({ kind: 'callback', ref: pt.id, failures: 1, resolvedAt: null, payload: { type: 'quote', quoteRef: held.quoteRef } });
    expect(letter.lastError).toMatch(/unreadable quote callback/i);

    for (const op of [
      () => w.server.gql(DEAD_LETTERS, {}, w.server.tokens.alice),
      () => w.server.gql(REDRIVE, { id: letter.id }, w.server.tokens.alice),
    ]) {
      expect((await op()).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }

    const redriven = await w.server.gql(REDRIVE, { id: letter.id }, w.server.tokens.admin);
    expect(redriven.errors).toBeUndefined();
    expect(redriven.data.redriveDeadLetter.userErrors).toEqual([]);
    expect(redriven.data.redriveDeadLetter.deadLetter).toMatchObject({ id: letter.id, failures: 2, resolvedAt: null });
    expect(redriven.data.redriveDeadLetter.deadLetter.lastError).toMatch(/unreadable quote callback/i);
    expect((await deadLetters()).find((l) => l.id === letter.id)).toMatchObject({ failures: 2, resolvedAt: null });

    const unknown = await w.server.gql(REDRIVE, { id: randomUUID() }, w.server.tokens.admin);
    expect(unknown.data.redriveDeadLetter).toMatchObject({ deadLetter: null, userErrors: [{ code: 'NOT_FOUND' }] });

    // The request was not touched; the partner's readable answer still completes it.
    const r1 = await detail(id);
    expect(r1.status).toBe('SEARCHING');
    expect(r1.revision).toBe(r0.revision);
    const genuine = JSON.stringify({ type: 'quote', quoteRef: held.quoteRef, body: held.body });
    expect((await postCallback(pt.id, genuine, callbackSignature(pt.secret, genuine))).status).toBe(200);
    await until(id, (r) => r.status === 'ORDERED');
    expect(await ordersFor(id)).toHaveLength(1);
  });
});
