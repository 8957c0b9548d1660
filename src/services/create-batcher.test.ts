import { and, eq } from 'drizzle-orm';
import { beforeEach, describe, expect, it } from 'vitest';
import { newRequestColumns, useTestDatabase } from '../../test/support/database.js';
import type { Executor } from '../db/client.js';
import { type RequestToCreate, createRequests } from '../db/queries/create-requests.js';
import { eventsForRequests } from '../db/queries/events.js';
import { findRequestById } from '../db/queries/requests.js';
import { idempotencyKeys, purchaseRequests } from '../db/schema.js';
import { systemClock } from '../domain/clock.js';
import type { RequestEventType } from '../domain/events.js';
import { MemoryPubSub } from '../infra/pubsub.js';
import { CreateBatcher } from './create-batcher.js';
import { type Change, RequestService } from './requests.js';
import type { CreateInputShape } from './validation.js';

/** Every statement the application sends, as drizzle logs it. */
const statements: string[] = [];
const createStatements = () => statements.filter((s) => s.includes('insert into idempotency_keys')).length;
const test = useTestDatabase((q) => statements.push(q));
const database = { get db() { return test.current.db; } };

beforeEach(() => {
  statements.length = 0;
});

/** The batch operation, counting the statements it runs and the rows each carried. */
function counted() {
  const calls: number[] = [];
  const write = (ex: Executor, batch: readonly RequestToCreate[]) => {
    calls.push(batch.length);
    return createRequests(ex, batch);
  };
  return { calls, write };
}

function toCreate(userId: string, key: string, cents = 4500): RequestToCreate {
  return {
    request: newRequestColumns({ userId, maxTotalCents: cents }),
    idempotencyKey: key,
    requestHash: `hash-${cents}`,
    event: { type: 'CREATED', message: 'Request received; waiting for the engine', data: null },
  };
}

async function expectCreatedWithEvent(id: string) {
  expect(await findRequestById(database.db, id)).toMatchObject({ id, revision: 1, status: 'PENDING' });
  const events = await eventsForRequests(database.db, [id]);
  expect(events.map((e) => [e.type, e.revision])).toEqual([['CREATED', 1]]);
}

