import { EventEmitter, setMaxListeners } from 'node:events';
import { Agent, type Dispatcher } from 'undici';
import { type Clock, systemClock } from '../domain/clock.js';
import type { Address } from '../domain/types.js';
import { PENDING_STATUS, ORDER_NOT_PLACED_STATUS, QUOTE_NOT_CARRIED_STATUS, isOrderRejected, isQuoteUnanswerable, isSuccess } from './answers.js';
import { parseOrderResponse, parseQuoteResponse, type OrderMapping, type ParsedOffer, type QuoteMapping } from './mapping.js';
import type { EndpointConfig, HttpMethod } from './seller-config.js';
import { renderBody, renderPath, renderText } from './template.js';
import { traceHeaders } from '../infra/tracing.js';

/** What the connector needs of a seller; built from the stored seller row by the caller. */
export interface ConnectorSeller {
  id: string;
  baseUrl: string;
  headers: Record<string, string>;
  timeoutMs: number;
  quote: EndpointConfig;
  order: EndpointConfig;
  orderStatus: EndpointConfig | null;
}

export interface BookRef {
  isbn: string | null;
  title: string | null;
  author: string | null;
}

export interface QuoteParams {
  book: BookRef;
  condition: 'new' | 'used' | 'any';
  requestId: string;
  quoteRef: string;
  callbackUrl: string;
}

export interface OrderParams {
  book: BookRef;
  requestId: string;
  idempotencyKey: string;
  offerId: string | null;
  totalCents: number;
  currency: string;
  shipping: Address;
}

export interface OrderStatusParams {
  book: BookRef;
  requestId: string;
  idempotencyKey: string;
  sellerOrderId: string | null;
}

interface Timing {
  latencyMs: number;
}

/** Why a call failed, as data: retries and breaker accounting read this, never the message. */
export type FailureCause =
  /** The seller's timeout passed before a full answer. */
  | { kind: 'timeout' }
  /** The caller stopped waiting (a round decided, shutdown): says nothing about the seller. */
  | { kind: 'aborted' }
  /** The connection failed before a full answer: the system or undici code (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET…). */
  | { kind: 'network'; errno: string }
  /** An answer with a status this call does not accept. */
  | { kind: 'http'; status: number }
  /** A 2xx whose body could not be read: too large, empty, not JSON, or not what the mapping expects. */
  | { kind: 'unreadable' }
  /** Nothing was sent: the call could not be built (a bad base URL, a header value rendering CR/LF…). */
  | { kind: 'unsendable' };

export type CallFailure = {
  /** For people (logs, `lastError`); decisions read `cause`. */
  reason: string;
  cause: FailureCause;
  /** The answer's HTTP status when there was one (an unreadable 2xx too). */
  status: number | null;
  retryAfterMs: number | null;
};

export type QuoteOutcome = (
  | { kind: 'offers'; offers: ParsedOffer[] }
  | { kind: 'not_carried' }
  /** 400/422: the seller cannot answer this query (API.md). No offers, and not the seller's fault. */
  | { kind: 'unanswerable'; status: number }
  | { kind: 'pending' }
  | ({ kind: 'failed' } & CallFailure)
) &
  Timing;

export type OrderOutcome = (
  | { kind: 'confirmed'; orderId: string; totalCents: number | null; deliveryEta: Date | null }
  | { kind: 'rejected'; status: number; reason: string }
  | { kind: 'pending' }
  | ({ kind: 'unknown' } & CallFailure)
) &
  Timing;

export type OrderStatusOutcome = (
  | { kind: 'placed'; orderId: string; totalCents: number | null; deliveryEta: Date | null }
  | { kind: 'not_placed' }
  | ({ kind: 'unknown' } & CallFailure)
) &
  Timing;

export interface ConnectorOptions {
  /** Keep-alive sockets per partner origin (default 64). */
  connectionsPerOrigin?: number;
  /** Largest response body read (default 1 MiB); larger answers are failed calls. */
  maxResponseBytes?: number;
  userAgent?: string;
  /** Reads HTTP-date Retry-After headers against this clock. */
  clock?: Clock;
  /** Socket options of every connection: under SELLER_URLS=public, the SSRF guard's checked lookup (src/infra/ssrf.ts). */
  connect?: Agent.Options['connect'];
}

const DEFAULT_CONNECTIONS = 64;
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
const DEFAULT_USER_AGENT = 'book-purchase-broker/0.1';
const UNSAFE_HEADER_VALUE = /[\r\n\0]/;

