import type { IncomingHttpHeaders } from 'node:http';
import { parseAmount } from '../mapping.js';
import type { EndpointInputShape } from '../seller-config.js';

/**
 * The two wire formats the sandbox sellers speak. Each is described once here — routes, how a
 * request is read, how an answer is written, and the connector configuration (templates and
 * response mappings) that lets the broker talk to it — so the two sides cannot drift apart.
 */
export type SellerShape = 'flat' | 'offers';
export type Endpoint = 'quote' | 'order' | 'orderStatus';
export type Condition = 'new' | 'used';
export type WantedCondition = Condition | 'any';
/** How a used copy is described on the `offers` wire; flat sellers just say "used". */
export type Grade = 'NEW' | 'LIKE_NEW' | 'GOOD';

export interface QuoteQuery {
  isbn: string | null;
  title: string;
  author: string;
  condition: WantedCondition;
  /** Asynchronous mode: the broker's reference for this quote and where to post the result. */
  quoteRef: string | null;
  callbackUrl: string | null;
}

export interface OfferView {
  offerId: string;
  condition: Condition;
  grade: Grade;
  itemCents: number;
  shippingCents: number;
  taxCents: number;
  feeCents: number;
  qty: number;
}

export interface OrderRequest {
  idempotencyKey: string;
  offerId: string;
  /** Flat sellers are told the ISBN too and check it against the offer. */
  isbn: string | null;
  /** null when the amount sent is not readable. */
  totalCents: number | null;
  shipTo: unknown;
  requestId: string | null;
}

export interface PlacedOrder {
  orderId: string;
  totalCents: number;
  eta: Date;
}

export interface Reply {
  status: number;
  body: unknown;
}

export interface ShapeCodec {
  /** Which endpoint a method and path (after `/<sellerKey>`) is, with the idempotency key for orderStatus. */
  route(method: string, path: string): { endpoint: Endpoint; idempotencyKey?: string } | null;
  /** The seller's endpoints as connector configuration. */
  endpoints(): { quote: EndpointInputShape; order: EndpointInputShape; orderStatus: EndpointInputShape };
  readQuote(query: URLSearchParams, body: unknown): QuoteQuery | null;
  /** `offers` are the seller's listings in the wanted condition; `carried` says whether it lists the book at all. */
  quoteReply(offers: OfferView[], carried: boolean): Reply;
  /** 400: a quote this seller cannot answer as asked (no ISBN for an ISBN-only seller, no book at all…). */
  queryError(code: string, message: string): Reply;
  readOrder(body: unknown, headers: IncomingHttpHeaders): OrderRequest | null;
  /** The answer to a placed order; orderStatus answers 200 with the same body. */
  orderReply(order: PlacedOrder): Reply;
}