describe('CreateBatcher', () => {
  it('writes the creates of one tick with one statement, each caller getting its own row', async () => {
    const { calls, write } = counted();
    const batcher = new CreateBatcher(database.db, {}, write);
    const items = Array.from({ length: 40 }, (_, i) => toCreate(`user-${i % 7}`, `tick-${i}`));
    const results = await Promise.all(items.map((item) => batcher.create(item)));
    expect(calls).toEqual([40]);
    expect(createStatements()).toBe(1);
    for (const [i, r] of results.entries()) {
      expect(r.kind).toBe('created');
      if (r.kind === 'created') expect(r.row).toMatchObject({ id: items[i]!.request.id, userId: items[i]!.request.userId });
      await expectCreatedWithEvent(items[i]!.request.id);
    }
  });

  it('splits at maxRows, and creates arriving while a statement runs leave together in the next', async () => {
    const { calls, write } = counted();
    const batcher = new CreateBatcher(database.db, { maxRows: 10, maxInFlight: 1 }, write);
    const first = Array.from({ length: 25 }, (_, i) => batcher.create(toCreate('split', `split-${i}`)));
    // Queued behind the first statement (one in flight): they join the rows still waiting.
    const later = Array.from({ length: 3 }, (_, i) => batcher.create(toCreate('split', `later-${i}`)));
    const results = await Promise.all([...first, ...later]);
    expect(results.every((r) => r.kind === 'created')).toBe(true);
    expect(calls).toEqual([10, 10, 8]);
  });

  it('fails only the caller whose row the database refuses', async () => {
    const { calls, write } = counted();
    const batcher = new CreateBatcher(database.db, {}, write);
    const items = Array.from({ length: 6 }, (_, i) => toCreate('isolated', `iso-${i}`, i === 2 ? 0 : 4500));
    const settled = await Promise.allSettled(items.map((item) => batcher.create(item)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    // The batch, then each row alone.
    expect(calls).toEqual([6, 1, 1, 1, 1, 1, 1]);
    for (const [i, item] of items.entries()) {
      if (i === 2) expect(await findRequestById(database.db, item.request.id)).toBeNull();
      else await expectCreatedWithEvent(item.request.id);
    }
  });

  it('fails every caller of a batch at once when the failure is not one row’s', async () => {
    let calls = 0;
    const batcher = new CreateBatcher(database.db, {}, async () => {
      calls += 1;
      throw new Error('connection lost');
    });
    const settled = await Promise.allSettled([batcher.create(toCreate('down', 'd1')), batcher.create(toCreate('down', 'd2'))]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
  });
});

describe('RequestService.create over the batcher', () => {
  const committed: Array<{ id: string; type: RequestEventType }> = [];
  const service = () =>
    new RequestService({
      db: database.db,
      pubsub: new MemoryPubSub(),
      clock: systemClock,
      limits: { maxHorizonMs: 30 * 86_400_000 },
      onCommitted: (row, change: Change) => committed.push({ id: row.id, type: change.type }),
    });
  // One deadline for every input, so inputs that should be the same are.
  const expiresAt = new Date(Date.now() + 3_600_000);
  const input = (key: string, cents = 4500): CreateInputShape => ({
    idempotencyKey: key,
    book: { isbn: '9781449373320' },
    maxTotalPrice: { cents, currency: 'USD' },
    expiresAt,
    shippingAddress: { name: 'Ada Lovelace', line1: '1 Main St', city: 'Springfield', postalCode: '12345', country: 'US' },
    paymentToken: 'tok_visa',
  });
  const viewer = (id: string) => ({ id, role: 'user' as const });
  const keyRows = (userId: string, key: string) =>
    database.db
      .select({ requestId: idempotencyKeys.requestId })
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)));

  beforeEach(() => {
    committed.length = 0;
  });

  it('creates N concurrent requests, each with its CREATED event, waking the engine once per row', async () => {
    const requests = service();
    const outcomes = await Promise.all(Array.from({ length: 30 }, (_, i) => requests.create(viewer('carol'), input(`svc-${i}`))));
    const ids = outcomes.map((o) => (o.ok ? o.value.id : null));
    expect(ids.every((id) => id !== null)).toBe(true);
    expect(new Set(ids).size).toBe(30);
    for (const id of ids) await expectCreatedWithEvent(id!);
    expect(committed.map((c) => c.type)).toEqual(Array(30).fill('CREATED'));
    expect(new Set(committed.map((c) => c.id))).toEqual(new Set(ids));
    // Batched: far fewer statements than creates (how many depends on when the replay reads return).
    expect(createStatements()).toBeLessThan(30);
  });

  it('answers two creates with the same key and input in one batch with one request', async () => {
    const requests = service();
    const [a, b] = await Promise.all([requests.create(viewer('dave'), input('same')), requests.create(viewer('dave'), input('same'))]);
    expect(a!.ok && b!.ok).toBe(true);
    if (!a!.ok || !b!.ok) return;
    expect(a!.value.id).toBe(b!.value.id);
    expect(await keyRows('dave', 'same')).toHaveLength(1);
    const rows = await database.db.select().from(purchaseRequests).where(eq(purchaseRequests.userId, 'dave'));
    expect(rows).toHaveLength(1);
    // The engine is woken for the one request created, not for the replay.
    expect(committed).toEqual([{ id: a!.value.id, type: 'CREATED' }]);
    // A later retry replays it too.
    const again = await requests.create(viewer('dave'), input('same'));
    expect(again.ok && again.value.id).toBe(a!.value.id);
  });

  it('refuses exactly one of two creates with the same key and different input', async () => {
    const requests = service();
    const outcomes = await Promise.all([requests.create(viewer('erin'), input('mixed', 4500)), requests.create(viewer('erin'), input('mixed', 5500))]);
    const refused = outcomes.filter((o) => !o.ok);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.ok === false && refused[0]!.errors.map((e) => e.code)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    // Whichever reached the database first made the request, with its own input.
    const winner = outcomes.findIndex((o) => o.ok);
    const created = outcomes[winner]!;
    expect(created.ok && created.value.maxTotalCents).toBe([4500, 5500][winner]);
    const rows = await database.db.select().from(purchaseRequests).where(eq(purchaseRequests.userId, 'erin'));
    expect(rows).toHaveLength(1);
  });

  it('keeps keys per user: the same key for two users makes two requests', async () => {
    const requests = service();
    const [a, b] = await Promise.all([requests.create(viewer('fay'), input('shared')), requests.create(viewer('gus'), input('shared'))]);
    expect(a!.ok && b!.ok && a!.value.id !== b!.value.id).toBe(true);
  });
});