/**
 * Everything about one endpoint of one seller that does not change between calls: origin, path
 * prefix, the merged header list with static values final, and the body pre-serialized when it has
 * no placeholders. `baseUrl` and `sellerHeaders` are the inputs it was built from, so a seller
 * re-saved with a new base URL or headers (but the same endpoint object) is prepared again.
 */
interface PreparedEndpoint {
  readonly baseUrl: string;
  readonly sellerHeaders: Record<string, string>;
  /** Configuration the connector cannot use; every call fails with it. */
  readonly error: string | null;
  readonly origin: string;
  readonly prefix: string;
  readonly method: HttpMethod;
  readonly path: string;
  readonly pathIsTemplate: boolean;
  /** undici's flat `[name, value, name, value…]` form, templated headers left out. */
  readonly staticHeaders: readonly string[];
  readonly templatedHeaders: readonly string[];
  readonly body: unknown;
  readonly staticBody: string | null;
}

/** A finished HTTP exchange (body read and parsed only where it matters), or a failed call. */
type Exchange =
  | { ok: true; status: number; body: unknown; retryAfterMs: number | null }
  | { ok: false; failure: CallFailure };

function failure(reason: string, cause: FailureCause, status: number | null = null): CallFailure {
  return { reason, cause, status, retryAfterMs: null };
}

/** A partner that answered with a status the call does not accept. */
function httpFailure(status: number, retryAfterMs: number | null): CallFailure {
  return { ...failure(`HTTP ${status}`, { kind: 'http', status }, status), retryAfterMs };
}

const ABORTED: FailureCause = { kind: 'aborted' };
const UNREADABLE: FailureCause = { kind: 'unreadable' };
const UNSENDABLE: FailureCause = { kind: 'unsendable' };

function containsPlaceholder(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('{{');
  if (Array.isArray(value)) return value.some(containsPlaceholder);
  if (value !== null && typeof value === 'object') return Object.values(value).some(containsPlaceholder);
  return false;
}

/** Integer cents → exact decimal string ("12.34"); integer arithmetic only. */
export function centsToDecimal(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  const fraction = abs % 100;
  return `${sign}${(abs - fraction) / 100}.${fraction < 10 ? '0' : ''}${fraction}`;
}

