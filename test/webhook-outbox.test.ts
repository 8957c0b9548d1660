import { randomUUID } from 'node:crypto';
import { eq, type SQL, sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { type Db, rowsOf } from '../src/db/client.js';
import { insertRequest } from '../src/db/queries/requests.js';
import { applyTransitions, type Transition } from '../src/db/queries/transitions.js';
import { claimDeliveries, type DirectLease, markDelivered, markFailed, releaseLapsed } from '../src/db/queries/webhooks.js';
import { deadLetters, webhookDeliveries, webhookEndpoints, webhookOutbox, type WebhookOutboxRow } from '../src/db/schema.js';
import { WebhookRelay, type WebhookRelayConfig } from '../src/engine/webhook-relay.js';
import { Metrics } from '../src/infra/metrics.js';
import { MemoryPubSub } from '../src/infra/pubsub.js';
import { RequestService } from '../src/services/requests.js';
import type { SendOptions, SendResult } from '../src/infra/webhook-sender.js';
import { DeadLetterService } from '../src/services/dead-letters.js';
import { WebhookSender } from '../src/infra/webhook-sender.js';
import { createLogger } from '../src/logger.js';
import { eventually } from './support/server.js';
import { newRequestColumns, useTestDatabase } from './support/database.js';

/**
 * The webhook outbox's claim on the storage the suite runs on: fair between endpoints, capped per
 * endpoint across instances, in revision order per request, and a failure past its window
 * dead-lettered with the row; and its retention: deliveries made kept for the window, then deleted.
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

/** A relay on the suite's database, at the suite's fixed time, with `config` over quiet defaults (hour-long polls and sweeps). */
function aRelay(owner: string, sender: WebhookSender, config: Partial<WebhookRelayConfig>, metrics?: Metrics, db: Db = test.current.db): WebhookRelay {
  const HOUR = 3_600_000;
  return new WebhookRelay({
    db,
    sender,
    clock: { now: () => NOW },
    log: createLogger('silent'),
    owner,
    ...(metrics ? { metrics } : {}),
    config: { pollMs: HOUR, maxInFlight: 4, perEndpoint: 4, leaseMs: 30_000, retryBaseMs: 1_000, retryMaxMs: 10_000, retryWindowMs: HOUR, breakerAfter: 5, retentionMs: HOUR, sweepEveryMs: HOUR, sweepBatch: 10, ...config },
  });
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

    const first = await claimDeliveries(test.current.db, { owner: 'a', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} });
    const byEndpoint = (claimed: typeof first, id: string) => claimed.filter((d) => d.row.endpointId === id);
    expect(byEndpoint(first, busy)).toHaveLength(4);
    expect(byEndpoint(first, quiet)).toHaveLength(1);
    expect(first.every((d) => d.row.revision !== 3)).toBe(true);

    // Another instance: the busy endpoint's four slots are all in flight.
    const second = await claimDeliveries(test.current.db, { owner: 'b', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} });
    expect(second).toEqual([]);

    // One delivered: its slot frees, and its request's revision 3 is now next in line (it is due earliest, with the others).
    const done = byEndpoint(first, busy)[0]!;
    await markDelivered(test.current.db, { id: done.row.id, endpointId: busy, owner: 'a', now: NOW });
    const third = await claimDeliveries(test.current.db, { owner: 'b', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} });
    expect(third).toHaveLength(1);
    expect(third[0]!.row.endpointId).toBe(busy);

    // Leases are handed back only once they lapse (their instance died), then taken again, by anyone.
    expect(await releaseLapsed(test.current.db, { now: at(29_000), limit: 100 })).toBe(0);
    expect(await releaseLapsed(test.current.db, { now: at(31_000), limit: 100 })).toBe(5);
    const lapsed = await claimDeliveries(test.current.db, { owner: 'c', now: at(31_000), leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} });
    expect(byEndpoint(lapsed, busy)).toHaveLength(4);
    expect(byEndpoint(lapsed, quiet).map((d) => d.row.id)).toEqual(byEndpoint(first, quiet).map((d) => d.row.id));
    expect(byEndpoint(lapsed, quiet)[0]!.row.attempts).toBe(2);
  });

  it("counts an instance's own deliveries while it sends them, and another's while they are leased", async () => {
    const endpoint = await anEndpoint();
    await rows(endpoint, await requests(12), [2], at(-1_000));
    const claim = async (owner: string, sending: Record<string, number>) =>
      (await claimDeliveries(test.current.db, { owner, now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64, sending })).filter((d) => d.row.endpointId === endpoint);
    expect(await claim('a', {})).toHaveLength(4);
    // Still sending all four: no slot left.
    expect(await claim('a', { [endpoint]: 4 })).toHaveLength(0);
    // Three of them sent, their outcomes not yet written (still leased): three slots free for it.
    expect(await claim('a', { [endpoint]: 1 })).toHaveLength(3);
    // For another instance, every row the first holds under lease is in flight.
    expect(await claim('b', {})).toHaveLength(0);
  });

  it('re-driving a dead letter makes its row due again; one delivered since, or whose endpoint is gone, is told apart', async () => {
    const letters = new DeadLetterService({ db: test.current.db, clock: { now: () => NOW }, callbacks: null as never, findSeller: async () => null, wake: () => {}, wakeWebhooks: () => {} });
    const deadLetter = async (endpoint: string) => {
      const [request] = await requests(1);
      await rows(endpoint, [request!], [2], at(-1_000));
      const [d] = (await claimDeliveries(test.current.db, { owner: 'a', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} })).filter((x) => x.row.endpointId === endpoint);
      const letterId = randomUUID();
      expect(await markFailed(test.current.db, { id: d!.row.id, endpointId: endpoint, owner: 'a', now: NOW, error: 'HTTP 500', retryAt: null, deadLetterId: letterId, breakerAfter: 99, pauseUntil: NOW })).toBe('dead');
      return { letterId, rowId: d!.row.id };
    };
    // Re-driven, then delivered, then re-driven again (a second admin): resolved, nothing to send.
    const endpoint = await anEndpoint();
    const first = await deadLetter(endpoint);
    const redriven = await letters.redrive(first.letterId);
    expect(redriven.ok && redriven.value.resolvedAt).toEqual(NOW);
    const [again] = (await claimDeliveries(test.current.db, { owner: 'a', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} })).filter((x) => x.row.id === first.rowId);
    expect(again).toBeDefined();
    await markDelivered(test.current.db, { id: first.rowId, endpointId: endpoint, owner: 'a', now: NOW });
    await test.current.db.update(deadLetters).set({ resolvedAt: null }).where(eq(deadLetters.id, first.letterId));
    const late = await letters.redrive(first.letterId);
    expect(late.ok && late.value).toMatchObject({ resolvedAt: NOW });
    // Its endpoint deleted: the re-drive fails, and says why.
    const gone = await anEndpoint();
    const second = await deadLetter(gone);
    await test.current.db.delete(webhookEndpoints).where(eq(webhookEndpoints.id, gone));
    const failed = await letters.redrive(second.letterId);
    expect(failed.ok && failed.value).toMatchObject({ resolvedAt: null, lastError: 'the webhook endpoint was deleted since' });
  });

  it('dead-letters a failure past its retry window, with the row, and never one still within it', async () => {
    const endpoint = await anEndpoint();
    const [request] = await requests(1);
    await rows(endpoint, [request!], [2], at(-1_000));
    const [d] = await claimDeliveries(test.current.db, { owner: 'a', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} });
    const base = { id: d!.row.id, endpointId: endpoint, owner: 'a', now: NOW, error: 'HTTP 500', breakerAfter: 2, pauseUntil: at(5_000) };
    expect(await markFailed(test.current.db, { ...base, retryAt: at(1_000), deadLetterId: randomUUID() })).toBe('retry');
    // Not this instance's any more: nothing is written.
    expect(await markFailed(test.current.db, { ...base, retryAt: null, deadLetterId: randomUUID() })).toBe('lost');
    const [again] = await claimDeliveries(test.current.db, { owner: 'a', now: at(1_000), leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} });
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

