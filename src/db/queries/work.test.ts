import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../../test/support/database.js';
import { rowsOf } from '../client.js';
import type { RequestStatus } from '../../domain/types.js';
import { claimDueRequests, countPending, extendLeases, nextDueAt, oldestDue, queuePositions, wakeWatchers } from './work.js';

const test = useTestDatabase();
const database = { get db() { return test.current.db; } };
beforeEach(async () => {
  await database.db.execute(sql`delete from purchase_requests`);
});

const now = new Date('2030-01-01T12:00:00.000Z');
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);

/** A request row with the scheduling columns given; everything else fixed. Returns its id. */
async function request(o: {
  status: RequestStatus;
  nextRunAt?: Date | null;
  lease?: { owner: string; until: Date };
  expiresAt?: Date;
  bookKey?: string;
  updatedAt?: Date;
}): Promise<string> {
  const id = randomUUID();
  const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
  await database.db.execute(sql`
    insert into purchase_requests (id, user_id, status, revision, isbn, book_key, conditions, max_total_cents, currency, expires_at,
      shipping_address, payment_token, next_run_at, lease_owner, lease_expires_at, created_at, updated_at)
    values (${id}, 'u1', ${o.status}, 1, '9780141439518', ${o.bookKey ?? '9780141439518'}, '["NEW"]', 4500, 'USD',
      ${iso(o.expiresAt ?? at(3_600_000))}::timestamptz, '{}', 'tok_visa', ${iso(o.nextRunAt)}::timestamptz,
      ${o.lease?.owner ?? null}, ${iso(o.lease?.until)}::timestamptz, ${now.toISOString()}::timestamptz, ${(o.updatedAt ?? now).toISOString()}::timestamptz)`);
  return id;
}

const claim = (limit: number, owner = 'b') =>
  claimDueRequests(database.db, { owner, now, leaseUntil: at(15_000), limit }).then((rows) =>
    rows.sort((x, y) => x.nextRunAt!.getTime() - y.nextRunAt!.getTime()),
  );

describe('claimDueRequests', () => {
  it('claims due work nobody holds and lapsed leases, oldest due first, never a live lease or work not yet due', async () => {
    const live = await request({ status: 'SEARCHING', nextRunAt: at(-60_000), lease: { owner: 'a', until: at(5_000) } });
    const lapsed = await request({ status: 'SEARCHING', nextRunAt: at(-50_000), lease: { owner: 'a', until: at(-1) } });
    const first = await request({ status: 'PENDING', nextRunAt: at(-40_000) });
    const second = await request({ status: 'QUOTED', nextRunAt: at(-30_000) });
    await request({ status: 'QUOTED', nextRunAt: at(60_000) });
    await request({ status: 'ORDERED', nextRunAt: at(-70_000) });
    await request({ status: 'PENDING', nextRunAt: null });

    const two = await claim(2);
    expect(two.map((r) => r.id)).toEqual([lapsed, first]);
    expect(two.every((r) => r.leaseOwner === 'b' && r.leaseExpiresAt?.getTime() === at(15_000).getTime())).toBe(true);
    // The due time is kept: it is what the engine releases the request with when nothing changed.
    expect(two.map((r) => r.nextRunAt)).toEqual([at(-50_000), at(-40_000)]);

    expect((await claim(10)).map((r) => r.id)).toEqual([second]);
    expect(await claim(10)).toEqual([]);
    const [held] = rowsOf<{ lease_owner: string }>(await database.db.execute(sql`select lease_owner from purchase_requests where id = ${live}`));
    expect(held?.lease_owner).toBe('a');
  });

  it('claims nothing for a zero limit', async () => {
    await request({ status: 'PENDING', nextRunAt: at(-1_000) });
    expect(await claim(0)).toEqual([]);
  });
});

describe('extendLeases', () => {
  it("extends this owner's leases on the requests given, and nobody else's", async () => {
    const mine = await request({ status: 'SEARCHING', nextRunAt: at(-1_000), lease: { owner: 'a', until: at(5_000) } });
    const notAsked = await request({ status: 'SEARCHING', nextRunAt: at(-1_000), lease: { owner: 'a', until: at(5_000) } });
    const theirs = await request({ status: 'SEARCHING', nextRunAt: at(-1_000), lease: { owner: 'b', until: at(5_000) } });
    // Ids in any order: the rows are locked in id order whatever order they come in.
    await extendLeases(database.db, 'a', [theirs, mine], at(15_000));
    const leases = rowsOf<{ id: string; until: string | Date }>(
      await database.db.execute(sql`select id, lease_expires_at as until from purchase_requests`),
    ).map((r) => [r.id, new Date(r.until).toISOString()]);
    expect(Object.fromEntries(leases)).toEqual({
      [mine]: at(15_000).toISOString(),
      [notAsked]: at(5_000).toISOString(),
      [theirs]: at(5_000).toISOString(),
    });
  });
});