/** Retry-After as seconds or an HTTP date → milliseconds from now (never negative); null if unreadable. */
export function parseRetryAfter(raw: string | string[] | undefined, now: number): number | null {
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function noop(): void {}

/**
 * One call's cancellation: the caller's signal or the seller's timeout, whichever comes first.
 * Handed to undici as the EventEmitter its `signal` option takes as well as an AbortSignal: a
 * single light object per call (its own abort listener and timer argument). An AbortController
 * per call, an EventTarget built and listened on for every call, was 3–4% of the broker's busy
 * time in the fan-out benchmark; `AbortSignal.any([signal, AbortSignal.timeout(ms)])`, whose
 * weak-ref bookkeeping dominates at partner-call rates, about a quarter more than that.
 */
class CallDeadline extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  timedOut = false;
  readonly #timer: NodeJS.Timeout;
  readonly #caller: AbortSignal | undefined;

  constructor(timeoutMs: number, caller: AbortSignal | undefined) {
    super();
    this.#timer = setTimeout(expire, timeoutMs, this);
    this.#caller = caller;
    if (caller !== undefined) {
      // One listener per call in flight, removed when it ends: a round's signal shared by many
      // partner calls is not a leak, so Node's listener-count warning would only be noise.
      setMaxListeners(0, caller);
      caller.addEventListener('abort', this);
    }
  }

  handleEvent(): void {
    this.abort(this.#caller?.reason);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }

  release(): void {
    clearTimeout(this.#timer);
    this.#caller?.removeEventListener('abort', this);
  }
}

function expire(deadline: CallDeadline): void {
  deadline.timedOut = true;
  deadline.abort(new DOMException('The partner call timed out', 'TimeoutError'));
}

/** Drops a response body unread; its socket is closed rather than reused half-read. */
function discard(body: Dispatcher.ResponseData['body']): void {
  if (body.destroyed) return;
  // Destroying an unfinished body emits an AbortError; nobody else is listening for it.
  body.on('error', noop);
  body.destroy();
}

/**
 * The code of a connection failure. undici wraps socket errors (UND_ERR_SOCKET) around the system
 * error that caused them: the system code (ECONNRESET) is the more telling, so it wins.
 */
export function errnoOf(err: unknown): string {
  let fallback: string | null = null;
  let cur: unknown = err;
  for (let depth = 0; cur instanceof Error && depth < 5; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (/^E[A-Z0-9_]+$/.test(code)) return code;
      fallback ??= code;
    }
    cur = cur.cause;
  }
  return fallback ?? 'UNKNOWN';
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/**
 * Calls partners described as data (API.md "Partner endpoints"). Every call resolves to an outcome;
 * nothing throws, so callers decide retries and breaker accounting from `kind` alone.
 */
export class PartnerConnector {
  readonly #agent: Agent;
  readonly #maxResponseBytes: number;
  readonly #userAgent: string;
  readonly #clock: Clock;
  // Keyed by the endpoint object: seller configurations are treated as immutable values.
  readonly #prepared = new WeakMap<EndpointConfig, PreparedEndpoint>();

  constructor(options: ConnectorOptions = {}) {
    this.#agent = new Agent({
      connections: options.connectionsPerOrigin ?? DEFAULT_CONNECTIONS,
      pipelining: 1,
      ...(options.connect ? { connect: options.connect } : {}),
    });
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.#userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.#clock = options.clock ?? systemClock;
  }

  async quote(seller: ConnectorSeller, params: QuoteParams, signal?: AbortSignal): Promise<QuoteOutcome> {
    const started = performance.now();
    const { book } = params;
    const values = {
      isbn: book.isbn,
      title: book.title,
      author: book.author,
      condition: params.condition,
      requestId: params.requestId,
      quoteRef: params.quoteRef,
      callbackUrl: params.callbackUrl,
    };
    const result = await this.#exchange(seller, seller.quote, values, signal, true);
    if (!result.ok) return { kind: 'failed', ...result.failure, latencyMs: performance.now() - started };
    const { status } = result;
    if (status === PENDING_STATUS) return { kind: 'pending', latencyMs: performance.now() - started };
    if (status === QUOTE_NOT_CARRIED_STATUS) return { kind: 'not_carried', latencyMs: performance.now() - started };
    if (isQuoteUnanswerable(status)) return { kind: 'unanswerable', status, latencyMs: performance.now() - started };
    if (!isSuccess(status)) {
      return { kind: 'failed', ...httpFailure(status, result.retryAfterMs), latencyMs: performance.now() - started };
    }
    const parsed = parseQuoteResponse(result.body, seller.quote.response as unknown as QuoteMapping);
    if (!parsed.ok) {
      return {
        kind: 'failed',
        ...failure(`unreadable quote: ${parsed.reason}`, UNREADABLE, status),
        latencyMs: performance.now() - started,
      };
    }
    return { kind: 'offers', offers: parsed.offers, latencyMs: performance.now() - started };
  }

  async order(seller: ConnectorSeller, params: OrderParams, signal?: AbortSignal): Promise<OrderOutcome> {
    const started = performance.now();
    const { book, shipping } = params;
    const line2 = shipping.line2 ?? null;
    const region = shipping.region ?? null;
    const values = {
      isbn: book.isbn,
      title: book.title,
      author: book.author,
      requestId: params.requestId,
      idempotencyKey: params.idempotencyKey,
      offerId: params.offerId,
      totalCents: params.totalCents,
      total: centsToDecimal(params.totalCents),
      currency: params.currency,
      // A fresh object with exactly the documented fields, so nothing else of the caller's leaks.
      shipping: {
        name: shipping.name,
        line1: shipping.line1,
        line2,
        city: shipping.city,
        region,
        postalCode: shipping.postalCode,
        country: shipping.country,
      },
      'shipping.name': shipping.name,
      'shipping.line1': shipping.line1,
      'shipping.line2': line2,
      'shipping.city': shipping.city,
      'shipping.region': region,
      'shipping.postalCode': shipping.postalCode,
      'shipping.country': shipping.country,
    };
    const result = await this.#exchange(seller, seller.order, values, signal, true);
    if (!result.ok) {
      const { failure: f } = result;
      // A 2xx whose body could not be read may still have placed the order.
      const reason = f.status !== null && isSuccess(f.status) ? `unreadable confirmation: ${f.reason}` : f.reason;
      return { kind: 'unknown', ...f, reason, latencyMs: performance.now() - started };
    }
    const { status } = result;
    if (status === PENDING_STATUS) return { kind: 'pending', latencyMs: performance.now() - started };
    if (isOrderRejected(status)) {
      return { kind: 'rejected', status, reason: `HTTP ${status}`, latencyMs: performance.now() - started };
    }
    if (!isSuccess(status)) {
      return { kind: 'unknown', ...httpFailure(status, result.retryAfterMs), latencyMs: performance.now() - started };
    }
    const parsed = parseOrderResponse(result.body, seller.order.response as OrderMapping);
    if (parsed.orderId === null) {
      return {
        kind: 'unknown',
        ...failure('unreadable confirmation', UNREADABLE, status),
        latencyMs: performance.now() - started,
      };
    }
    return {
      kind: 'confirmed',
      orderId: parsed.orderId,
      totalCents: parsed.totalCents,
      deliveryEta: parsed.deliveryEta,
      latencyMs: performance.now() - started,
    };
  }

  async orderStatus(
    seller: ConnectorSeller,
    params: OrderStatusParams,
    signal?: AbortSignal,
  ): Promise<OrderStatusOutcome> {
    const started = performance.now();
    const endpoint = seller.orderStatus;
    if (endpoint === null) {
      return { kind: 'unknown', ...failure('no orderStatus endpoint', UNSENDABLE), latencyMs: performance.now() - started };
    }
    const { book } = params;
    const values = {
      isbn: book.isbn,
      title: book.title,
      author: book.author,
      requestId: params.requestId,
      idempotencyKey: params.idempotencyKey,
      sellerOrderId: params.sellerOrderId,
    };
    const result = await this.#exchange(seller, endpoint, values, signal, false);
    if (!result.ok) return { kind: 'unknown', ...result.failure, latencyMs: performance.now() - started };
    const { status } = result;
    if (status === ORDER_NOT_PLACED_STATUS) return { kind: 'not_placed', latencyMs: performance.now() - started };
    if (isSuccess(status)) {
      const parsed = parseOrderResponse(result.body, endpoint.response as OrderMapping);
      if (parsed.orderId !== null) {
        return {
          kind: 'placed',
          orderId: parsed.orderId,
          totalCents: parsed.totalCents,
          deliveryEta: parsed.deliveryEta,
          latencyMs: performance.now() - started,
        };
      }
      return { kind: 'unknown', ...failure('unreadable status', UNREADABLE, status), latencyMs: performance.now() - started };
    }
    return { kind: 'unknown', ...httpFailure(status, result.retryAfterMs), latencyMs: performance.now() - started };
  }

  /** Waits for calls in flight, then closes every pooled socket. */
  async close(): Promise<void> {
    try {
      await this.#agent.close();
    } catch {
      // Already closed or destroyed: nothing left to release.
    }
  }

  /**
   * Renders and sends one call and reads its answer. A 2xx body (other than a 202 when
   * `pendingOn202`) is read up to the size limit and parsed as JSON; every other body is drained
   * so the socket goes back to the pool.
   */
  async #exchange(
    seller: ConnectorSeller,
    endpoint: EndpointConfig,
    values: Record<string, unknown>,
    signal: AbortSignal | undefined,
    pendingOn202: boolean,
  ): Promise<Exchange> {
    if (signal?.aborted) return { ok: false, failure: failure('aborted', ABORTED) };

    const prepared = this.#prepare(seller, endpoint);
    if (prepared.error !== null) return { ok: false, failure: failure(prepared.error, UNSENDABLE) };

    let path: string;
    let headers: readonly string[] = prepared.staticHeaders;
    let body: string | null;
    try {
      path = prepared.prefix + (prepared.pathIsTemplate ? renderPath(prepared.path, values) : prepared.path);
      const templated = prepared.templatedHeaders;
      if (templated.length > 0) {
        const all = headers.slice();
        for (let i = 0; i < templated.length; i += 2) {
          const value = renderText(templated[i + 1]!, values);
          // Never echo the value: it may carry a credential or the injected text.
          if (UNSAFE_HEADER_VALUE.test(value)) {
            return { ok: false, failure: failure(`header ${templated[i]} renders CR, LF or NUL`, UNSENDABLE) };
          }
          all.push(templated[i]!, value);
        }
        headers = all;
      }
      body =
        prepared.staticBody ?? (prepared.body === null ? null : JSON.stringify(renderBody(prepared.body, values)));
    } catch (err) {
      return { ok: false, failure: failure(`template: ${errorMessage(err)}`, UNSENDABLE) };
    }

    // The caller's span (the pipeline's, one per try) continues in the seller's traces; nothing when not tracing.
    const propagated = traceHeaders();
    for (const name in propagated) headers = [...headers, name, propagated[name]!];

    const deadline = new CallDeadline(seller.timeoutMs, signal);
    let status: number | null = null;
    let response: Dispatcher.ResponseData | null = null;
    try {
      response = await this.#agent.request({
        origin: prepared.origin,
        path,
        method: prepared.method,
        headers: headers as string[],
        body,
        signal: deadline,
      });
      status = response.statusCode;
      const retryAfterMs =
        status === 429 || status === 503 ? parseRetryAfter(response.headers['retry-after'], this.#clock.now().getTime()) : null;
      if (!isSuccess(status) || (status === PENDING_STATUS && pendingOn202)) {
        await response.body.dump();
        return { ok: true, status, body: undefined, retryAfterMs };
      }
      const text = await this.#readText(response);
      if (text === null) {
        return { ok: false, failure: failure(`response body larger than ${this.#maxResponseBytes} bytes`, UNREADABLE, status) };
      }
      if (text.length === 0) return { ok: false, failure: failure('empty response body', UNREADABLE, status) };
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return { ok: false, failure: failure('malformed JSON', UNREADABLE, status) };
      }
      return { ok: true, status, body: parsed, retryAfterMs };
    } catch (err) {
      // Destroying an unread body closes its socket instead of returning it to the pool half-read.
      if (response !== null) discard(response.body);
      if (signal?.aborted) return { ok: false, failure: failure('aborted', ABORTED, status) };
      if (deadline.timedOut) {
        return { ok: false, failure: failure(`timed out after ${seller.timeoutMs}ms`, { kind: 'timeout' }, status) };
      }
      return { ok: false, failure: failure(`request failed: ${errorMessage(err)}`, { kind: 'network', errno: errnoOf(err) }, status) };
    } finally {
      deadline.release();
    }
  }

  /** The body as UTF-8 text, or null when it exceeds the size limit (the body is then destroyed). */
  async #readText(response: Dispatcher.ResponseData): Promise<string | null> {
    const limit = this.#maxResponseBytes;
    const { body } = response;
    const declared = response.headers['content-length'];
    if (typeof declared === 'string' && Number(declared) > limit) {
      discard(body);
      return null;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        discard(body);
        return null;
      }
      chunks.push(chunk);
    }
    if (chunks.length === 1) return chunks[0]!.toString('utf8');
    return Buffer.concat(chunks, size).toString('utf8');
  }

  #prepare(seller: ConnectorSeller, endpoint: EndpointConfig): PreparedEndpoint {
    const cached = this.#prepared.get(endpoint);
    if (cached !== undefined && cached.baseUrl === seller.baseUrl && cached.sellerHeaders === seller.headers) {
      return cached;
    }
    const prepared = this.#build(seller, endpoint);
    this.#prepared.set(endpoint, prepared);
    return prepared;
  }

  #build(seller: ConnectorSeller, endpoint: EndpointConfig): PreparedEndpoint {
    let origin = '';
    let prefix = '';
    let error: string | null = null;
    try {
      const url = new URL(seller.baseUrl);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') error = 'baseUrl must use http or https';
      origin = url.origin;
      prefix = url.pathname.replace(/\/+$/, '');
    } catch {
      error = 'baseUrl is not a valid URL';
    }

    // Seller-wide first, then the endpoint's: same name in any case → the endpoint wins.
    const merged = new Map<string, string>();
    for (const source of [seller.headers, endpoint.headers]) {
      for (const [name, value] of Object.entries(source ?? {})) merged.set(name.toLowerCase(), value);
    }
    const hasBody = endpoint.body !== null && endpoint.body !== undefined;
    if (hasBody && !merged.has('content-type')) merged.set('content-type', 'application/json');
    if (!merged.has('user-agent')) merged.set('user-agent', this.#userAgent);

    const staticHeaders: string[] = [];
    const templatedHeaders: string[] = [];
    for (const [name, value] of merged) {
      if (value.includes('{{')) {
        templatedHeaders.push(name, value);
      } else if (UNSAFE_HEADER_VALUE.test(value)) {
        error ??= `header ${name} contains CR, LF or NUL`;
      } else {
        staticHeaders.push(name, value);
      }
    }

    const body = hasBody ? endpoint.body : null;
    return {
      baseUrl: seller.baseUrl,
      sellerHeaders: seller.headers,
      error,
      origin,
      prefix,
      method: endpoint.method,
      path: endpoint.path,
      pathIsTemplate: endpoint.path.includes('{{'),
      staticHeaders,
      templatedHeaders,
      body,
      staticBody: body !== null && !containsPlaceholder(body) ? JSON.stringify(body) : null,
    };
  }
}
