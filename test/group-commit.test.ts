import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eventsForRequests } from '../src/db/queries/events.js';
import { findRequestById, insertRequest } from '../src/db/queries/requests.js';
import { applyTransitions } from '../src/db/queries/transitions.js';
import { type RequestRow, sellers, webhookEndpoints, webhookOutbox } from '../src/db/schema.js';
import { eq } from 'drizzle-orm';
import { systemClock } from '../src/domain/clock.js';
import { MemoryPubSub } from '../src/infra/pubsub.js';
import { RequestService } from '../src/services/requests.js';
import { newRequestColumns, useTestDatabase } from './support/database.js';

/**
 * Group commit (the guarded write for many requests in one statement), on the storage the suite
 * runs on: each transition applies only at its expected revision, with its event; a loser of a
 * revision race changes nothing and is reported as such while the others commit.
 */

let statements = 0;
const test = useTestDatabase(() => {
  statements += 1;
});
const database = { get db() { return test.current.db; } };

async function aRequest(): Promise<RequestRow> {
  return insertRequest(database.db, newRequestColumns({ maxTotalCents: 2_000, bookKey: 'isbn:9780141439518', isbn: '9780141439518' }));
}

const event = (type: string) => ({ type, message: `${type} now`, data: { n: 1 } });

describe('group commit', () => {
  it('commits a batch whose one transition lost its revision race, and reports that one as lost', async () => {
    const [a, b, c] = [await aRequest(), await aRequest(), await aRequest()];
    const at = new Date();
    const before = statements;
    const rows = await applyTransitions(database.db, [
      { id: a.id, expectedRevision: 1, changes: { status: 'SEARCHING', updatedAt: at }, event: event('SEARCH_STARTED') },
      // b is at revision 1: this writer saw a revision that is not there any more.
      { id: b.id, expectedRevision: 7, changes: { status: 'SEARCHING', updatedAt: at }, event: event('SEARCH_STARTED') },
      { id: c.id, expectedRevision: 1, changes: { status: 'CANCELED', nextRunAt: null, updatedAt: at }, event: event('CANCELED') },
    ]);
    expect(statements - before).toBe(1);

    expect([...rows.keys()].sort()).toEqual([a.id, c.id].sort());
    expect(rows.get(a.id)?.row).toMatchObject({ status: 'SEARCHING', revision: 2, maxTotalCents: 2_000, nextRunAt: a.nextRunAt });
    expect(rows.get(c.id)?.row).toMatchObject({ status: 'CANCELED', revision: 2, nextRunAt: null });
    expect(rows.get(a.id)!.row.updatedAt.getTime()).toBe(at.getTime());

    // The loser's row and timeline are untouched.
    expect(await findRequestById(database.db, b.id)).toEqual(b);
    const timeline = await eventsForRequests(database.db, [a.id, b.id, c.id]);
    expect(timeline.map((e) => [e.requestId, e.revision, e.type, e.status, e.message, e.data])).toEqual(
      expect.arrayContaining([
        [a.id, 2, 'SEARCH_STARTED', 'SEARCHING', 'SEARCH_STARTED now', { n: 1 }],
        [c.id, 2, 'CANCELED', 'CANCELED', 'CANCELED now', { n: 1 }],
      ]),
    );
    expect(timeline.filter((e) => e.requestId === b.id)).toEqual([]);
    // What it returns is what a read returns.
    expect(rows.get(a.id)?.row).toEqual(await findRequestById(database.db, a.id));
  });

  it('sets JSON columns and clears them; columns it does not name keep their values', async () => {
    const r = await aRequest();
    const offer = { sellerId: randomUUID(), offerId: 'o-1', condition: 'NEW' as const, itemCents: 900, shippingCents: 100, taxCents: 0, feesCents: 0, totalCents: 1_000, currency: 'USD', inventory: 3, quotedAt: new Date().toISOString() };
    const set = await applyTransitions(database.db, [
      { id: r.id, expectedRevision: 1, changes: { status: 'SEARCHING', bestOffer: offer, watchCount: 4, updatedAt: new Date() }, event: event('SEARCH_STARTED') },
    ]);
    expect(set.get(r.id)?.row).toMatchObject({ bestOffer: offer, watchCount: 4, paymentToken: 'tok_visa', conditions: ['NEW'] });
    const cleared = await applyTransitions(database.db, [
      { id: r.id, expectedRevision: 2, changes: { status: 'QUOTED', bestOffer: null, updatedAt: new Date() }, event: { type: 'QUOTED', message: null, data: null } },
    ]);
    expect(cleared.get(r.id)?.row).toMatchObject({ status: 'QUOTED', bestOffer: null, watchCount: 4, revision: 3 });
    const last = (await eventsForRequests(database.db, [r.id])).at(-1);
    expect(last).toMatchObject({ revision: 3, type: 'QUOTED', message: null, data: null });
  });

  it('through the request service: concurrent changes from many requests share one statement, and two to one request both apply in order', async () => {
    const service = new RequestService({
      db: database.db,
      pubsub: new MemoryPubSub(),
      clock: systemClock,
      limits: { maxExpiryHorizonMs: 3_600_000 } as never,
    });
    const many = await Promise.all(Array.from({ length: 20 }, () => aRequest()));
    const twice = await aRequest();
    const before = statements;
    const results = await Promise.all([
      ...many.map((r) => service.commit(r.id, (cur) => (cur.status === 'PENDING' ? { to: 'SEARCHING', type: 'SEARCH_STARTED' } : null), r)),
      service.commit(twice.id, () => ({ type: 'UPDATED', changes: { maxTotalCents: 2_500 } }), twice),
      service.commit(twice.id, () => ({ type: 'UPDATED', changes: { maxTotalCents: 3_000 } }), twice),
    ]);
    const used = statements - before;
    expect(results.slice(0, 20).every((r) => r?.status === 'SEARCHING' && r.revision === 2)).toBe(true);
    // The second change to `twice` lost its race to the first, reloaded, and applied after it.
    expect((await findRequestById(database.db, twice.id))).toMatchObject({ revision: 3, maxTotalCents: 3_000 });
    expect((await eventsForRequests(database.db, [twice.id])).map((e) => e.revision)).toEqual([2, 3]);
    // 21 first tries in one statement, the second change to `twice` in the next, its reload and
    // its retry: 4 statements for 22 changes, where one transaction each took 4 apiece.
    expect(used).toBe(4);
  });

  it('starts an attempt with its request, numbered after the last; completes one only if it is still where it was seen', async () => {
    const r = await aRequest();
    const offer = { sellerId: randomUUID(), offerId: null, condition: 'NEW' as const, itemCents: 1_000, shippingCents: 0, taxCents: 0, feesCents: 0, totalCents: 1_000, currency: 'USD', inventory: null, quotedAt: new Date().toISOString() };
    const until = new Date(Date.now() + 60_000);
    const start = (rev: number, sellerId: string) =>
      applyTransitions(database.db, [
        {
          id: r.id,
          expectedRevision: rev,
          changes: { status: 'ORDERING', updatedAt: new Date() },
          event: { type: 'ORDER_STARTED', message: null, data: null },
          attempt: { start: { id: randomUUID(), sellerId, offer: { ...offer, sellerId }, leaseOwner: 'me', leaseExpiresAt: until, nextCheckAt: until } },
        },
      ]);
    const sellerId = randomUUID();
    const now = new Date();
    const endpoint = { method: 'GET', path: '/', headers: {}, body: null, response: {} };
    await database.db.insert(sellers).values({ id: sellerId, name: 'A', tier: 1, enabled: true, baseUrl: 'http://127.0.0.1:9', headers: {}, timeoutMs: 1_000, maxConcurrency: 4, offerTtlSeconds: 60, quote: endpoint as never, order: endpoint as never, createdAt: now, updatedAt: now });
    const first = (await start(1, sellerId)).get(r.id)!;
    expect(first.row).toMatchObject({ status: 'ORDERING', revision: 2 });
    expect(first.attempt).toMatchObject({ requestId: r.id, attemptNo: 1, idempotencyKey: `${r.id}:1`, state: 'authorizing', paymentState: 'none', sellerId, leaseOwner: 'me' });
    expect(first.attempt!.leaseExpiresAt!.getTime()).toBe(until.getTime());

    // A second live attempt is refused by the unique index, and nothing of the statement stays.
    await expect(start(2, sellerId)).rejects.toThrow();
    expect(await findRequestById(database.db, r.id)).toMatchObject({ revision: 2 });

    // Completing from a state the attempt is not in writes nothing, the request included.
    const complete = (from: 'capturing' | 'authorizing') =>
      applyTransitions(database.db, [
        {
          id: r.id,
          expectedRevision: 2,
          changes: { status: 'ORDERED', updatedAt: new Date() },
          event: { type: 'ORDERED', message: null, data: null },
          attempt: { complete: { id: first.attempt!.id, from } },
        },
      ]);
    expect((await complete('capturing')).size).toBe(0);
    expect(await findRequestById(database.db, r.id)).toMatchObject({ status: 'ORDERING', revision: 2 });
    const done = (await complete('authorizing')).get(r.id)!;
    expect(done.row).toMatchObject({ status: 'ORDERED', revision: 3 });
    expect(done.attempt).toMatchObject({ id: first.attempt!.id, state: 'succeeded', paymentState: 'captured', leaseOwner: null, nextCheckAt: null });
  });

  it('writes the webhook outbox with the change: an outcome per endpoint that asked for it, QUOTED again only when the best total drops', async () => {
    const user = `hooks-${randomUUID()}`;
    const now = new Date();
    const endpoint = (events: string[], enabled = true) => ({ id: randomUUID(), userId: user, url: 'https://hooks.example.com/x', events: events as never, secret: 'whsec_x', enabled, createdAt: now, updatedAt: now });
    const all = endpoint(['ORDERED', 'QUOTED', 'OUT_OF_STOCK', 'EXPIRED', 'FAILED', 'CANCELED']);
    const canceledOnly = endpoint(['CANCELED']);
    const disabled = endpoint(['QUOTED', 'CANCELED'], false);
    const someoneElse = { ...endpoint(['QUOTED', 'CANCELED']), userId: `other-${randomUUID()}` };
    await database.db.insert(webhookEndpoints).values([all, canceledOnly, disabled, someoneElse]);
    const r = await insertRequest(database.db, newRequestColumns({ userId: user, maxTotalCents: 2_000 }));
    const offer = (totalCents: number) => ({ sellerId: randomUUID(), offerId: null, condition: 'NEW' as const, itemCents: totalCents, shippingCents: 0, taxCents: 0, feesCents: 0, totalCents, currency: 'USD', inventory: null, quotedAt: now.toISOString() });
    let rev = 1;
    const step = async (changes: Record<string, unknown>) => {
      const out = await applyTransitions(database.db, [{ id: r.id, expectedRevision: rev, changes: { ...changes, updatedAt: new Date() }, event: event('STEP') }]);
      expect(out.size).toBe(1);
      rev += 1;
    };
    await step({ status: 'SEARCHING' }); // 2: not an outcome
    await step({ status: 'QUOTED', bestOffer: offer(1_900) }); // 3: first QUOTED
    await step({ status: 'QUOTED', bestOffer: offer(1_900), watchCount: 1 }); // 4: same total: nothing
    await step({ status: 'QUOTED', bestOffer: offer(2_100) }); // 5: dearer: nothing
    await step({ status: 'QUOTED', bestOffer: offer(1_500) }); // 6: cheaper than the last: told
    await step({ status: 'CANCELED', nextRunAt: null }); // 7
    const rows = await database.db.select().from(webhookOutbox).where(eq(webhookOutbox.requestId, r.id));
    const seen = rows.map((o) => [o.endpointId === all.id ? 'all' : o.endpointId === canceledOnly.id ? 'canceledOnly' : 'other', o.revision, o.payload.status]).sort();
    expect(seen).toEqual([
      ['all', 3, 'QUOTED'],
      ['all', 6, 'QUOTED'],
      ['all', 7, 'CANCELED'],
      ['canceledOnly', 7, 'CANCELED'],
    ]);
    expect(new Set(rows.map((o) => o.webhookId)).size).toBe(rows.length);
    expect(rows.every((o) => o.state === 'pending' && /^msg_[0-9a-f]{32}$/.test(o.webhookId))).toBe(true);
    const quoted = rows.find((o) => o.revision === 6)!;
    expect(quoted.payload).toMatchObject({ id: r.id, status: 'QUOTED', revision: 6, bestOffer: { totalCents: 1_500 }, order: null, failureReason: null });
  });
});
