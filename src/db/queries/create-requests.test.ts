import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { newRequestColumns, useTestDatabase } from '../../../test/support/database.js';
import { idempotencyKeys } from '../schema.js';
import { type RequestToCreate, createRequests } from './create-requests.js';
import { eventsForRequests } from './events.js';
import { findRequestById } from './requests.js';

const test = useTestDatabase();
const database = { get db() { return test.current.db; } };

const now = new Date('2030-01-01T12:00:00.123Z');

function toCreate(userId: string, key: string, o: { hash?: string; cents?: number; title?: string | null } = {}): RequestToCreate {
  return {
    request: newRequestColumns(
      {
        userId,
        isbn: o.title ? null : '9781449373320',
        title: o.title ?? null,
        author: o.title ? "Flann O'Brien" : null,
        bookKey: o.title ? `t:${o.title}` : '9781449373320',
        conditions: ['NEW', 'USED'],
        maxTotalCents: o.cents ?? 4500,
        shippingAddress: { name: 'Ada "A" Lovelace', line1: '1 Main St', line2: null, city: 'Zürich', region: null, postalCode: '8001', country: 'CH' },
      },
      now,
    ),
    idempotencyKey: key,
    requestHash: o.hash ?? 'hash-1',
    event: { type: 'CREATED', message: 'Request received; waiting for the engine', data: null },
  };
}

describe('createRequests', () => {
  it('writes every request with its key and CREATED event, returning rows exactly as drizzle reads them', async () => {
    const batch = [toCreate('u1', 'a'), toCreate('u1', 'b', { title: 'The Third Policeman' }), toCreate('u2', 'a')];
    const results = await createRequests(database.db, batch);
    expect(results.map((r) => r.kind)).toEqual(['created', 'created', 'created']);
    for (const [i, r] of results.entries()) {
      if (r.kind !== 'created') throw new Error('unreachable');
      expect(r.row.id).toBe(batch[i]!.request.id);
      // Same keys, same types (Date, parsed jsonb, numeric seq) as a drizzle select.
      expect(r.row).toStrictEqual(await findRequestById(database.db, r.row.id));
      expect(r.row).toMatchObject({ ...batch[i]!.request, bestOffer: null, orderDetails: null, leaseOwner: null, watchCount: 0 });
      expect(typeof r.row.seq).toBe('number');
    }
    const events = await eventsForRequests(database.db, batch.map((b) => b.request.id));
    expect(events).toHaveLength(3);
    for (const e of events) expect(e).toMatchObject({ revision: 1, type: 'CREATED', status: 'PENDING', at: now, data: null });
  });

  it('writes a request leased to the instance that will work on it, next to unleased ones', async () => {
    const until = new Date(now.getTime() + 15_000);
    const leased = toCreate('u6', 'leased');
    leased.request = { ...leased.request, leaseOwner: 'instance-a', leaseExpiresAt: until };
    const results = await createRequests(database.db, [leased, toCreate('u6', 'free')]);
    const rows = results.map((r) => (r.kind === 'created' ? r.row : null));
    expect(rows.map((r) => [r?.leaseOwner, r?.leaseExpiresAt])).toEqual([
      ['instance-a', until],
      [null, null],
    ]);
    expect(await findRequestById(database.db, leased.request.id)).toMatchObject({ leaseOwner: 'instance-a', leaseExpiresAt: until });
  });

  it('lets the earliest of two inputs with one user and key claim it; the other finds it taken', async () => {
    const first = toCreate('u3', 'dup');
    const second = toCreate('u3', 'dup', { hash: 'hash-2' });
    const results = await createRequests(database.db, [first, toCreate('u3', 'other'), second]);
    expect(results.map((r) => r.kind)).toEqual(['created', 'created', 'key_taken']);
    const [key] = await database.db.select().from(idempotencyKeys).where(eq(idempotencyKeys.key, 'dup'));
    expect(key).toMatchObject({ userId: 'u3', requestId: first.request.id, requestHash: 'hash-1' });
    expect(await findRequestById(database.db, second.request.id)).toBeNull();
    expect(await eventsForRequests(database.db, [second.request.id])).toEqual([]);
  });

  it('finds a key taken by an earlier statement, or by a concurrent one', async () => {
    expect((await createRequests(database.db, [toCreate('u1', 'a')]))[0]!.kind).toBe('key_taken');
    // Overlapping keys in opposite orders: on Postgres one statement waits for the other's keys.
    const left = [toCreate('u4', 'x'), toCreate('u4', 'y')];
    const right = [toCreate('u4', 'y'), toCreate('u4', 'x')];
    const [l, r] = await Promise.all([createRequests(database.db, left), createRequests(database.db, right)]);
    const created = [...l, ...r].filter((x) => x.kind === 'created');
    expect(created).toHaveLength(2);
    expect(new Set(created.map((c) => (c.kind === 'created' ? c.row.id : null))).size).toBe(2);
  });

  it('writes nothing when a row is refused: the statement is all or nothing', async () => {
    const good = toCreate('u5', 'good');
    await expect(createRequests(database.db, [good, toCreate('u5', 'bad', { cents: 0 })])).rejects.toThrow();
    expect(await findRequestById(database.db, good.request.id)).toBeNull();
    expect((await createRequests(database.db, [good]))[0]!.kind).toBe('created');
  });
});
