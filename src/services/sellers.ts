import { randomUUID } from 'node:crypto';
import type { Db } from '../db/client.js';
import { findSellersByIds, insertSeller, listSellers, updateSeller } from '../db/queries/sellers.js';
import type { SellerRow } from '../db/schema.js';
import { type SellerInputShape, validateSellerInput } from '../partners/seller-config.js';
import type { Clock } from '../domain/clock.js';
import { type Outcome, ok, refused, userError } from '../domain/errors.js';
import { isUuid } from './requests.js';

export interface SellerServiceDeps {
  db: Db;
  clock: Clock;
  sellerUrls: 'any' | 'public';
  /** Called after any seller is created or changed (the engine reloads its directory). */
  onChanged?: () => void;
}

/** Partner bookstores as data: listing and the admin's create-or-update. */
export class SellerService {
  constructor(private readonly deps: SellerServiceDeps) {}

  list(): Promise<SellerRow[]> {
    return listSellers(this.deps.db);
  }

  async upsert(input: SellerInputShape): Promise<Outcome<SellerRow>> {
    const result = await this.write(input, false);
    if (result.ok) this.deps.onChanged?.();
    return result;
  }

  /**
   * Creates or updates a seller under a fixed id (the built-in sandbox sellers keep theirs across
   * restarts, so orders and offers that name them stay valid).
   */
  async ensure(id: string, input: SellerInputShape): Promise<Outcome<SellerRow>> {
    const existing = await findSellersByIds(this.deps.db, [id]);
    const result = await this.write({ ...input, id }, existing.length === 0);
    if (result.ok) this.deps.onChanged?.();
    return result;
  }

  private async write(input: SellerInputShape, createWithId: boolean): Promise<Outcome<SellerRow>> {
    const valid = validateSellerInput(input, { sellerUrls: this.deps.sellerUrls });
    if (!valid.ok) return valid;
    const cfg = valid.value;
    const now = this.deps.clock.now();
    const columns = {
      name: cfg.name,
      tier: cfg.tier,
      enabled: cfg.enabled,
      baseUrl: cfg.baseUrl,
      timeoutMs: cfg.timeoutMs,
      maxConcurrency: cfg.maxConcurrency,
      maxCallsPerSecond: cfg.maxCallsPerSecond,
      offerTtlSeconds: cfg.offerTtlSeconds,
      orderChecksPrice: cfg.orderChecksPrice,
      quote: cfg.quote,
      order: cfg.order,
      orderStatus: cfg.orderStatus,
      updatedAt: now,
    };
    if (input.id == null || createWithId) {
      const row = await insertSeller(this.deps.db, {
        ...columns,
        id: input.id ?? randomUUID(),
        headers: cfg.headers ?? {},
        callbackSecret: cfg.callbackSecret ?? null,
        createdAt: now,
      });
      return ok(row);
    }
    const notFound = refused<SellerRow>(userError('NOT_FOUND', 'no such seller', ['input', 'id']));
    if (!isUuid(input.id)) return notFound;
    // Secrets are write-only: leaving them out of an update keeps the stored ones.
    const row = await updateSeller(this.deps.db, input.id, {
      ...columns,
      ...(cfg.headers !== undefined ? { headers: cfg.headers } : {}),
      ...(cfg.callbackSecret !== undefined ? { callbackSecret: cfg.callbackSecret } : {}),
    });
    return row ? ok(row) : notFound;
  }

  byIds(ids: readonly string[]): Promise<SellerRow[]> {
    return findSellersByIds(this.deps.db, ids.filter(isUuid));
  }
}

/** What an admin may read back of a seller's configuration: everything but secret values. */
export function sellerConfigView(row: SellerRow): Record<string, unknown> {
  const endpoint = (e: SellerRow['quote'] | null) =>
    e && { method: e.method, path: e.path, headerNames: Object.keys(e.headers), hasBody: e.body !== null, response: e.response };
  return {
    baseUrl: row.baseUrl,
    headerNames: Object.keys(row.headers),
    timeoutMs: row.timeoutMs,
    maxConcurrency: row.maxConcurrency,
    maxCallsPerSecond: row.maxCallsPerSecond,
    offerTtlSeconds: row.offerTtlSeconds,
    orderChecksPrice: row.orderChecksPrice,
    hasCallbackSecret: row.callbackSecret !== null,
    quote: endpoint(row.quote),
    order: endpoint(row.order),
    orderStatus: endpoint(row.orderStatus),
  };
}
