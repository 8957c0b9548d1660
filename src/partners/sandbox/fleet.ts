import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { normalizeIsbn } from '../../domain/isbn.js';
import type { SellerInputShape } from '../seller-config.js';
import { CATALOG, bookByIsbn, findByTitle, type CatalogBook } from './catalog.js';
import { createRng, hashSeed, logNormalMs, type Rng } from './random.js';
import {
  SHAPES,
  type Condition,
  type Endpoint,
  type Grade,
  type OfferView,
  type OrderRequest,
  type QuoteQuery,
  type Reply,
  type SellerShape,
  type ShapeCodec,
} from './shapes.js';

export type { Condition, Endpoint, SellerShape } from './shapes.js';

export interface LatencySpec {
  medianMs: number;
  p99Ms: number;
}

/**
 * A fault a seller can be told to produce. 'timeout' holds the request open without answering;
 * 'timeoutAfterSuccess' places the order, then never answers; 'slow' answers normally after `ms`
 * (default three times the seller's p99; not multiplied by latencyScale); 'malformed' does the
 * work, then answers 200 with a truncated JSON body.
 */
export type Fault = 'error500' | 'timeout' | 'rate429' | 'malformed' | 'reject409' | 'timeoutAfterSuccess' | 'slow';

export interface ScriptStep {
  endpoint: Endpoint;
  fault: Fault;
  ms?: number;
}

/**
 * Asynchronous mode (API.md "Asynchronous partners"): the call is answered 202 with `{}`, and the
 * result is posted later, HMAC-signed with the seller's callback secret.
 */
export interface AsyncKnobs {
  /** Quotes for books the seller carries answer 202; the result goes to the `callbackUrl` the quote carried. */
  quotes: boolean;
  /** Orders (with a readable body) answer 202; the outcome goes to the latest quote's `callbackUrl`. */
  orders: boolean;
  /** Real milliseconds from the 202 to the callback (not multiplied by latencyScale). */
  delayMs: number;
  /** Chance that a callback is posted twice. */
  duplicateRate: number;
  /** Chance that a callback waits `lateMs` instead of `delayMs`. */
  lateRate: number;
  lateMs: number;
  /** Where order callbacks go, instead of the latest quote's `callbackUrl` (and quote callbacks whose request carried none). */
  callbackUrl?: string;
}

export interface SellerKnobs {
  latency: LatencySpec;
  /** Latency of the order endpoint; absent = `latency`. */
  orderLatency?: LatencySpec;
  errorRate: number;
  timeoutRate: number;
  rate429: number;
  malformedRate: number;
  rejectOrderRate: number;
  orderTimeoutAfterSuccessRate: number;
  /** Every call's connection is destroyed at once. */
  down: boolean;
  /** Faults consumed one per matching call, before any rate-based fault. */
  script: ScriptStep[];
  /** null = synchronous (the default). */
  async: AsyncKnobs | null;
}

export interface SandboxSellerSpec {
  /** Path prefix (`/<key>/…`): lowercase letters, digits and dashes. */
  key: string;
  name: string;
  tier: number;
  shape: SellerShape;
  /** Multiplies the catalog's base price (then a seeded per-book jitter of ±12%). */
  priceFactor: number;
  shippingCents: number;
  /** Tax on the item price, e.g. 0.08. */
  taxRate: number;
  feeCents: number;
  /** Fraction of the eligible catalog this seller lists, drawn by seed. */
  carries: number;
  /** Also lists used copies (some books used only). */
  usedToo: boolean;
  /**
   * Whether a quote without an ISBN is searched by title (+ optional author; see `findByTitle`),
   * answered exactly as the same book asked by ISBN. false = an ISBN-only API: a quote without an
   * ISBN is answered 400 "isbn is required". Absent = true.
   */
  titleSearch?: boolean;
  knobs: SellerKnobs;
}

export interface LedgerEntry {
  sellerKey: string;
  orderId: string;
  idempotencyKey: string;
  isbn: string;
  offerId: string;
  condition: Condition;
  totalCents: number;
  requestId?: string;
  /** ISO timestamp. */
  at: string;
}

export interface SellerStats {
  quote: number;
  order: number;
  orderStatus: number;
  /**
   * Outcomes by HTTP status ("200", "404", "429"…), plus "timeout" (held open, never answered),
   * "down" (connection destroyed) and "abandoned" (the client left, or the fleet stopped, before
   * the answer was due).
   */
  byStatus: Record<string, number>;
  /** Asynchronous mode: callbacks the broker accepted (2xx), one per delivered post, duplicates included. */
  callbacksSent: number;
  /** Asynchronous mode: failed delivery attempts (connection error, timeout, non-2xx, no callback URL); each retry counts. */
  callbacksFailed: number;
}

export interface SandboxFleetOptions {
  seed?: number;
  sellers?: SandboxSellerSpec[];
  /** Multiplies every latency; 0 = none (fast tests). Default 1. */
  latencyScale?: number;
}

/** A refused fleet operation (unknown seller, bad knob…); `status` is what the admin API answers. */
export class SandboxError extends Error {
  constructor(
    readonly status: 400 | 404,
    message: string,
  ) {
    super(message);
    this.name = 'SandboxError';
  }
}

export const DEFAULT_SEED = 1;

/** Knobs with no faults and the given latency. */
export function quietKnobs(medianMs: number, p99Ms: number): SellerKnobs {
  return {
    latency: { medianMs, p99Ms },
    errorRate: 0,
    timeoutRate: 0,
    rate429: 0,
    malformedRate: 0,
    rejectOrderRate: 0,
    orderTimeoutAfterSuccessRate: 0,
    down: false,
    script: [],
    async: null,
  };
}

/**
 * The default fleet: 8 sellers over 3 tiers, both shapes in every tier, no faults. Five search by
 * title as well as ISBN (pageturner, novella, chapterhouse, dogear, remainders: both shapes, every
 * tier); three are ISBN-only (inkwell, foliofox, oldbindery) and answer 400 to a quote without one.
 */
