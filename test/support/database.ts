import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { type Database, openDatabase } from '../../src/db/client.js';
import type { NewRequestColumns } from '../../src/db/queries/create-requests.js';
import { freshDatabase } from './server.js';

/**
 * A migrated database of its own for one test file, on the storage the suite runs on (a fresh
 * Postgres database with TEST_DATABASE_URL, else PGlite), opened before the file's tests and
 * dropped after them. `onQuery` sees every statement the application sends.
 */
export function useTestDatabase(onQuery?: (sql: string) => void): { readonly current: Database } {
  let fresh: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  const handle = { current: undefined as unknown as Database };
  beforeAll(async () => {
    fresh = await freshDatabase();
    handle.current = await openDatabase({ url: fresh.env.DATABASE_URL, dataDir: fresh.env.DATA_DIR ?? 'memory://', onQuery });
    await handle.current.migrate();
  });
  afterAll(async () => {
    await handle.current?.close();
    await fresh?.drop();
  });
  return handle;
}

/** A new PENDING request by ISBN, due now and expiring in an hour; a test overrides what it cares about. */
export function newRequestColumns(overrides: Partial<NewRequestColumns> = {}, now = new Date()): NewRequestColumns {
  return {
    id: randomUUID(),
    userId: 'alice',
    status: 'PENDING',
    revision: 1,
    isbn: '9781449373320',
    title: null,
    author: null,
    bookKey: '9781449373320',
    conditions: ['NEW'],
    maxTotalCents: 4500,
    currency: 'USD',
    expiresAt: new Date(now.getTime() + 3_600_000),
    shippingAddress: { name: 'Ada Lovelace', line1: '1 Main St', line2: null, city: 'Springfield', region: null, postalCode: '12345', country: 'US' },
    paymentToken: 'tok_visa',
    nextRunAt: now,
    leaseOwner: null,
    leaseExpiresAt: null,
    createdAt: now,
    updatedAt: now,
    ...overrides,
  };
}
