import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { insertRequest } from '../src/db/queries/requests.js';
import { claimDeliveries, markDelivered, markFailed } from '../src/db/queries/webhooks.js';
import { deadLetters, webhookEndpoints, webhookOutbox } from '../src/db/schema.js';
import { newRequestColumns, useTestDatabase } from './support/database.js';

/**
 * The webhook outbox's claim on the storage the suite runs on: fair between endpoints, capped per
 * endpoint across instances, in revision order per request, and a failure past its window
 * dead-lettered with the row.
 */

const test = useTestDatabase();
const NOW = new Date('2030-01-01T12:00:00.000Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);

async function anEndpoint(): Promise<string> {
  const id = randomUUID();
  await test.current.db.insert(webhookEndpoints).values({ id, userId: `u-${id}`, url: 'https://hooks.example.com/', events: ['CANCELED'], secret: 'whsec_eA==', enabled: true, createdAt: NOW, updatedAt: NOW });
  return id;
}

async function rows(endpointId: string, requests: string[], revisions: number[], due: Date): Promise<void> {
  await test.current.db.insert(webhookOutbox).values(
    requests.flatMap((requestId) =>
      revisions.map((revision) => ({ webhookId: `msg_${randomUUID()}`, endpointId, requestId, revision, payload: {}, state: 'pending' as const, nextAttemptAt: due, createdAt: due })),
    ),
  );
}

async function requests(n: number): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, async () => (await insertRequest(test.current.db, newRequestColumns())).id));
}

describe('claiming webhook deliveries', () => {
  it('is fair between endpoints, caps each across instances, and keeps revision order per request', async () => {
    const busy = await anEndpoint();
    const quiet = await anEndpoint();
    const backlog = await requests(30);
    // The busy endpoint's 30 requests were due first, each with revisions 2 and 3.
    await rows(busy, backlog, [2, 3], at(-60_000));
    const [later] = await requests(1);
    await rows(quiet, [later!], [5], at(-1_000));

    const first = await claimDeliveries(test.current.db, { owner: 'a', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64 });
    const byEndpoint = (claimed: typeof first, id: string) => claimed.filter((d) => d.row.endpointId === id);
    expect(byEndpoint(first, busy)).toHaveLength(4);
    expect(byEndpoint(first, quiet)).toHaveLength(1);
    expect(first.every((d) => d.row.revision !== 3)).toBe(true);

    // Another instance: the busy endpoint's four slots are all in flight.
    const second = await claimDeliveries(test.current.db, { owner: 'b', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64 });
    expect(second).toEqual([]);

    // One delivered: its slot frees, and its request's revision 3 is now next in line (it is due earliest, with the others).
    const done = byEndpoint(first, busy)[0]!;
    await markDelivered(test.current.db, { id: done.row.id, endpointId: busy, owner: 'a', now: NOW });
    const third = await claimDeliveries(test.current.db, { owner: 'b', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64 });
    expect(third).toHaveLength(1);
    expect(third[0]!.row.endpointId).toBe(busy);

    // A lapsed lease (its instance died) is taken again, by anyone.
    const lapsed = await claimDeliveries(test.current.db, { owner: 'c', now: at(31_000), leaseMs: 30_000, perEndpoint: 4, limit: 64 });
    expect(byEndpoint(lapsed, busy)).toHaveLength(4);
    expect(byEndpoint(lapsed, quiet).map((d) => d.row.id)).toEqual(byEndpoint(first, quiet).map((d) => d.row.id));
    expect(byEndpoint(lapsed, quiet)[0]!.row.attempts).toBe(2);
  });

  it('dead-letters a failure past its retry window, with the row, and never one still within it', async () => {
    const endpoint = await anEndpoint();
    const [request] = await requests(1);
    await rows(endpoint, [request!], [2], at(-1_000));
    const [d] = await claimDeliveries(test.current.db, { owner: 'a', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64 });
    const base = { id: d!.row.id, endpointId: endpoint, owner: 'a', now: NOW, error: 'HTTP 500', breakerAfter: 2, pauseUntil: at(5_000) };
    expect(await markFailed(test.current.db, { ...base, retryAt: at(1_000), deadLetterId: randomUUID() })).toBe('retry');
    // Not this instance's any more: nothing is written.
    expect(await markFailed(test.current.db, { ...base, retryAt: null, deadLetterId: randomUUID() })).toBe('lost');
    const [again] = await claimDeliveries(test.current.db, { owner: 'a', now: at(1_000), leaseMs: 30_000, perEndpoint: 4, limit: 64 });
    const letterId = randomUUID();
    expect(await markFailed(test.current.db, { ...base, id: again!.row.id, retryAt: null, deadLetterId: letterId })).toBe('dead');
    const [row] = await test.current.db.select().from(webhookOutbox).where(eq(webhookOutbox.id, again!.row.id));
    expect(row).toMatchObject({ state: 'dead', leaseOwner: null, lastError: 'HTTP 500', attempts: 2 });
    const [letter] = await test.current.db.select().from(deadLetters).where(eq(deadLetters.id, letterId));
    expect(letter).toMatchObject({ kind: 'webhook', ref: String(row!.id), lastError: 'HTTP 500', resolvedAt: null });
    expect(letter!.payload).toMatchObject({ webhookId: row!.webhookId, endpointId: endpoint, requestId: request, revision: 2 });
    // Two consecutive failures opened the endpoint's breaker.
    const [ep] = await test.current.db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, endpoint));
    expect(ep).toMatchObject({ failures: 2, pausedUntil: at(5_000) });
  });
});