export function centsToDecimal(cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const nonEmpty = (v: unknown): string | null => {
  const s = text(v).trim();
  return s === '' ? null : s;
};

function readCondition(raw: unknown): WantedCondition | null {
  const c = text(raw).trim().toLowerCase();
  if (c === '' || c === 'any') return 'any';
  return c === 'new' || c === 'used' ? c : null;
}

function quoteQuery(
  isbn: unknown,
  title: unknown,
  author: unknown,
  condition: unknown,
  quoteRef: unknown,
  callbackUrl: unknown,
): QuoteQuery | null {
  const wanted = readCondition(condition);
  if (wanted === null) return null;
  return {
    isbn: nonEmpty(isbn),
    title: text(title),
    author: text(author),
    condition: wanted,
    // A reference is taken as sent (not trimmed): the callback must carry it back unchanged.
    quoteRef: typeof quoteRef === 'string' && quoteRef !== '' ? quoteRef : null,
    callbackUrl: nonEmpty(callbackUrl),
  };
}

function decodeSegment(segment: string): string | null {
  try {
    const decoded = decodeURIComponent(segment);
    return decoded === '' ? null : decoded;
  } catch {
    return null;
  }
}

const ETA_DATE = (d: Date) => d.toISOString().slice(0, 10);

const flat: ShapeCodec = {
  route(method, path) {
    if (method === 'GET' && path === '/quote') return { endpoint: 'quote' };
    if (method === 'POST' && path === '/orders') return { endpoint: 'order' };
    const status = /^\/orders\/by-key\/([^/]+)$/.exec(path);
    const key = status && method === 'GET' ? decodeSegment(status[1]!) : null;
    return key === null ? null : { endpoint: 'orderStatus', idempotencyKey: key };
  },
  endpoints() {
    const orderResponse = { orderId: 'order.id', total: 'order.total', deliveryEta: 'order.eta', amounts: 'decimal' };
    return {
      quote: {
        method: 'GET',
        // ref and cb are used only when the seller is switched to asynchronous mode.
        path: '/quote?isbn={{isbn}}&title={{title}}&author={{author}}&condition={{condition}}&ref={{quoteRef}}&cb={{callbackUrl}}',
        response: {
          itemPrice: 'price',
          shipping: 'shipping',
          tax: 'tax',
          fees: 'fees',
          currency: 'currency',
          inventory: 'stock',
          condition: 'condition',
          offerId: 'offer_id',
          amounts: 'decimal',
        },
      },
      order: {
        method: 'POST',
        path: '/orders',
        body: {
          idempotency_key: '{{idempotencyKey}}',
          offer_id: '{{offerId}}',
          isbn: '{{isbn}}',
          total: '{{total}}',
          ship_to: '{{shipping}}',
          request_id: '{{requestId}}',
        },
        response: orderResponse,
      },
      orderStatus: { method: 'GET', path: '/orders/by-key/{{idempotencyKey}}', response: orderResponse },
    };
  },
  readQuote(query) {
    return quoteQuery(
      query.get('isbn'),
      query.get('title'),
      query.get('author'),
      query.get('condition'),
      query.get('ref'),
      query.get('cb'),
    );
  },
  quoteReply(offers) {
    // One offer per answer: the new copy when there is one in stock, else a used one.
    const offer =
      offers.find((o) => o.condition === 'new' && o.qty > 0) ??
      offers.find((o) => o.qty > 0) ??
      offers.find((o) => o.condition === 'new') ??
      offers[0];
    if (!offer) return { status: 404, body: { error: 'not_carried' } };
    return {
      status: 200,
      body: {
        price: centsToDecimal(offer.itemCents),
        shipping: centsToDecimal(offer.shippingCents),
        tax: centsToDecimal(offer.taxCents),
        fees: centsToDecimal(offer.feeCents),
        currency: 'USD',
        stock: offer.qty,
        condition: offer.condition,
        offer_id: offer.offerId,
      },
    };
  },
  queryError(code, message) {
    return { status: 400, body: { error: code, message } };
  },
  readOrder(body) {
    if (!isRecord(body)) return null;
    const idempotencyKey = nonEmpty(body.idempotency_key);
    const offerId = nonEmpty(body.offer_id);
    if (idempotencyKey === null || offerId === null) return null;
    return {
      idempotencyKey,
      offerId,
      isbn: nonEmpty(body.isbn),
      totalCents: parseAmount(body.total, 'decimal'),
      shipTo: body.ship_to,
      requestId: nonEmpty(body.request_id),
    };
  },
  orderReply(order) {
    return {
      status: 201,
      body: { order: { id: order.orderId, total: centsToDecimal(order.totalCents), eta: ETA_DATE(order.eta) } },
    };
  },
};

const offers: ShapeCodec = {
  route(method, path) {
    if (method === 'POST' && path === '/v2/search') return { endpoint: 'quote' };
    if (method === 'POST' && path === '/v2/purchase') return { endpoint: 'order' };
    const status = /^\/v2\/purchase\/([^/]+)$/.exec(path);
    const key = status && method === 'GET' ? decodeSegment(status[1]!) : null;
    return key === null ? null : { endpoint: 'orderStatus', idempotencyKey: key };
  },
  endpoints() {
    const orderResponse = {
      orderId: 'result.orderNumber',
      total: 'result.totalCents',
      deliveryEta: 'result.deliveryDate',
      amounts: 'cents',
    };
    return {
      quote: {
        method: 'POST',
        path: '/v2/search',
        body: {
          isbn: '{{isbn}}',
          title: '{{title}}',
          author: '{{author}}',
          condition: '{{condition}}',
          // Used only when the seller is switched to asynchronous mode.
          quoteRef: '{{quoteRef}}',
          callbackUrl: '{{callbackUrl}}',
        },
        response: {
          offers: 'data.offers',
          itemPrice: 'amountCents',
          shipping: 'shippingCents',
          tax: 'taxCents',
          fees: 'feeCents',
          currency: 'cur',
          inventory: 'qty',
          condition: 'cond',
          offerId: 'sku',
          amounts: 'cents',
        },
      },
      order: {
        method: 'POST',
        path: '/v2/purchase',
        // The request id travels in a header here, so endpoint headers with placeholders are exercised.
        headers: { 'X-Request-Id': '{{requestId}}' },
        body: { key: '{{idempotencyKey}}', sku: '{{offerId}}', amountCents: '{{totalCents}}', address: '{{shipping}}' },
        response: orderResponse,
      },
      orderStatus: { method: 'GET', path: '/v2/purchase/{{idempotencyKey}}', response: orderResponse },
    };
  },
  readQuote(_query, body) {
    if (!isRecord(body)) return null;
    return quoteQuery(body.isbn, body.title, body.author, body.condition, body.quoteRef, body.callbackUrl);
  },
  quoteReply(list, carried) {
    if (!carried) return { status: 404, body: { error: { code: 'NOT_CARRIED' } } };
    return {
      status: 200,
      body: {
        data: {
          offers: list.map((o) => ({
            sku: o.offerId,
            amountCents: o.itemCents,
            shippingCents: o.shippingCents,
            taxCents: o.taxCents,
            feeCents: o.feeCents,
            qty: o.qty,
            cond: o.grade,
            cur: 'USD',
          })),
        },
      },
    };
  },
  queryError(code, message) {
    return { status: 400, body: { error: { code: code.toUpperCase(), message } } };
  },
  readOrder(body, headers) {
    if (!isRecord(body)) return null;
    const idempotencyKey = nonEmpty(body.key);
    const offerId = nonEmpty(body.sku);
    if (idempotencyKey === null || offerId === null) return null;
    const requestId = headers['x-request-id'];
    return {
      idempotencyKey,
      offerId,
      isbn: null,
      totalCents: parseAmount(body.amountCents, 'cents'),
      shipTo: body.address,
      requestId: typeof requestId === 'string' ? nonEmpty(requestId) : null,
    };
  },
  orderReply(order) {
    return {
      status: 200,
      body: {
        result: { orderNumber: order.orderId, totalCents: order.totalCents, deliveryDate: order.eta.toISOString() },
      },
    };
  },
};

export const SHAPES: Readonly<Record<SellerShape, ShapeCodec>> = { flat, offers };