describe('direct dispatch: the writing instance leases the rows its status changes write', () => {
  const lease = (over: Partial<DirectLease> = {}): DirectLease => ({ owner: 'a', now: NOW, until: at(30_000), perEndpoint: 4, room: 64, sending: {}, ...over });
  const move = (id: string, revision: number, status: 'CANCELED' | 'FAILED'): Transition => ({
    id,
    expectedRevision: revision,
    changes: { status, updatedAt: NOW },
    event: { type: status, message: null, data: null },
  });
  async function userWithEndpoint(): Promise<{ userId: string; endpoint: string }> {
    const endpoint = randomUUID();
    const userId = `u-${endpoint}`;
    await test.current.db.insert(webhookEndpoints).values({ id: endpoint, userId, url: 'https://hooks.example.com/', events: ['CANCELED', 'FAILED'], secret: 'whsec_eA==', enabled: true, createdAt: NOW, updatedAt: NOW });
    return { userId, endpoint };
  }
  const requestsOf = (userId: string, n: number) => Promise.all(Array.from({ length: n }, async () => (await insertRequest(test.current.db, newRequestColumns({ userId }))).id));

  it('takes them under a lease like a claim, within the endpoint cap and the room given, and leaves the rest to a claim', async () => {
    const { userId, endpoint } = await userWithEndpoint();
    const ids = await requestsOf(userId, 3);
    const written = await applyTransitions(test.current.db, ids.map((id) => move(id, 1, 'CANCELED')), lease({ perEndpoint: 2 }));
    const direct = ids.flatMap((id) => written.get(id)!.outbox.direct);
    expect(direct).toHaveLength(2);
    expect(ids.reduce((n, id) => n + written.get(id)!.outbox.queued, 0)).toBe(1);
    for (const d of direct) {
      expect(d).toMatchObject({ url: 'https://hooks.example.com/', secret: 'whsec_eA==' });
      expect(d.row).toMatchObject({ endpointId: endpoint, revision: 2, state: 'pending', leaseOwner: 'a', leaseExpiresAt: at(30_000), attempts: 1, retrySince: NOW });
      expect(d.row.payload).toMatchObject({ id: d.row.requestId, status: 'CANCELED', revision: 2 });
    }
    // The two leased ones fill the endpoint's slots across the fleet: another instance's claim takes nothing.
    const ours = (claimed: Awaited<ReturnType<typeof claimDeliveries>>) => claimed.filter((d) => d.row.endpointId === endpoint);
    expect(ours(await claimDeliveries(test.current.db, { owner: 'b', now: NOW, leaseMs: 30_000, perEndpoint: 2, limit: 64, sending: {} }))).toEqual([]);
    // One delivered: the row left behind is claimed, and it is the third request's.
    await markDelivered(test.current.db, { id: direct[0]!.row.id, endpointId: endpoint, owner: 'a', now: NOW });
    const claimed = ours(await claimDeliveries(test.current.db, { owner: 'b', now: NOW, leaseMs: 30_000, perEndpoint: 2, limit: 64, sending: {} }));
    expect(claimed.map((d) => d.row.requestId)).toEqual(ids.filter((id) => written.get(id)!.outbox.queued === 1));
    expect(claimed[0]!.row.attempts).toBe(1);

    // The room given bounds what is taken, whatever the cap.
    const more = await requestsOf(userId, 3);
    const roomy = await applyTransitions(test.current.db, more.map((id) => move(id, 1, 'CANCELED')), lease({ perEndpoint: 100, room: 1 }));
    expect(more.flatMap((id) => roomy.get(id)!.outbox.direct)).toHaveLength(1);
  });

  it('never takes a row while an earlier revision of its request is pending for the endpoint, and takes none without a lease', async () => {
    const { userId, endpoint } = await userWithEndpoint();
    const [first, second] = await requestsOf(userId, 2);
    // Revision 2 of the first request is queued (no lease), then its revision 3 is written with one: it must wait its turn.
    const queued = await applyTransitions(test.current.db, [move(first!, 1, 'CANCELED')]);
    expect(queued.get(first!)!.outbox).toEqual({ direct: [], queued: 1 });
    const next = await applyTransitions(test.current.db, [move(first!, 2, 'FAILED'), move(second!, 1, 'CANCELED')], lease());
    expect(next.get(first!)!.outbox).toEqual({ direct: [], queued: 1 });
    expect(next.get(second!)!.outbox.direct.map((d) => d.row.requestId)).toEqual([second]);
    // A claim sends the first request's revisions in order.
    const claimed = await claimDeliveries(test.current.db, { owner: 'b', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} });
    expect(claimed.filter((d) => d.row.endpointId === endpoint).map((d) => [d.row.requestId, d.row.revision])).toEqual([[first, 2]]);
  });

  it('takes nothing for a paused or disabled endpoint', async () => {
    const { userId, endpoint } = await userWithEndpoint();
    const [r1, r2] = await requestsOf(userId, 2);
    await test.current.db.update(webhookEndpoints).set({ pausedUntil: at(60_000) }).where(eq(webhookEndpoints.id, endpoint));
    const paused = await applyTransitions(test.current.db, [move(r1!, 1, 'CANCELED')], lease());
    expect(paused.get(r1!)!.outbox).toEqual({ direct: [], queued: 1 });
    await test.current.db.update(webhookEndpoints).set({ pausedUntil: null, enabled: false }).where(eq(webhookEndpoints.id, endpoint));
    const disabled = await applyTransitions(test.current.db, [move(r2!, 1, 'CANCELED')], lease());
    expect(disabled.get(r2!)!.outbox).toEqual({ direct: [], queued: 0 });
  });
});

