import DataLoader from 'dataloader';
import { eventsForRequests } from '../db/queries/events.js';
import type { EventRow, SellerRow } from '../db/schema.js';
import type { Db } from '../db/client.js';
import type { PubSub } from '../infra/pubsub.js';
import type { RequestService } from '../engine/requests.js';
import type { SellerService } from '../engine/sellers.js';
import type { Viewer } from '../engine/types.js';

/** The parts of the system resolvers may call; composed once in server.ts. */
export interface Services {
  db: Db;
  pubsub: PubSub;
  requests: RequestService;
  sellers: SellerService;
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

  constructor(services: Services) {
    this.events = new DataLoader(async (ids) => {
      const rows = await eventsForRequests(services.db, ids);
      const byRequest = new Map<string, EventRow[]>();
      for (const r of rows) {
        const list = byRequest.get(r.requestId) ?? [];
        list.push(r);
        byRequest.set(r.requestId, list);
      }
      return ids.map((id) => byRequest.get(id) ?? []);
    });
    this.sellers = new DataLoader(async (ids) => {
      const rows = await services.sellers.byIds(ids);
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id) ?? null);
    });
  }

  clearAll(): void {
    this.events.clearAll();
    this.sellers.clearAll();
  }
}

export function makeContext(services: Services, viewer: Context['viewer']): Context {
  return { viewer, services, loaders: new Loaders(services) };
}