export function defaultSellerSpecs(): SandboxSellerSpec[] {
  const TITLE = true;
  const ISBN_ONLY = false;
  const seller = (
    key: string,
    name: string,
    tier: number,
    shape: SellerShape,
    priceFactor: number,
    shippingCents: number,
    taxRate: number,
    feeCents: number,
    carries: number,
    usedToo: boolean,
    titleSearch: boolean,
    knobs: SellerKnobs,
  ): SandboxSellerSpec => ({ key, name, tier, shape, priceFactor, shippingCents, taxRate, feeCents, carries, usedToo, titleSearch, knobs });
  return [
    seller('pageturner', 'PageTurner Books', 1, 'flat', 1.0, 399, 0.08, 0, 0.8, false, TITLE, quietKnobs(40, 150)),
    seller('novella', 'Novella & Co.', 1, 'offers', 0.95, 499, 0.07, 50, 0.75, true, TITLE, quietKnobs(35, 130)),
    seller('inkwell', 'Inkwell Booksellers', 1, 'flat', 1.06, 0, 0.0825, 0, 0.7, false, ISBN_ONLY, quietKnobs(45, 170)),
    seller('chapterhouse', 'Chapterhouse', 2, 'offers', 0.9, 599, 0.06, 99, 0.6, true, TITLE, quietKnobs(80, 300)),
    seller('dogear', 'Dog-Ear Used Books', 2, 'flat', 0.86, 450, 0.07, 0, 0.55, true, TITLE, quietKnobs(75, 280)),
    seller('foliofox', 'Folio Fox', 2, 'offers', 0.98, 350, 0.065, 25, 0.6, false, ISBN_ONLY, quietKnobs(85, 320)),
    seller('oldbindery', 'The Old Bindery', 3, 'flat', 0.8, 699, 0.05, 150, 0.5, true, ISBN_ONLY, quietKnobs(150, 800)),
    seller('remainders', 'Remainder Stacks', 3, 'offers', 0.76, 799, 0.05, 200, 0.5, true, TITLE, quietKnobs(160, 850)),
  ];
}

/** A result to post later, and where (null: nowhere known, counted as a failed callback). */
interface Deferred {
  url: string | null;
  message: CallbackMessage;
}

interface Listing {
  offerId: string;
  condition: Condition;
  grade: Grade;
  itemCents: number;
  qty: number;
}

interface SellerState {
  readonly spec: SandboxSellerSpec;
  readonly codec: ShapeCodec;
  readonly apiKey: string;
  readonly callbackSecret: string;
  knobs: SellerKnobs;
  /** isbn → listings (a new and/or a used copy). */
  readonly listings: Map<string, Listing[]>;
  /** offerId → its listing, for orders. */
  readonly offers: Map<string, { isbn: string; listing: Listing }>;
  /** idempotency key → the answer given when the order was placed. */
  readonly orders: Map<string, Reply>;
  readonly stats: SellerStats;
  readonly faultRng: Rng;
  readonly latencyRng: Rng;
  /** Draws for duplicate and late callbacks. */
  readonly callbackRng: Rng;
  /** The callbackUrl of the latest quote that carried one: where order callbacks go. */
  lastCallbackUrl: string | null;
  sequence: number;
}

/** The JSON a sandbox seller posts to the broker in asynchronous mode (API.md). */
export type CallbackMessage =
  | { type: 'quote'; quoteRef: string; body: unknown }
  | { type: 'order'; idempotencyKey: string; status: number; body: unknown };

type Phase =
  | { readonly name: 'idle' }
  | { readonly name: 'starting'; readonly ready: Promise<unknown> }
  | { readonly name: 'listening'; readonly server: Server; readonly url: string; readonly stop: AbortController }
  | { readonly name: 'stopping'; readonly done: Promise<void> };

const DAY_MS = 86_400_000;
const MAX_BODY_BYTES = 64 * 1024;
const KEY = /^[a-z0-9][a-z0-9-]{0,39}$/;
const FAULTS: readonly Fault[] = ['error500', 'timeout', 'rate429', 'malformed', 'reject409', 'timeoutAfterSuccess', 'slow'];
const ENDPOINTS: readonly Endpoint[] = ['quote', 'order', 'orderStatus'];
const ORDER_ONLY_FAULTS: ReadonlySet<Fault> = new Set(['reject409', 'timeoutAfterSuccess']);
const RATE_KNOBS = [
  'errorRate',
  'timeoutRate',
  'rate429',
  'malformedRate',
  'rejectOrderRate',
  'orderTimeoutAfterSuccessRate',
] as const;

/** The header every sandbox seller checks (sent by the connector from the seller's `headers`). */
export const API_KEY_HEADER = 'X-Api-Key';
export const sandboxApiKey = (sellerKey: string) => `sandbox-${sellerKey}`;

/** The header carrying a callback's signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. */
export const SIGNATURE_HEADER = 'X-Signature';

/** The seller's callback secret (given to the broker in `sellerInputs()`): deterministic by seed and key, 40 characters. */
export function sandboxCallbackSecret(sellerKey: string, seed: number = DEFAULT_SEED): string {
  return `sbx_${createHash('sha256').update(`sandbox-callback-secret\u0000${seed}\u0000${sellerKey}`).digest('hex').slice(0, 36)}`;
}

/** The `X-Signature` value for a raw callback body. */
export function callbackSignature(secret: string, rawBody: string, unixSeconds: number = Math.floor(Date.now() / 1000)): string {
  const t = String(Math.floor(unixSeconds));
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${rawBody}`).digest('hex')}`;
}

const CALLBACK_RETRIES = 3;
const CALLBACK_BACKOFF_MS = 100;
const CALLBACK_ATTEMPT_TIMEOUT_MS = 5_000;

/**
 * Simulated partner bookstores behind one HTTP server, each under `/<sellerKey>/`, reached by the
 * broker only through the generic connector. Seeded: the same seed gives the same catalog split,
 * prices, inventory, latencies and rate-based faults (for the same sequence of calls).
 *
 * Orders are committed when they arrive; latency delays only the answer. A client that gives up
 * early has therefore placed the order, and orderStatus says so — as with a real partner.
 */
