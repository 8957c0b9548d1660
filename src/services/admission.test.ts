import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freshDatabase } from '../../test/support/server.js';
import { type Database, openDatabase } from '../db/client.js';
import type { RequestStatus } from '../domain/types.js';
import { AppError } from '../domain/errors.js';
import { Admission } from './admission.js';

let fresh: Awaited<ReturnType<typeof freshDatabase>>;
let database: Database;
let statements: string[] = [];

beforeAll(async () => {
  fresh = await freshDatabase();
  database = await openDatabase({ url: fresh.env.DATABASE_URL, dataDir: fresh.env.DATA_DIR ?? 'memory://', onQuery: (q) => statements.push(q) });
  await database.migrate();
});
afterAll(async () => {
  await database?.close();
  await fresh?.drop();
});
beforeEach(async () => {
  await database.db.execute(sql`delete from purchase_requests`);
  statements = [];
});

async function requests(statuses: RequestStatus[]): Promise<void> {
  for (const status of statuses) {
    await database.db.execute(sql`
      insert into purchase_requests (id, user_id, status, revision, isbn, book_key, conditions, max_total_cents, currency, expires_at,
        shipping_address, payment_token, next_run_at, created_at, updated_at)
      values (${randomUUID()}, 'u1', ${status}, 1, '9780141439518', '9780141439518', '["NEW"]', 4500, 'USD', now() + interval '1 hour',
        '{}', 'tok_visa', now(), now(), now())`);
  }
}

/** A clock the test moves by hand. */
function manualClock() {
  let t = Date.parse('2030-01-01T12:00:00Z');
  return { now: () => new Date(t), advance: (ms: number) => void (t += ms) };
}

async function refused(admission: Admission): Promise<boolean> {
  try {
    await admission.check();
    return false;
  } catch (e) {
    if (e instanceof AppError && e.code === 'OVERLOADED') return true;
    throw e;
  }
}

describe('Admission', () => {
  it('reads the backlog once for a burst of creates, and never counts it while it is far from full', async () => {
    await requests(['PENDING', 'PENDING', 'SEARCHING']);
    statements = [];
    const admission = new Admission(database.db, 10_000, 1_000, manualClock());
    await Promise.all(Array.from({ length: 40 }, () => admission.check()));
    expect(statements).toHaveLength(1);
    expect(statements[0]).not.toMatch(/count\(/);
  });

  it('admits while fewer than the limit wait, however far apart they were created', async () => {
    // Five waiting, but spread over eight seqs: the bound alone would say full.
    await requests(['PENDING', 'CANCELED', 'PENDING', 'SEARCHING', 'PENDING', 'PENDING', 'CANCELED', 'PENDING']);
    const clock = manualClock();
    const admission = new Admission(database.db, 6, 1_000, clock);
    expect(await refused(admission)).toBe(false);
    // The admission above counts until the next read: the sixth is refused within the window…
    expect(await refused(admission)).toBe(true);
    // …and a fresh read finds the five and admits again.
    clock.advance(1_000);
    expect(await refused(admission)).toBe(false);
  });

  it('refuses with OVERLOADED once the limit is reached', async () => {
    await requests(['PENDING', 'PENDING', 'PENDING']);
    const admission = new Admission(database.db, 3, 1_500, manualClock());
    await expect(admission.check()).rejects.toMatchObject({ code: 'OVERLOADED' });
  });
});