describe('nextDueAt and oldestDue', () => {
  it('see unleased and lapsed work and deadlines, never work under a live lease', async () => {
    expect(await nextDueAt(database.db, now)).toBeNull();
    expect(await oldestDue(database.db, now)).toBeNull();
    await request({ status: 'SEARCHING', nextRunAt: at(-60_000), lease: { owner: 'a', until: at(5_000) }, expiresAt: at(9_000_000) });
    expect(await nextDueAt(database.db, now)).toEqual(at(9_000_000));
    expect(await oldestDue(database.db, now)).toBeNull();

    await request({ status: 'QUOTED', nextRunAt: at(30_000), expiresAt: at(9_000_000) });
    expect(await nextDueAt(database.db, now)).toEqual(at(30_000));
    expect(await oldestDue(database.db, now)).toBeNull();

    await request({ status: 'SEARCHING', nextRunAt: at(-20_000), lease: { owner: 'a', until: at(-1) }, expiresAt: at(9_000_000) });
    expect(await nextDueAt(database.db, now)).toEqual(at(-20_000));
    expect(await oldestDue(database.db, now)).toEqual(at(-20_000));

    await request({ status: 'PENDING', nextRunAt: at(-40_000), expiresAt: at(9_000_000) });
    expect(await nextDueAt(database.db, now)).toEqual(at(-40_000));
    expect(await oldestDue(database.db, now)).toEqual(at(-40_000));

    // A deadline before any due work.
    await request({ status: 'OUT_OF_STOCK', nextRunAt: null, expiresAt: at(-90_000) });
    expect(await nextDueAt(database.db, now)).toEqual(at(-90_000));
  });
});

describe('queuePositions and countPending', () => {
  it('count the PENDING requests ahead, exactly, skipping those that left the queue', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await request({ status: i === 2 ? 'SEARCHING' : i === 4 ? 'CANCELED' : 'PENDING', nextRunAt: at(i) }));
    const positions = await queuePositions(database.db, [ids[5]!, ids[0]!, ids[3]!, ids[2]!, randomUUID()]);
    expect(Object.fromEntries(positions)).toEqual({ [ids[0]!]: 0, [ids[3]!]: 2, [ids[5]!]: 3 });
    expect(await queuePositions(database.db, [])).toEqual(new Map());
    expect(await countPending(database.db, 100)).toBe(4);
    expect(await countPending(database.db, 3)).toBe(3);
  });
});

describe('wakeWatchers', () => {
  it('makes the watchers of one book due now, not those already due, decided since, nor other books or statuses', async () => {
    const before = at(-1_000);
    const quoted = await request({ status: 'QUOTED', nextRunAt: at(60_000), bookKey: 'b1', updatedAt: before });
    const outOfStock = await request({ status: 'OUT_OF_STOCK', nextRunAt: at(120_000), bookKey: 'b1', updatedAt: before });
    await request({ status: 'QUOTED', nextRunAt: at(-5_000), bookKey: 'b1', updatedAt: before });
    await request({ status: 'QUOTED', nextRunAt: at(60_000), bookKey: 'b2', updatedAt: before });
    await request({ status: 'SEARCHING', nextRunAt: at(60_000), bookKey: 'b1', updatedAt: before });
    // Settled by the round that changed the offers, after it ended: it has seen them.
    await request({ status: 'QUOTED', nextRunAt: at(60_000), bookKey: 'b1', updatedAt: now });
    expect(await wakeWatchers(database.db, [{ bookKey: 'b1', at: now }])).toBe(2);
    const rows = rowsOf<{ id: string }>(await database.db.execute(sql`select id from purchase_requests where next_run_at = ${now.toISOString()}::timestamptz`));
    expect(rows.map((r) => r.id).sort()).toEqual([quoted, outOfStock].sort());
  });

  it('wakes the watchers of several books in one statement, each book as of its own change', async () => {
    const later = at(2_000);
    const b3 = await request({ status: 'QUOTED', nextRunAt: at(60_000), bookKey: 'b3', updatedAt: at(-1_000) });
    // Written after b3's change but before b4's: it has seen b3's offers, not b4's.
    const b4 = await request({ status: 'OUT_OF_STOCK', nextRunAt: at(60_000), bookKey: 'b4', updatedAt: at(1_000) });
    const b3Decided = await request({ status: 'QUOTED', nextRunAt: at(60_000), bookKey: 'b3', updatedAt: at(1_000) });
    // b4 changed twice in the batch: its later change counts.
    expect(await wakeWatchers(database.db, [{ bookKey: 'b3', at: now }, { bookKey: 'b4', at: now }, { bookKey: 'b4', at: later }])).toBe(2);
    const due = async (id: string) =>
      rowsOf<{ next_run_at: string }>(await database.db.execute(sql`select next_run_at::text from purchase_requests where id = ${id}::uuid`))[0]!.next_run_at;
    const at_ = async (d: Date) =>
      rowsOf<{ t: string }>(await database.db.execute(sql`select ${d.toISOString()}::timestamptz::text as t`))[0]!.t;
    expect(await due(b3)).toBe(await at_(now));
    expect(await due(b4)).toBe(await at_(later));
    expect(await due(b3Decided)).toBe(await at_(at(60_000)));
    expect(await wakeWatchers(database.db, [])).toBe(0);
  });
});
