import { randomUUID } from 'node:crypto';
import { type IncomingHttpHeaders, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pLimit from 'p-limit';
import { Pool } from 'undici';
import type { LatencySpec, LedgerEntry, SandboxSellerSpec, SellerStats } from '../../src/partners/sandbox/fleet.js';
import { type ConnectorSeller, PartnerConnector } from '../../src/partners/connector.js';
import { type SellerInputShape, validateSellerInput } from '../../src/partners/seller-config.js';
import { type Child, type Supervisor, firstJsonLine } from './proc.js';

/** The sandbox fleet in its own process, and its admin API. */
export class SandboxHandle {
  readonly pool: Pool;

  private constructor(
    readonly child: Child,
    readonly url: string,
    readonly sellers: SellerInputShape[],
  ) {
    // Admin traffic only; partner traffic goes through the broker or the reference clients.
    this.pool = new Pool(url, { connections: 4 });
  }

  static async start(sup: Supervisor, o: { seed: number; latencyScale: number }): Promise<SandboxHandle> {
    const child = sup.spawnNode(
      'sandbox',
      'src/partners/sandbox/main.ts',
      ['--port', '0', '--host', '127.0.0.1', '--seed', String(o.seed), '--latency-scale', String(o.latencyScale), '--exit-on-stdin-close'],
      {},
    );
    const started = await firstJsonLine<{ url: string; sellers: SellerInputShape[] }>(child);
    if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(started.url)) throw new Error(`sandbox listens on ${started.url}, not loopback`);
    return new SandboxHandle(child, started.url, started.sellers);
  }

  /** The key a seller is served under (`<url>/<key>`). */
  static keyOf(seller: SellerInputShape): string {
    return seller.baseUrl.split('/').pop()!;
  }

  private async admin<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await this.pool.request({
      path: `/_admin/${path}`,
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`sandbox admin ${method} ${path} answered ${res.statusCode}: ${text}`);
    return JSON.parse(text) as T;
  }

  stats = () => this.admin<Record<string, SellerStats>>('GET', 'stats');
  ledger = () => this.admin<LedgerEntry[]>('GET', 'ledger');
  specs = () => this.admin<SandboxSellerSpec[]>('GET', 'specs');
  setInventory = (seller: string, isbn: string, qty: number) => this.admin<unknown>('POST', 'inventory', { seller, isbn, qty });

  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
    await this.child.stop();
  }
}

/** Calls received by the sandbox (quote + order + orderStatus), all sellers, from a stats snapshot. */
export function totalCalls(stats: Record<string, SellerStats>): { quote: number; order: number; orderStatus: number; total: number } {
  let quote = 0;
  let order = 0;
  let orderStatus = 0;
  for (const s of Object.values(stats)) {
    quote += s.quote;
    order += s.order;
    orderStatus += s.orderStatus;
  }
  return { quote, order, orderStatus, total: quote + order + orderStatus };
}

/** A seller as the broker's own connector sees it (validated exactly as upsertSeller does). */
export function connectorSeller(input: SellerInputShape, id: string = randomUUID(), baseUrl = input.baseUrl): ConnectorSeller {
  const checked = validateSellerInput({ ...input, baseUrl }, { sellerUrls: 'any' });
  if (!checked.ok) throw new Error(`sandbox seller ${input.name} does not validate: ${JSON.stringify(checked.errors)}`);
  const c = checked.value;
  return { id, baseUrl: c.baseUrl, headers: c.headers ?? {}, timeoutMs: c.timeoutMs, quote: c.quote, order: c.order, orderStatus: c.orderStatus };
}

/** One offer in the price table: what a seller would charge, landed, for one condition of one book. */
export interface PricePoint {
  sellerKey: string;
  tier: number;
  condition: 'NEW' | 'USED';
  totalCents: number;
  offerId: string | null;
}

/** Every seller's offers for every book, quoted through the broker's own connector (condition "any"). */
export type PriceTable = Map<string, PricePoint[]>;

export async function quoteEverything(sandbox: SandboxHandle, isbns: readonly string[]): Promise<{ table: PriceTable; failures: number }> {
  const connector = new PartnerConnector();
  const limit = pLimit(64);
  const table: PriceTable = new Map(isbns.map((i) => [i, []]));
  let failures = 0;
  try {
    await Promise.all(
      sandbox.sellers.flatMap((input) => {
        const seller = connectorSeller(input);
        const key = SandboxHandle.keyOf(input);
        return isbns.map((isbn) =>
          limit(async () => {
            const o = await connector.quote(seller, {
              book: { isbn, title: null, author: null },
              condition: 'any',
              requestId: 'bench-price-table',
              quoteRef: `bench:${key}:${isbn}`,
              callbackUrl: 'http://127.0.0.1:9/unused',
            });
            if (o.kind === 'offers') {
              for (const offer of o.offers) {
                if (!offer.available || offer.currency !== 'USD') continue;
                table.get(isbn)!.push({ sellerKey: key, tier: input.tier, condition: offer.condition, totalCents: offer.totalCents, offerId: offer.offerId });
              }
            } else if (o.kind !== 'not_carried') failures += 1;
          }),
        );
      }),
    );
  } finally {
    await connector.close();
  }
  return { table, failures };
}

/** The lowest landed total among offers in the accepted conditions; null when nobody offers one. */
export function bestTotal(table: PriceTable, isbn: string, conditions: readonly ('NEW' | 'USED')[]): number | null {
  let best: number | null = null;
  for (const p of table.get(isbn) ?? []) if (conditions.includes(p.condition) && (best === null || p.totalCents < best)) best = p.totalCents;
  return best;
}

/** A request exactly as the broker's connector puts it on the wire, to replay with a bare client. */
export interface CapturedCall {
  sellerKey: string;
  method: string;
  /** Includes the seller's path prefix (`/<key>/…`). */
  path: string;
  headers: Record<string, string>;
  body: string | null;
}

const HOP_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive']);

/**
 * Renders quote calls through the broker's own connector against a local capture server, so the
 * reference client sends byte-for-byte the payloads the engine sends (same paths, headers, bodies).
 */
export async function captureQuoteCalls(
  sellers: ReadonlyArray<{ input: SellerInputShape; id: string }>,
  isbns: readonly string[],
  callbackBase: string,
): Promise<CapturedCall[]> {
  const captured: CapturedCall[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      captured.push({
        sellerKey: (req.url ?? '/').split('/')[1] ?? '',
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: plainHeaders(req.headers),
        body: chunks.length > 0 ? Buffer.concat(chunks).toString('utf8') : null,
      });
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not_carried"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const connector = new PartnerConnector();
  try {
    for (const { input, id } of sellers) {
      const key = SandboxHandle.keyOf(input);
      const seller = connectorSeller(input, id, `${origin}/${key}`);
      for (const isbn of isbns) {
        await connector.quote(seller, {
          book: { isbn, title: null, author: null },
          condition: 'new',
          requestId: randomUUID(),
          quoteRef: `${id}:new:isbn:${isbn}`,
          callbackUrl: `${callbackBase}/partners/${id}/callbacks`,
        });
      }
    }
  } finally {
    await connector.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return captured;
}

function plainHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (value === undefined || HOP_HEADERS.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Mean of the sandbox's latency model (log-normal from median and p99, capped at 3×p99), in ms. */
export function latencyMean(spec: LatencySpec): number {
  if (spec.medianMs <= 0) return 0;
  const sigma = spec.p99Ms > spec.medianMs ? Math.log(spec.p99Ms / spec.medianMs) / 2.3263478740408408 : 0;
  return spec.medianMs * Math.exp((sigma * sigma) / 2);
}