describe('direct dispatch through the relay', () => {
  it('sends a change at once, and the next revision, queued behind it, as soon as it is delivered, not at the next poll', async () => {
    const endpoint = randomUUID();
    const userId = `u-${endpoint}`;
    await test.current.db.insert(webhookEndpoints).values({ id: endpoint, userId, url: 'https://hooks.example.com/', events: ['OUT_OF_STOCK', 'CANCELED'], secret: 'whsec_eA==', enabled: true, createdAt: NOW, updatedAt: NOW });
    // A receiver that holds the first event until the test lets it answer.
    const sent: string[] = [];
    let answerFirst!: () => void;
    const firstAnswered = new Promise<void>((r) => (answerFirst = r));
    const sender = {
      async send(o: SendOptions): Promise<SendResult> {
        const status = (JSON.parse(o.body) as { data: { status: string } }).data.status;
        sent.push(status);
        if (status === 'OUT_OF_STOCK') await firstAnswered;
        return { kind: 'status', status: 204 };
      },
    } as unknown as WebhookSender;
    // Polls an hour apart: whatever is sent here was sent because something woke the relay.
    const relay = aRelay('direct', sender, { pollMs: 3_600_000, maxInFlight: 8 });
    const requests = new RequestService({
      db: test.current.db,
      pubsub: new MemoryPubSub(),
      clock: { now: () => NOW },
      limits: { maxExpiryHorizonMs: 3_600_000 } as never,
      webhooks: relay,
    });
    const row = await insertRequest(test.current.db, newRequestColumns({ userId }));
    relay.start();
    try {
      await requests.commit(row.id, () => ({ to: 'SEARCHING', type: 'SEARCH_STARTED' }));
      await requests.commit(row.id, () => ({ to: 'OUT_OF_STOCK', type: 'OUT_OF_STOCK' }));
      await eventually(async () => sent.length === 1, 10_000);
      // Revision 4 waits behind revision 3, which its receiver has not answered yet.
      await requests.commit(row.id, () => ({ to: 'CANCELED', type: 'CANCELED' }));
      const outbox = async () => (await test.current.db.select().from(webhookOutbox).where(eq(webhookOutbox.endpointId, endpoint))).map((o) => [o.revision, o.state, o.leaseOwner]);
      expect((await outbox()).sort()).toEqual([
        [3, 'pending', 'direct'],
        [4, 'pending', null],
      ]);
      expect(sent).toEqual(['OUT_OF_STOCK']);
      answerFirst();
      await eventually(async () => sent.length === 2, 10_000);
      expect(sent).toEqual(['OUT_OF_STOCK', 'CANCELED']);
      // Both delivered: gone from the outbox, kept among the deliveries.
      await eventually(async () => (await outbox()).length === 0, 10_000);
      const kept = await test.current.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, endpoint));
      expect(kept.map((d) => d.revision).sort()).toEqual([3, 4]);
    } finally {
      answerFirst();
      await relay.stop(1_000);
    }
  });
});

