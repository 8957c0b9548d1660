import { type RequestSnapshot, type SnapshotMessage, fromSnapshotMessage } from '../services/snapshot.js';
import { isTerminal } from '../domain/lifecycle.js';
import { canSee, isUuid, requestTopic } from '../services/requests.js';
import { Channel } from '../infra/channel.js';
import type { Resolvers } from './__generated__/types.js';
import type { Context } from './context.js';
import { gqlError, payload, requireViewer } from './errors.js';
import { DEFAULT_PAGE_SIZE } from '../http/query-limits.js';

const money = (cents: number, currency: string) => ({ cents, currency });
const PAGE_DEFAULT = DEFAULT_PAGE_SIZE;
const PAGE_MAX = 100;

export const requestResolvers: Resolvers = {
  Query: {
    purchaseRequest: (_, { id }, ctx) => ctx.services.requests.get(requireViewer(ctx), id),

    async purchaseRequests(_, { first, after, status }, ctx) {
      const viewer = requireViewer(ctx);
      const limit = first ?? PAGE_DEFAULT;
      if (!Number.isInteger(limit) || limit < 0 || limit > PAGE_MAX) {
        throw gqlError('BAD_USER_INPUT', `first must be from 0 to ${PAGE_MAX}`, { field: 'first' });
      }
      const beforeSeq = after == null ? null : decodeCursor(after);
      const rows = await ctx.services.requests.list(viewer, { statuses: status ?? null, beforeSeq, limit: limit + 1 });
      const page = rows.slice(0, limit);
      return {
        edges: page.map((node) => ({ cursor: encodeCursor(node.seq), node })),
        pageInfo: { hasNextPage: rows.length > limit, endCursor: page.length > 0 ? encodeCursor(page.at(-1)!.seq) : null },
      };
    },
  },

  Mutation: {
    createPurchaseRequest: async (_, { input }, ctx) =>
      payload('purchaseRequest', await ctx.services.requests.create(requireViewer(ctx), input)),
    updatePurchaseRequest: async (_, { id, input }, ctx) =>
      payload('purchaseRequest', await ctx.services.requests.update(requireViewer(ctx), id, input)),
    cancelPurchaseRequest: async (_, { id }, ctx) =>
      payload('purchaseRequest', await ctx.services.requests.cancel(requireViewer(ctx), id)),
  },

  Subscription: {
    purchaseRequestUpdated: {
      subscribe: (_, { id, afterRevision }, ctx) => watchRequest(ctx, id, afterRevision ?? null),
      resolve: (row: RequestSnapshot, _args: unknown, ctx: Context) => {
        // Loaders cache per operation; a subscription is one long operation, so start each state fresh.
        ctx.loaders.clearAll();
        return row;
      },
    },
  },

  PurchaseRequest: {
    book: (r) => ({ isbn: r.isbn, title: r.title, author: r.author }),
    maxTotalPrice: (r) => money(r.maxTotalCents, r.currency),
    bestOffer: (r) => r.bestOffer,
    order: (r) => r.orderDetails,
    // The history up to this state: events are read after the row, and a change committed in
    // between must not show beside the status it replaced (it comes with its own state).
    events: async (r, _, ctx) => (await ctx.loaders.events.load(r.id)).filter((e) => e.revision <= r.revision),
    // A state shown PENDING whose request the engine took up meanwhile has nothing ahead of it: 0.
    queuePosition: async (r, _, ctx) => (r.status === 'PENDING' ? ((await ctx.loaders.queuePositions.load(r.id)) ?? 0) : null),
  },

  RequestEvent: {
    id: (e) => String(e.id),
    traceId: (e) => {
      const traceId = (e.data as { traceId?: unknown } | null)?.traceId;
      return typeof traceId === 'string' ? traceId : null;
    },
  },

  Offer: {
    seller: (o, _, ctx) => loadSeller(ctx, o.sellerId),
    itemPrice: (o) => money(o.itemCents, o.currency),
    shipping: (o) => money(o.shippingCents, o.currency),
    tax: (o) => money(o.taxCents, o.currency),
    fees: (o) => money(o.feesCents, o.currency),
    total: (o) => money(o.totalCents, o.currency),
  },

  Order: {
    seller: (o, _, ctx) => loadSeller(ctx, o.sellerId),
    total: (o) => money(o.totalCents, o.currency),
  },
};

export async function loadSeller(ctx: Context, id: string) {
  const seller = await ctx.loaders.sellers.load(id);
  if (!seller) throw new Error(`seller ${id} referenced by an offer does not exist`);
  return seller;
}

function encodeCursor(seq: number): string {
  return Buffer.from(`seq:${seq}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const m = cursor.length <= 64 ? /^seq:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8')) : null;
  if (!m) throw gqlError('BAD_USER_INPUT', 'after is not a cursor this API issued', { field: 'after' });
  return Number(m[1]);
}

/**
 * The current state first (when newer than `afterRevision`), then every newer state, ending after
 * a terminal one. Listens before reading the row so no change can slip between the two; states
 * at or below the last revision sent are dropped, so a stale one never follows a newer one.
 */
async function watchRequest(ctx: Context, id: string, afterRevision: number | null): Promise<AsyncIterableIterator<RequestSnapshot>> {
  const viewer = requireViewer(ctx);
  const notFound = () => gqlError('BAD_USER_INPUT', 'no such purchase request', { field: 'id', reason: 'NOT_FOUND' });
  if (!isUuid(id)) throw notFound();
  const updates = await ctx.services.pubsub.subscribe<SnapshotMessage>(requestTopic(id));
  let current: RequestSnapshot | null;
  try {
    current = await ctx.services.requests.get(viewer, id);
  } catch (e) {
    updates.close();
    throw e;
  }
  if (!current || !canSee(viewer, current)) {
    updates.close();
    throw notFound();
  }

  let last = afterRevision ?? 0;
  let ended = false;
  const out = new Channel<RequestSnapshot>(1000, () => updates.close());
  const offer = (row: RequestSnapshot) => {
    if (ended || row.revision <= last) return;
    last = row.revision;
    out.push(row);
    if (isTerminal(row.status)) {
      ended = true;
      updates.close();
    }
  };
  offer(current);
  if (!ended && isTerminal(current.status)) ended = true;
  if (ended) {
    updates.close();
  } else {
    void (async () => {
      for await (const message of updates) offer(fromSnapshotMessage(message));
    })();
  }
  return endAfterDrain(out, () => ended);
}

/** Ends the stream once the terminal state has been delivered. */
function endAfterDrain(ch: Channel<RequestSnapshot>, ended: () => boolean): AsyncIterableIterator<RequestSnapshot> {
  return {
    async next() {
      if (ended() && ch.pending() === 0) {
        ch.close();
        return { value: undefined, done: true };
      }
      return ch.next();
    },
    return: () => ch.return(),
    throw: (e) => ch.throw(e),
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