export class SandboxFleet {
  readonly seed: number;
  readonly latencyScale: number;
  private readonly baseSpecs: readonly SandboxSellerSpec[];
  private sellers = new Map<string, SellerState>();
  private ledgerEntries: LedgerEntry[] = [];
  /** Part of every order id, new per reset, so ids never repeat across resets or processes. */
  private generation = '';
  private phase: Phase = { name: 'idle' };
  /**
   * Callbacks waiting or being delivered, each with its own abort, so stop() and reset() can
   * cancel them all and wait until they have let go. One shared signal would gather a listener
   * per pending callback (Node warns past ten: MaxListenersExceededWarning).
   */
  private readonly pendingCallbacks = new Map<Promise<void>, AbortController>();
  /** Connections for callback posts; created on first use, destroyed by stop(). */
  private callbackAgent: Agent | null = null;

  constructor(options: SandboxFleetOptions = {}) {
    this.seed = options.seed ?? DEFAULT_SEED;
    if (!Number.isSafeInteger(this.seed)) throw new SandboxError(400, 'seed must be an integer');
    this.latencyScale = options.latencyScale ?? 1;
    if (!Number.isFinite(this.latencyScale) || this.latencyScale < 0) {
      throw new SandboxError(400, 'latencyScale must be a non-negative number');
    }
    const specs = structuredClone(options.sellers ?? defaultSellerSpecs());
    checkSpecs(specs);
    this.baseSpecs = specs;
    this.reset();
  }

  get url(): string {
    if (this.phase.name !== 'listening') throw new Error('the sandbox fleet is not listening');
    return this.phase.url;
  }