describe('delivery slots', () => {
  it('a sent delivery holds none while its outcome waits to be recorded', async () => {
    const [first, second] = [await anEndpoint(), await anEndpoint()];
    const [a, b] = await requests(2);
    await rows(first, [a!], [2], at(-2_000));
    await rows(second, [b!], [2], at(-1_000));
    const payload = { status: 'CANCELED', revision: 2, bestOffer: null, order: null, failureReason: null, at: NOW.toISOString() };
    await test.current.db.update(webhookOutbox).set({ payload: sql`jsonb_build_object('id', ${webhookOutbox.requestId}) || ${JSON.stringify(payload)}::jsonb` }).where(sql`${webhookOutbox.endpointId} in (${first}, ${second})`);
    // The database records deliveries only when the gate opens.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let recordings = 0;
    const records = (q: SQL) => q.queryChunks.some((c) => Array.isArray((c as { value?: unknown }).value) && (c as { value: string[] }).value.join('').includes('insert into webhook_deliveries'));
    const db = new Proxy(test.current.db, {
      get(target, prop, receiver) {
        if (prop !== 'execute') return Reflect.get(target, prop, receiver) as unknown;
        return async (q: SQL) => {
          if (records(q)) {
            recordings += 1;
            await gate;
          }
          return target.execute(q);
        };
      },
    });
    const sent: string[] = [];
    const sender = {
      async send(o: SendOptions): Promise<SendResult> {
        sent.push(o.webhookId);
        return { kind: 'status', status: 204 };
      },
    } as unknown as WebhookSender;
    // One slot, polls an hour apart: the second row is sent only if the first's send freed it.
    const relay = aRelay('slots', sender, { maxInFlight: 1 }, undefined, db);
    relay.start();
    try {
      await eventually(async () => sent.length === 2, 10_000);
      expect(recordings).toBeGreaterThanOrEqual(1);
      const pending = await test.current.db.select().from(webhookOutbox).where(sql`${webhookOutbox.endpointId} in (${first}, ${second})`);
      expect(pending.map((r) => r.leaseOwner)).toEqual(['slots', 'slots']);
      open();
      await eventually(async () => (await test.current.db.select().from(webhookDeliveries).where(sql`${webhookDeliveries.endpointId} in (${first}, ${second})`)).length === 2, 10_000);
    } finally {
      open();
      await relay.stop(1_000);
    }
  });
});

