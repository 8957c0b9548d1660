import DataLoader from 'dataloader';
import { attemptsForRequests } from '../db/queries/attempts.js';
import { eventsForRequests } from '../db/queries/events.js';
import type { AttemptRow, EventRow, SellerRow } from '../db/schema.js';
import type { Db } from '../db/client.js';
import type { PubSub } from '../infra/pubsub.js';
import type { RequestService } from '../services/requests.js';
import type { SellerService } from '../services/sellers.js';
import type { Viewer } from '../domain/types.js';
import { queuePositions } from '../db/queries/work.js';
import type { GateHealth, SellerGates } from '../partners/seller-gate.js';
import type { DeadLetterService } from '../services/dead-letters.js';
import type { WebhookService } from '../services/webhooks.js';

/** The parts of the system resolvers may call; composed once in server.ts. */
export interface Services {
  db: Db;
  pubsub: PubSub;
  requests: RequestService;
  sellers: SellerService;
  /** Seller gates of this instance's engine; null when the engine is off. */
  gates: SellerGates | null;
  deadLetters: DeadLetterService;
  webhooks: WebhookService;
}

export interface SellerHealthView {
  seller: SellerRow;
  health: GateHealth;
}

export interface Context {
  /** Null for an anonymous caller; `invalid` when a token was sent but did not verify. */
  viewer: Viewer | null | 'invalid';
  services: Services;
  loaders: Loaders;
}

/**
 * Per-operation batching of nested fields, so a page of requests costs one query per field
 * rather than one per request. Made per request (HTTP) or per subscription, and cleared between
 * subscription events so each emitted state is read fresh.
 */
export class Loaders {
  readonly events: DataLoader<string, EventRow[]>;
  readonly sellers: DataLoader<string, SellerRow | null>;
  readonly attempts: DataLoader<string, AttemptRow[]>;
  readonly queuePositions: DataLoader<string, number | null>;

  constructor(services: Services) {
    this.events = new DataLoader(async (ids) => groupBy(ids, await eventsForRequests(services.db, ids), (e) => e.requestId));
    this.attempts = new DataLoader(async (ids) => groupBy(ids, await attemptsForRequests(services.db, ids), (a) => a.requestId));
    this.queuePositions = new DataLoader(async (ids) => {
      const positions = await queuePositions(services.db, ids);
      return ids.map((id) => positions.get(id) ?? null);
    });
    this.sellers = new DataLoader(async (ids) => {
      const rows = await services.sellers.byIds(ids);
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id) ?? null);
    });
  }

  clearAll(): void {
    this.events.clearAll();
    this.attempts.clearAll();
    this.queuePositions.clearAll();
    this.sellers.clearAll();
  }
}

function groupBy<T>(keys: readonly string[], rows: T[], keyOf: (row: T) => string): T[][] {
  const grouped = new Map<string, T[]>();
  for (const r of rows) {
    const k = keyOf(r);
    const list = grouped.get(k);
    if (list) list.push(r);
    else grouped.set(k, [r]);
  }
  return keys.map((k) => grouped.get(k) ?? []);
}

export function makeContext(services: Services, viewer: Context['viewer']): Context {
  return { viewer, services, loaders: new Loaders(services) };
}