  /** Listens on host:port (port 0 = any free port). */
  async start(port = 0, host = '127.0.0.1'): Promise<{ url: string }> {
    if (this.phase.name !== 'idle') throw new Error(`cannot start the sandbox fleet while ${this.phase.name}`);
    const server = createServer((req, res) => this.onRequest(req, res));
    // Undici keeps connections alive; let it reuse them as long as it likes.
    server.keepAliveTimeout = 65_000;
    const ready = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.phase = { name: 'starting', ready };
    try {
      await ready;
    } catch (e) {
      this.phase = { name: 'idle' };
      throw new Error(`sandbox fleet could not listen on ${host}:${port}`, { cause: e });
    }
    const address = server.address() as AddressInfo;
    const hostText = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${hostText}:${address.port}`;
    this.phase = { name: 'listening', server, url, stop: new AbortController() };
    return { url };
  }

  /** Stops listening; requests held open or waiting out their latency are closed, timers cleared. */
  async stop(): Promise<void> {
    const phase = this.phase;
    switch (phase.name) {
      case 'idle':
        return;
      case 'stopping':
        return phase.done;
      case 'starting':
        await phase.ready.catch(() => undefined);
        return this.stop();
      case 'listening': {
        const done = (async () => {
          phase.stop.abort();
          const closed = new Promise<void>((resolve) => phase.server.close(() => resolve()));
          phase.server.closeAllConnections();
          await Promise.all([closed, this.cancelCallbacks()]);
          const agent = this.callbackAgent;
          this.callbackAgent = null;
          await agent?.destroy().catch(() => undefined);
        })();
        this.phase = { name: 'stopping', done };
        try {
          await done;
        } finally {
          this.phase = { name: 'idle' };
        }
        return;
      }
      default:
        return assertNever(phase);
    }
  }

  /** Connector configuration for every seller, ready for `upsertSeller` (needs a started fleet). */
  sellerInputs(): SellerInputShape[] {
    const url = this.url;
    return [...this.sellers.values()].map(({ spec, codec, apiKey, callbackSecret }) => {
      const slowest = Math.max(spec.knobs.latency.p99Ms, spec.knobs.orderLatency?.p99Ms ?? 0);
      return {
        name: spec.name,
        tier: spec.tier,
        enabled: true,
        baseUrl: `${url}/${spec.key}`,
        headers: { [API_KEY_HEADER]: apiKey, Accept: 'application/json' },
        timeoutMs: Math.min(60_000, Math.max(500, Math.round(4 * slowest * this.latencyScale))),
        // A simulator has no capacity limit of its own; the broker's adaptive limits decide.
        maxConcurrency: 256,
        offerTtlSeconds: 60,
        // An order at any total but the listing's current one is answered 409 price_changed.
        orderChecksPrice: true,
        callbackSecret,
        ...codec.endpoints(),
      };
    });
  }

  /** The sellers as seeded, with their current knobs. */
  specs(): SandboxSellerSpec[] {
    return [...this.sellers.values()].map((s) => structuredClone({ ...s.spec, knobs: s.knobs }));
  }

  stats(): Record<string, SellerStats> {
    return Object.fromEntries([...this.sellers].map(([key, s]) => [key, structuredClone(s.stats)]));
  }

  /** Orders placed, oldest first; one seller's or everyone's. */
  ledger(sellerKey?: string): LedgerEntry[] {
    if (sellerKey !== undefined) this.seller(sellerKey);
    return this.ledgerEntries.filter((e) => sellerKey === undefined || e.sellerKey === sellerKey).map((e) => ({ ...e }));
  }

  /** Counters, ledgers, inventory, prices and knobs back to the seeded start; pending callbacks are dropped. */
  reset(): void {
    void this.cancelCallbacks();
    const carried = assignCatalog(this.seed, this.baseSpecs);
    this.sellers = new Map(
      this.baseSpecs.map((spec) => {
        const listings = new Map<string, Listing[]>();
        for (const book of carried.get(spec.key) ?? []) listings.set(book.isbn, seedListings(this.seed, spec, book));
        const state: SellerState = {
          spec,
          codec: SHAPES[spec.shape],
          apiKey: sandboxApiKey(spec.key),
          callbackSecret: sandboxCallbackSecret(spec.key, this.seed),
          knobs: structuredClone(spec.knobs),
          listings,
          offers: new Map(),
          orders: new Map(),
          stats: { quote: 0, order: 0, orderStatus: 0, byStatus: {}, callbacksSent: 0, callbacksFailed: 0 },
          faultRng: createRng(hashSeed(this.seed, spec.key, 'faults')),
          latencyRng: createRng(hashSeed(this.seed, spec.key, 'latency')),
          callbackRng: createRng(hashSeed(this.seed, spec.key, 'callbacks')),
          lastCallbackUrl: null,
          sequence: 0,
        };
        for (const [isbn, list] of listings) for (const listing of list) state.offers.set(listing.offerId, { isbn, listing });
        return [spec.key, state];
      }),
    );
    this.ledgerEntries = [];
    this.generation = randomBytes(3).toString('hex');
  }

  /** Changes a seller's knobs; `script` replaces the remaining script. */
  configure(sellerKey: string, patch: Partial<SellerKnobs>): void {
    const seller = this.seller(sellerKey);
    const checked = checkKnobs(patch, false);
    seller.knobs = { ...seller.knobs, ...structuredClone(checked) };
  }

  /**
   * Sets the copies in stock. Without `condition`, every listing of the book at that seller; a
   * book (or condition) the seller does not list is added at the seller's usual price.
   */
  setInventory(sellerKey: string, isbn: string, qty: number, condition?: Condition): void {
    const seller = this.seller(sellerKey);
    const book = this.book(isbn);
    if (!Number.isSafeInteger(qty) || qty < 0) throw new SandboxError(400, 'qty must be a non-negative integer');
    checkCondition(condition);
    const list = seller.listings.get(book.isbn) ?? [];
    seller.listings.set(book.isbn, list);
    const matching = list.filter((l) => condition === undefined || l.condition === condition);
    if (matching.length === 0) {
      const wanted = condition ?? 'new';
      const newCents = endIn9(book.basePriceCents * seller.spec.priceFactor);
      const listing: Listing = {
        offerId: offerId(seller.spec, book.isbn, wanted),
        condition: wanted,
        grade: wanted === 'new' ? 'NEW' : 'GOOD',
        itemCents: wanted === 'new' ? newCents : endIn9(newCents * 0.6),
        qty,
      };
      list.push(listing);
      seller.offers.set(listing.offerId, { isbn: book.isbn, listing });
      return;
    }
    for (const listing of matching) listing.qty = qty;
  }

  /** Sets the item price (cents) of the book's listings at that seller (all, or one condition). */
  setPrice(sellerKey: string, isbn: string, itemCents: number, condition?: Condition): void {
    const seller = this.seller(sellerKey);
    const book = this.book(isbn);
    if (!Number.isSafeInteger(itemCents) || itemCents < 1) throw new SandboxError(400, 'itemCents must be a positive integer');
    checkCondition(condition);
    const matching = (seller.listings.get(book.isbn) ?? []).filter((l) => condition === undefined || l.condition === condition);
    if (matching.length === 0) throw new SandboxError(404, `${sellerKey} does not list ${book.isbn}${condition ? ` (${condition})` : ''}`);
    for (const listing of matching) listing.itemCents = itemCents;
  }

  /** The landed total a seller would charge now for one of its offers; undefined for an unknown offer. */
  currentTotal(sellerKey: string, offerIdValue: string): number | undefined {
    const seller = this.seller(sellerKey);
    const hit = seller.offers.get(offerIdValue);
    return hit && totalCents(seller.spec, hit.listing);
  }

  private seller(key: string): SellerState {
    const seller = this.sellers.get(key);
    if (!seller) throw new SandboxError(404, `no sandbox seller "${key}"`);
    return seller;
  }

  private book(isbn: string): CatalogBook {
    const normalized = typeof isbn === 'string' ? normalizeIsbn(isbn) : null;
    const book = normalized === null ? undefined : bookByIsbn(normalized);
    if (!book) throw new SandboxError(404, `ISBN ${String(isbn)} is not in the sandbox catalog`);
    return book;
  }

  // ---- HTTP ----

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const phase = this.phase;
    if (phase.name !== 'listening') {
      res.destroy();
      return;
    }
    this.handle(req, res, phase.stop.signal).catch(() => {
      if (!res.headersSent && !res.destroyed) send(res, 500, { error: 'internal_error' });
      else res.destroy();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse, stopped: AbortSignal): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const [, first = '', ...rest] = url.pathname.split('/');
    if (first === '_admin') return this.admin(req, res, rest, url.searchParams);
    const seller = this.sellers.get(first);
    if (!seller) return send(res, 404, { error: 'unknown_seller' });
    const route = seller.codec.route(req.method ?? 'GET', `/${rest.join('/')}`);
    if (!route) return send(res, 404, { error: 'no_such_endpoint' });

    const { stats, knobs } = seller;
    stats[route.endpoint] += 1;
    if (knobs.down) {
      count(stats, 'down');
      req.socket.destroy();
      return;
    }
    if (req.headers[API_KEY_HEADER.toLowerCase()] !== seller.apiKey) {
      return answer(stats, res, { status: 401, body: { error: 'unauthorized' } });
    }
    const body = req.method === 'GET' ? undefined : await readJson(req);
    // Taken now: a knob changed while this call waits does not change how it is answered.
    const async = knobs.async;
    const step = this.nextFault(seller, route.endpoint);
    const fault = step?.fault;

    if (fault === 'timeout') return hold(stats);
    if (fault === 'rate429') return answer(stats, res, { status: 429, body: { error: 'rate_limited' } }, { 'retry-after': '1' });

    let reply: Reply;
    /** Set when the result goes in a callback and the call itself is answered 202. */
    let deferred: Deferred | null = null;
    if (fault === 'error500') reply = { status: 500, body: { error: 'internal_error' } };
    else {
      switch (route.endpoint) {
        case 'quote': {
          const query = seller.codec.readQuote(url.searchParams, body);
          const callbackUrl = query && httpUrl(query.callbackUrl);
          if (callbackUrl) seller.lastCallbackUrl = callbackUrl;
          reply = this.quote(seller, query);
          // Only an offer (list) goes asynchronously: 404 (not carried) and 400 are answered at once.
          if (async?.quotes && query !== null && query.quoteRef !== null && reply.status >= 200 && reply.status < 300) {
            deferred = {
              url: callbackUrl ?? async.callbackUrl ?? null,
              message: { type: 'quote', quoteRef: query.quoteRef, body: reply.body },
            };
          }
          break;
        }
        case 'order': {
          const request = seller.codec.readOrder(body, req.headers);
          reply = fault === 'reject409' ? { status: 409, body: { error: 'order_rejected' } } : this.order(seller, request);
          // An order without a readable key cannot be called back about: 422 at once.
          if (async?.orders && request !== null) {
            deferred = {
              url: async.callbackUrl ?? seller.lastCallbackUrl,
              message: { type: 'order', idempotencyKey: request.idempotencyKey, status: reply.status, body: reply.body },
            };
          }
          break;
        }
        case 'orderStatus': {
          const placed = seller.orders.get(route.idempotencyKey ?? '');
          reply = placed ? { status: 200, body: placed.body } : { status: 404, body: { error: 'not_found' } };
          break;
        }
        default:
          return assertNever(route.endpoint);
      }
    }
    if (deferred && fault === 'malformed') {
      // The result is unreadable; the acknowledgement is not.
      const full = JSON.stringify(deferred.message.body);
      deferred.message.body = full.slice(0, Math.max(1, Math.floor(full.length / 2)));
    }
    if (fault === 'timeoutAfterSuccess') {
      // The partner did the work and still reports it; only the call never returns.
      if (deferred && async) this.sendCallback(seller, async, deferred);
      return hold(stats);
    }

    const delay =
      fault === 'slow' ? (step?.ms ?? 3 * seller.knobs.latency.p99Ms) : this.latency(seller, route.endpoint);
    const waited = await pause(delay, res, stopped);
    // The result is posted even when the caller left before its 202 (not when the fleet stopped).
    if (deferred && async && !stopped.aborted) this.sendCallback(seller, async, deferred);
    if (!waited) {
      count(stats, 'abandoned');
      return;
    }
    if (deferred) return answer(stats, res, { status: 202, body: {} });
    if (fault === 'malformed') {
      const full = JSON.stringify(reply.body);
      return answer(stats, res, { status: 200, body: full.slice(0, Math.max(1, Math.floor(full.length / 2))) });
    }
    answer(stats, res, reply);
  }

  // ---- callbacks ----

  /** Posts the result after `delayMs` (or `lateMs`), once or twice as drawn; never throws. */
  private sendCallback(seller: SellerState, async: AsyncKnobs, deferred: Deferred): void {
    if (this.phase.name !== 'listening') return;
    const cancel = new AbortController();
    const signal = cancel.signal;
    const roll = (rate: number) => rate > 0 && seller.callbackRng() < rate;
    const late = roll(async.lateRate);
    const twice = roll(async.duplicateRate);
    const raw = JSON.stringify(deferred.message);
    const run = (async () => {
      if (!(await wait(late ? async.lateMs : async.delayMs, signal))) return;
      await this.deliver(seller, deferred.url, raw, signal);
      if (twice) await this.deliver(seller, deferred.url, raw, signal);
    })().catch(() => undefined);
    this.pendingCallbacks.set(run, cancel);
    void run.finally(() => this.pendingCallbacks.delete(run));
  }

  /** One callback: the first attempt and up to CALLBACK_RETRIES more, with a doubling backoff. */
  private async deliver(seller: SellerState, url: string | null, raw: string, signal: AbortSignal): Promise<void> {
    if (url === null) {
      seller.stats.callbacksFailed += 1;
      return;
    }
    for (let attempt = 0; attempt <= CALLBACK_RETRIES; attempt++) {
      if (attempt > 0 && !(await wait(CALLBACK_BACKOFF_MS * 2 ** (attempt - 1), signal))) return;
      const delivered = await this.post(url, raw, seller.callbackSecret, signal);
      if (signal.aborted) return;
      if (delivered) {
        seller.stats.callbacksSent += 1;
        return;
      }
      seller.stats.callbacksFailed += 1;
    }
  }

  /** One signed POST; true when answered 2xx. */
  private async post(url: string, raw: string, secret: string, stop: AbortSignal): Promise<boolean> {
    if (stop.aborted) return false;
    const attempt = new AbortController();
    const abort = () => attempt.abort();
    const timer = setTimeout(abort, CALLBACK_ATTEMPT_TIMEOUT_MS);
    stop.addEventListener('abort', abort, { once: true });
    try {
      this.callbackAgent ??= new Agent({ keepAliveTimeout: 10_000, connections: 64 });
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.callbackAgent,
        signal: attempt.signal,
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: callbackSignature(secret, raw) },
        body: raw,
      });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 300;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      stop.removeEventListener('abort', abort);
    }
  }

  /** Drops every waiting callback and aborts those in flight; resolves once they have all let go. */
  private async cancelCallbacks(): Promise<void> {
    for (const cancel of this.pendingCallbacks.values()) cancel.abort();
    await Promise.all([...this.pendingCallbacks.keys()]);
  }

  private nextFault(seller: SellerState, endpoint: Endpoint): ScriptStep | undefined {
    const script = seller.knobs.script;
    const i = script.findIndex((s) => s.endpoint === endpoint);
    if (i >= 0) return script.splice(i, 1)[0];
    const k = seller.knobs;
    // Draw only for knobs that are on, so a quiet seller's stream is untouched by quiet calls.
    const roll = (rate: number) => rate > 0 && seller.faultRng() < rate;
    const fault: Fault | undefined = roll(k.timeoutRate)
      ? 'timeout'
      : roll(k.errorRate)
        ? 'error500'
        : roll(k.rate429)
          ? 'rate429'
          : roll(k.malformedRate)
            ? 'malformed'
            : endpoint !== 'order'
              ? undefined
              : roll(k.rejectOrderRate)
                ? 'reject409'
                : roll(k.orderTimeoutAfterSuccessRate)
                  ? 'timeoutAfterSuccess'
                  : undefined;
    return fault && { endpoint, fault };
  }

  private latency(seller: SellerState, endpoint: Endpoint): number {
    if (this.latencyScale === 0) return 0;
    const { latency, orderLatency } = seller.knobs;
    const spec = endpoint === 'order' ? (orderLatency ?? latency) : latency;
    return logNormalMs(seller.latencyRng, spec.medianMs, spec.p99Ms) * this.latencyScale;
  }

  private quote(seller: SellerState, query: QuoteQuery | null): Reply {
    if (query === null) return { status: 400, body: { error: 'bad_request' } };
    let book: CatalogBook | undefined;
    if (query.isbn !== null) {
      // An ISBN decides, whatever title came with it.
      const isbn = normalizeIsbn(query.isbn);
      book = isbn === null ? undefined : bookByIsbn(isbn);
    } else if (seller.spec.titleSearch === false) {
      return seller.codec.queryError('isbn_required', 'isbn is required');
    } else if (query.title.trim() === '') {
      return seller.codec.queryError('isbn_or_title_required', 'isbn or title is required');
    } else {
      // The same book (so the same listings and prices) as by its ISBN; ambiguous or unknown → 404.
      const match = findByTitle(query.title, query.author);
      book = match.kind === 'found' ? match.book : undefined;
    }
    const listings = book === undefined ? [] : (seller.listings.get(book.isbn) ?? []);
    const views: OfferView[] = listings
      .filter((l) => query.condition === 'any' || l.condition === query.condition)
      .map((l) => ({
        offerId: l.offerId,
        condition: l.condition,
        grade: l.grade,
        itemCents: l.itemCents,
        shippingCents: seller.spec.shippingCents,
        taxCents: taxCents(seller.spec, l),
        feeCents: seller.spec.feeCents,
        qty: l.qty,
      }));
    return seller.codec.quoteReply(views, listings.length > 0);
  }

  private order(seller: SellerState, request: OrderRequest | null): Reply {
    if (request === null) return { status: 422, body: { error: 'invalid_order' } };
    // Same key, same answer, whatever else was sent: the first call decided.
    const placed = seller.orders.get(request.idempotencyKey);
    if (placed) return placed;
    const hit = seller.offers.get(request.offerId);
    if (!hit) return { status: 422, body: { error: 'unknown_offer' } };
    if (request.isbn !== null && normalizeIsbn(request.isbn) !== hit.isbn) {
      return { status: 422, body: { error: 'offer_isbn_mismatch' } };
    }
    const { listing } = hit;
    if (listing.qty <= 0) return { status: 410, body: { error: 'out_of_stock' } };
    const total = totalCents(seller.spec, listing);
    if (request.totalCents !== total) return { status: 409, body: { error: 'price_changed' } };

    listing.qty -= 1;
    seller.sequence += 1;
    const now = Date.now();
    const prefix = seller.spec.key.replace(/-/g, '').slice(0, 3).toUpperCase();
    const orderId = `${prefix}-${this.generation}-${String(seller.sequence).padStart(6, '0')}`;
    const reply = seller.codec.orderReply({
      orderId,
      totalCents: total,
      eta: new Date(now + (2 + 2 * seller.spec.tier) * DAY_MS),
    });
    seller.orders.set(request.idempotencyKey, reply);
    this.ledgerEntries.push({
      sellerKey: seller.spec.key,
      orderId,
      idempotencyKey: request.idempotencyKey,
      isbn: hit.isbn,
      offerId: listing.offerId,
      condition: listing.condition,
      totalCents: total,
      ...(request.requestId !== null ? { requestId: request.requestId } : {}),
      at: new Date(now).toISOString(),
    });
    return reply;
  }

  private async admin(req: IncomingMessage, res: ServerResponse, rest: string[], query: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    const path = rest.join('/');
    try {
      if (method === 'GET' && path === 'stats') return send(res, 200, this.stats());
      if (method === 'GET' && path === 'ledger') return send(res, 200, this.ledger(query.get('seller') ?? undefined));
      if (method === 'GET' && path === 'sellers') return send(res, 200, this.sellerInputs());
      if (method === 'GET' && path === 'specs') return send(res, 200, this.specs());
      if (method !== 'POST') return send(res, 404, { error: 'no_such_endpoint' });
      const body = await readJson(req);
      const fields = isRecord(body) ? body : {};
      if (path === 'reset') {
        this.reset();
        return send(res, 200, { ok: true });
      }
      const knobsFor = /^sellers\/([^/]+)$/.exec(path);
      if (knobsFor) {
        if (!isRecord(body)) throw new SandboxError(400, 'body must be a JSON object of knobs');
        this.configure(decodeURIComponent(knobsFor[1]!), body as Partial<SellerKnobs>);
        return send(res, 200, { ok: true });
      }
      if (path === 'inventory') {
        const { seller, isbn, qty, condition } = fields;
        this.setInventory(String(seller), String(isbn), Number(qty), condition as Condition | undefined);
        return send(res, 200, { ok: true });
      }
      if (path === 'price') {
        const { seller, isbn, itemCents, condition } = fields;
        this.setPrice(String(seller), String(isbn), Number(itemCents), condition as Condition | undefined);
        return send(res, 200, { ok: true });
      }
      return send(res, 404, { error: 'no_such_endpoint' });
    } catch (e) {
      if (e instanceof SandboxError) return send(res, e.status, { error: e.message });
      throw e;
    }
  }
}

// ---- seeding ----

/**
 * Which books each seller lists: a seeded draw per (seller, book), then every in-print book gets at
 * least one eligible seller, and at least one eligible title-searching seller when there is one (so
 * every in-print book can be bought by title as well as by ISBN).
 */
function assignCatalog(seed: number, specs: readonly SandboxSellerSpec[]): Map<string, CatalogBook[]> {
  const carried = new Map<string, CatalogBook[]>(specs.map((s) => [s.key, []]));
  for (const book of CATALOG) {
    if (book.outOfPrint) continue;
    const eligible = specs.filter((s) => s.tier >= (book.minTier ?? 1));
    const takers = eligible.filter((s) => createRng(hashSeed(seed, s.key, book.isbn, 'carries'))() < s.carries);
    if (takers.length === 0 && eligible.length > 0) takers.push(eligible[hashSeed(seed, book.isbn) % eligible.length]!);
    const byTitle = eligible.filter((s) => s.titleSearch !== false);
    if (byTitle.length > 0 && !takers.some((s) => s.titleSearch !== false)) {
      takers.push(byTitle[hashSeed(seed, book.isbn, 'title') % byTitle.length]!);
    }
    for (const s of takers) carried.get(s.key)!.push(book);
  }
  return carried;
}

function seedListings(seed: number, spec: SandboxSellerSpec, book: CatalogBook): Listing[] {
  const rng = createRng(hashSeed(seed, spec.key, book.isbn, 'stock'));
  const newCents = endIn9(book.basePriceCents * spec.priceFactor * (0.88 + 0.24 * rng()));
  // Used-too sellers: a fifth of their books used only, two fifths new and used.
  const mix = spec.usedToo ? rng() : 1;
  const listings: Listing[] = [];
  if (mix >= 0.2) {
    listings.push({
      offerId: offerId(spec, book.isbn, 'new'),
      condition: 'new',
      grade: 'NEW',
      itemCents: newCents,
      qty: 1 + Math.floor(rng() * 10),
    });
  }
  if (mix < 0.6) {
    listings.push({
      offerId: offerId(spec, book.isbn, 'used'),
      condition: 'used',
      grade: rng() < 0.5 ? 'LIKE_NEW' : 'GOOD',
      itemCents: endIn9(newCents * (0.45 + 0.25 * rng())),
      qty: 1 + Math.floor(rng() * 3),
    });
  }
  return listings;
}

function offerId(spec: SandboxSellerSpec, isbn: string, condition: Condition): string {
  return spec.shape === 'flat'
    ? `${spec.key}-${isbn}-${condition === 'new' ? 'n' : 'u'}`
    : `${spec.key.toUpperCase()}-${isbn}-${condition.toUpperCase()}`;
}

/** Shop prices: whole dimes minus a cent ($12.99), never under $0.99. */
function endIn9(cents: number): number {
  return Math.max(99, Math.round(cents / 10) * 10 - 1);
}

const taxCents = (spec: SandboxSellerSpec, listing: Listing) => Math.round(listing.itemCents * spec.taxRate);
const totalCents = (spec: SandboxSellerSpec, listing: Listing) =>
  listing.itemCents + spec.shippingCents + taxCents(spec, listing) + spec.feeCents;

// ---- validation ----

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isFraction = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function checkCondition(condition: unknown): void {
  if (condition !== undefined && condition !== 'new' && condition !== 'used') {
    throw new SandboxError(400, 'condition must be "new" or "used"');
  }
}

function checkLatency(value: unknown, name: string): LatencySpec {
  if (
    !isRecord(value) ||
    typeof value.medianMs !== 'number' ||
    typeof value.p99Ms !== 'number' ||
    !Number.isFinite(value.medianMs) ||
    !Number.isFinite(value.p99Ms) ||
    value.medianMs < 0 ||
    value.p99Ms < value.medianMs
  ) {
    throw new SandboxError(400, `${name} must be { medianMs ≥ 0, p99Ms ≥ medianMs }`);
  }
  return { medianMs: value.medianMs, p99Ms: value.p99Ms };
}

/** Validates knobs (all of them when `complete`, else a patch) from typed callers and the admin API alike. */
function checkKnobs(value: unknown, complete: boolean): Partial<SellerKnobs> {
  if (!isRecord(value)) throw new SandboxError(400, 'knobs must be an object');
  const known = new Set<string>(['latency', 'orderLatency', 'down', 'script', 'async', ...RATE_KNOBS]);
  for (const key of Object.keys(value)) if (!known.has(key)) throw new SandboxError(400, `unknown knob "${key}"`);
  const required = ['latency', 'down', 'script', ...RATE_KNOBS];
  if (complete) for (const key of required) if (!(key in value)) throw new SandboxError(400, `knob "${key}" is required`);
  const out: Partial<SellerKnobs> = {};
  if ('latency' in value) out.latency = checkLatency(value.latency, 'latency');
  if ('orderLatency' in value && value.orderLatency !== undefined) {
    out.orderLatency = checkLatency(value.orderLatency, 'orderLatency');
  }
  for (const key of RATE_KNOBS) {
    if (!(key in value)) continue;
    const rate = value[key];
    if (!isFraction(rate)) throw new SandboxError(400, `${key} must be a number from 0 to 1`);
    out[key] = rate;
  }
  if ('down' in value) {
    if (typeof value.down !== 'boolean') throw new SandboxError(400, 'down must be a boolean');
    out.down = value.down;
  }
  if ('script' in value) {
    if (!Array.isArray(value.script)) throw new SandboxError(400, 'script must be an array');
    out.script = value.script.map((step: unknown, i): ScriptStep => {
      if (!isRecord(step)) throw new SandboxError(400, `script[${i}] must be an object`);
      const { endpoint, fault, ms } = step;
      if (!ENDPOINTS.includes(endpoint as Endpoint)) throw new SandboxError(400, `script[${i}].endpoint must be one of ${ENDPOINTS.join(', ')}`);
      if (!FAULTS.includes(fault as Fault)) throw new SandboxError(400, `script[${i}].fault must be one of ${FAULTS.join(', ')}`);
      if (ORDER_ONLY_FAULTS.has(fault as Fault) && endpoint !== 'order') {
        throw new SandboxError(400, `script[${i}]: ${String(fault)} applies to the order endpoint only`);
      }
      if (ms !== undefined && !(typeof ms === 'number' && Number.isFinite(ms) && ms >= 0)) {
        throw new SandboxError(400, `script[${i}].ms must be a non-negative number`);
      }
      return { endpoint: endpoint as Endpoint, fault: fault as Fault, ...(ms !== undefined ? { ms } : {}) };
    });
  }
  if ('async' in value && value.async !== undefined) out.async = checkAsync(value.async);
  return out;
}

const ASYNC_KEYS: ReadonlySet<string> = new Set(['quotes', 'orders', 'delayMs', 'duplicateRate', 'lateRate', 'lateMs', 'callbackUrl']);
const MAX_CALLBACK_DELAY_MS = 3_600_000;

function checkAsync(value: unknown): AsyncKnobs | null {
  if (value === null) return null;
  if (!isRecord(value)) throw new SandboxError(400, 'async must be null or an object');
  for (const key of Object.keys(value)) if (!ASYNC_KEYS.has(key)) throw new SandboxError(400, `unknown async knob "${key}"`);
  const { quotes, orders, delayMs, duplicateRate, lateRate, lateMs, callbackUrl } = value;
  if (typeof quotes !== 'boolean' || typeof orders !== 'boolean') {
    throw new SandboxError(400, 'async.quotes and async.orders must be booleans');
  }
  const isDelay = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= MAX_CALLBACK_DELAY_MS;
  if (!isDelay(delayMs) || !isDelay(lateMs)) {
    throw new SandboxError(400, `async.delayMs and async.lateMs must be numbers from 0 to ${MAX_CALLBACK_DELAY_MS}`);
  }
  if (!isFraction(duplicateRate) || !isFraction(lateRate)) {
    throw new SandboxError(400, 'async.duplicateRate and async.lateRate must be numbers from 0 to 1');
  }
  const out: AsyncKnobs = { quotes, orders, delayMs, duplicateRate, lateRate, lateMs };
  if (callbackUrl !== undefined && callbackUrl !== null) {
    const url = httpUrl(callbackUrl);
    if (url === null) throw new SandboxError(400, 'async.callbackUrl must be an http(s) URL');
    out.callbackUrl = url;
  }
  return out;
}

function checkSpecs(specs: SandboxSellerSpec[]): void {
  if (!Array.isArray(specs) || specs.length === 0) throw new SandboxError(400, 'the fleet needs at least one seller');
  const keys = new Set<string>();
  for (const spec of specs) {
    const where = `seller "${String(spec.key)}"`;
    if (typeof spec.key !== 'string' || !KEY.test(spec.key)) {
      throw new SandboxError(400, `${where}: key must be lowercase letters, digits and dashes`);
    }
    if (keys.has(spec.key)) throw new SandboxError(400, `${where} is given twice`);
    keys.add(spec.key);
    if (typeof spec.name !== 'string' || spec.name.trim() === '') throw new SandboxError(400, `${where}: name is required`);
    if (!Number.isInteger(spec.tier) || spec.tier < 1 || spec.tier > 10) throw new SandboxError(400, `${where}: tier must be 1 to 10`);
    if (!(spec.shape in SHAPES)) throw new SandboxError(400, `${where}: shape must be flat or offers`);
    if (!(typeof spec.priceFactor === 'number' && spec.priceFactor > 0 && Number.isFinite(spec.priceFactor))) {
      throw new SandboxError(400, `${where}: priceFactor must be positive`);
    }
    if (!isCount(spec.shippingCents) || !isCount(spec.feeCents)) {
      throw new SandboxError(400, `${where}: shippingCents and feeCents must be non-negative integers`);
    }
    if (!isFraction(spec.taxRate) || !isFraction(spec.carries)) {
      throw new SandboxError(400, `${where}: taxRate and carries must be from 0 to 1`);
    }
    if (typeof spec.usedToo !== 'boolean') throw new SandboxError(400, `${where}: usedToo must be a boolean`);
    if (spec.titleSearch !== undefined && typeof spec.titleSearch !== 'boolean') {
      throw new SandboxError(400, `${where}: titleSearch must be a boolean`);
    }
    const knobs = checkKnobs(spec.knobs, true) as Omit<SellerKnobs, 'async'> & Partial<Pick<SellerKnobs, 'async'>>;
    spec.knobs = { ...knobs, async: knobs.async ?? null };
  }
}

// ---- HTTP helpers ----

function count(stats: SellerStats, outcome: string): void {
  stats.byStatus[outcome] = (stats.byStatus[outcome] ?? 0) + 1;
}

/** Never answers: the client's timeout (or stop(), which closes every connection) ends it. */
function hold(stats: SellerStats): void {
  count(stats, 'timeout');
}

function answer(stats: SellerStats, res: ServerResponse, reply: Reply, headers: Record<string, string> = {}): void {
  count(stats, String(reply.status));
  send(res, reply.status, reply.body, headers);
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.writableEnded) return;
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(payload)),
    ...headers,
  });
  res.end(payload);
}

/** The request body as JSON; undefined when empty, too large or not JSON. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Waits `ms`; false (and the timer cleared) as soon as the client leaves or the fleet stops.
 * Only the response is listened to: stop() closes every connection, which closes the response.
 * (A listener per waiting request on the fleet's one stop signal passed Node's limit of ten as
 * soon as a restarted broker resumed a handful of requests: MaxListenersExceededWarning.)
 */
function pause(ms: number, res: ServerResponse, stopped: AbortSignal): Promise<boolean> {
  if (res.destroyed || stopped.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const finish = (elapsed: boolean) => {
      clearTimeout(timer);
      res.off('close', gone);
      resolve(elapsed);
    };
    const gone = () => finish(false);
    // The fleet may have stopped in the same turn as the timer fired, its connections not yet closed.
    const timer = setTimeout(() => finish(!stopped.aborted), ms);
    res.once('close', gone);
  });
}

/** Waits `ms`; false (and the timer cleared) as soon as `signal` aborts. */
function wait(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (elapsed: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', gone);
      resolve(elapsed);
    };
    const gone = () => finish(false);
    const timer = setTimeout(() => finish(true), Math.max(0, ms));
    signal.addEventListener('abort', gone, { once: true });
  });
}

/** The text when it is an absolute http(s) URL, else null. */
function httpUrl(raw: unknown): string | null {
  if (typeof raw !== 'string' || raw === '') return null;
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? raw : null;
  } catch {
    return null;
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