describe('outbox retention', () => {
  const HOUR = 3_600_000;

  async function outboxRow(endpointId: string, requestId: string, revision: number, state: WebhookOutboxRow['state'], createdAgoMs: number): Promise<number> {
    const [row] = await test.current.db
      .insert(webhookOutbox)
      .values({
        webhookId: `msg_${randomUUID()}`,
        endpointId,
        requestId,
        revision,
        payload: {},
        state,
        // Pending rows are due later: nothing here is sent.
        nextAttemptAt: state === 'pending' ? at(HOUR) : at(-createdAgoMs),
        createdAt: at(-createdAgoMs),
      })
      .returning({ id: webhookOutbox.id });
    return row!.id;
  }

  let nextId = 1_000_000;
  async function delivered(endpointId: string, requestId: string, deliveredAgoMs: number): Promise<number> {
    const id = nextId++;
    await test.current.db.insert(webhookDeliveries).values({ id, webhookId: `msg_${randomUUID()}`, endpointId, requestId, revision: 2, attempts: 1, createdAt: at(-deliveredAgoMs - HOUR), deliveredAt: at(-deliveredAgoMs) });
    return id;
  }

  it('deletes deliveries older than the window, in batches, and keeps recent ones, dead letters and undelivered rows', async () => {
    const endpoint = await anEndpoint();
    const reqs = await requests(11);
    // Seven delivered 73 to 100 hours ago: past a 72-hour window, more than three batches of two.
    for (let i = 0; i < 7; i++) await delivered(endpoint, reqs[i]!, (73 + 4 * i) * HOUR);
    const keptDelivery = await delivered(endpoint, reqs[7]!, 71 * HOUR);
    const kept = [
      await outboxRow(endpoint, reqs[8]!, 2, 'dead', 200 * HOUR),
      await outboxRow(endpoint, reqs[9]!, 2, 'gone', 200 * HOUR),
      await outboxRow(endpoint, reqs[10]!, 2, 'pending', 200 * HOUR),
    ];

    const metrics = new Metrics(false);
    const sender = new WebhookSender({ urls: 'any' });
    const relay = aRelay('sweeper', sender, { pollMs: 50, maxInFlight: 4, retryWindowMs: HOUR, retentionMs: 72 * HOUR, sweepEveryMs: 20, sweepBatch: 2 }, metrics);
    const deliveries = async () => (await test.current.db.select({ id: webhookDeliveries.id }).from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, endpoint))).map((r) => r.id);
    const outbox = async () => (await test.current.db.select({ id: webhookOutbox.id }).from(webhookOutbox).where(eq(webhookOutbox.endpointId, endpoint))).map((r) => r.id).sort((a, b) => a - b);
    const swept = async () => Number(/^broker_webhook_outbox_swept_total (\d+)$/m.exec((await metrics.render()).body)?.[1]);
    relay.start();
    try {
      await eventually(async () => (await deliveries()).length === 1, 10_000);
      // An operator sees how many were swept; the sweeps that follow find nothing more.
      await eventually(async () => (await swept()) === 7, 10_000);
    } finally {
      await relay.stop(1_000);
      await sender.close();
    }
    expect(await deliveries()).toEqual([keptDelivery]);
    expect(await outbox()).toEqual(kept);
    expect(await swept()).toBe(7);
  });

  it('a delivery leaves the outbox for the deliveries kept, less its payload', async () => {
    const endpoint = await anEndpoint();
    const [request] = await requests(1);
    await rows(endpoint, [request!], [2], at(-1_000));
    const [d] = await claimDeliveries(test.current.db, { owner: 'a', now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} });
    // Another instance's record of it does nothing: the lease is this one's.
    await markDelivered(test.current.db, { id: d!.row.id, endpointId: endpoint, owner: 'b', now: NOW });
    expect(await test.current.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, d!.row.id))).toEqual([]);
    await markDelivered(test.current.db, { id: d!.row.id, endpointId: endpoint, owner: 'a', now: at(500) });
    expect(await test.current.db.select().from(webhookOutbox).where(eq(webhookOutbox.id, d!.row.id))).toEqual([]);
    const [kept] = await test.current.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, d!.row.id));
    expect(kept).toEqual({ id: d!.row.id, webhookId: d!.row.webhookId, endpointId: endpoint, requestId: request, revision: 2, attempts: 1, createdAt: d!.row.createdAt, deliveredAt: at(500) });
  });

  it('finds the deliveries to delete through their delivery-time index, not by reading the table', async () => {
    const endpoint = await anEndpoint();
    const [request] = await requests(1);
    // A recent delivered history, and nothing old enough to delete.
    await test.current.db.execute(sql`
      insert into webhook_deliveries (id, webhook_id, endpoint_id, request_id, revision, attempts, created_at, delivered_at)
      select 2000000 + i, 'msg_plan_' || i, ${endpoint}::uuid, ${request!}::uuid, 100 + i, 1, ${NOW.toISOString()}::timestamptz,
        ${NOW.toISOString()}::timestamptz - make_interval(secs => i)
      from generate_series(1, 3000) i`);
    await test.current.db.execute(sql`analyze webhook_deliveries`);
    const plan = rowsOf<Record<string, unknown>>(
      await test.current.db.execute(sql`
        explain (format json)
        select id from webhook_deliveries
        where delivered_at < ${new Date(NOW.getTime() - 72 * HOUR).toISOString()}::timestamptz
        order by delivered_at limit 1000 for update skip locked`),
    );
    const text = JSON.stringify(plan);
    expect(text).toContain('webhook_deliveries_delivered_idx');
    expect(text).not.toContain('Seq Scan');
  });
});
