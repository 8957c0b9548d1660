import { randomBytes } from 'node:crypto';
import type { Client } from 'graphql-ws';
import type { BrokerClient } from './lib/broker-client.js';
import { sleep } from './lib/proc.js';
import { ADDRESS, type WorkItem } from './workload.js';

export const CREATE = `mutation Create($input: CreatePurchaseRequestInput!) {
  createPurchaseRequest(input: $input) { purchaseRequest { id status revision } userErrors { code message } }
}`;

export const WATCH = `subscription Watch($id: ID!) {
  purchaseRequestUpdated(id: $id) { id status revision order { total { cents } } }
}`;

/** The first status a request settles in: terminal, or watching with an answer (QUOTED, OUT_OF_STOCK). */
const SETTLED = new Set(['ORDERED', 'QUOTED', 'OUT_OF_STOCK', 'FAILED', 'EXPIRED', 'CANCELED']);
const TERMINAL = new Set(['ORDERED', 'FAILED', 'EXPIRED', 'CANCELED']);
/** The `error` of a request that had not settled when its phase stopped waiting. */
export const UNSETTLED = 'unsettled:drain_timeout';

/** What the load generator saw of one request, timed on the client (performance.now() ms). */
export interface RequestRecord {
  item: WorkItem;
  sentAt: number;
  /** Date.now() at send, to line up with the server's own timestamps. */
  sentWall: number;
  createdAt: number | null;
  id: string | null;
  status: string | null;
  settledAt: number | null;
  orderTotalCents: number | null;
  error: string | null;
}

export interface Fleet {
  /** One client per broker instance; user u talks to instance u mod N (creates and subscription alike). */
  clients: BrokerClient[];
  /** One bearer token per user. */
  tokens: string[];
  /** One graphql-ws client (one WebSocket, many subscriptions) per user, on that user's instance. */
  ws: Client[];
}

/** The broker instance a user talks to: round-robin by user. */
export function instanceOf(fleet: { clients: readonly unknown[] }, user: number): number {
  return user % fleet.clients.length;
}

export interface PhaseOptions {
  name: string;
  /** Offered rate, new requests per second (open loop, paced). */
  rate: number;
  durationMs: number;
  /** Requests created but not settled beyond which the generator waits (it never queues unboundedly). */
  maxInFlight: number;
  /** After the last request is sent, how long settling may take before the rest count as timed out. */
  drainMs: number;
  next: () => WorkItem;
  /** Deadline of every request, from now. */
  expiresInMs: number;
}

export interface PhaseResult {
  name: string;
  records: RequestRecord[];
  offeredRate: number;
  startedAt: number;
  /** When the last request was sent. */
  issuedUntil: number;
  /** When the last request settled (or the drain gave up). */
  endedAt: number;
  /** Sends held back because maxInFlight requests were already waiting. */
  throttledMs: number;
  maxInFlightSeen: number;
}

/**
 * Drives `createPurchaseRequest` at a paced rate from many users and watches each request over its
 * owner's subscription until it settles. Bounded: stops sending after `durationMs` and stops
 * waiting `drainMs` later.
 */
export async function runPhase(fleet: Fleet, o: PhaseOptions): Promise<PhaseResult> {
  const records: RequestRecord[] = [];
  const runId = randomBytes(4).toString('hex');
  let inFlight = 0;
  let maxInFlightSeen = 0;
  let throttledMs = 0;
  let wakeDrain: (() => void) | null = null;
  const expiresAt = new Date(Date.now() + o.expiresInMs).toISOString();

  const settle = (r: RequestRecord, status: string | null, error: string | null, unsubscribe?: () => void) => {
    if (r.settledAt !== null) return;
    r.settledAt = performance.now();
    r.status = status;
    r.error = error;
    inFlight -= 1;
    unsubscribe?.();
    if (inFlight === 0) wakeDrain?.();
  };

  const launch = (item: WorkItem) => {
    const r: RequestRecord = {
      item,
      sentAt: performance.now(),
      sentWall: Date.now(),
      createdAt: null,
      id: null,
      status: null,
      settledAt: null,
      orderTotalCents: null,
      error: null,
    };
    records.push(r);
    inFlight += 1;
    maxInFlightSeen = Math.max(maxInFlightSeen, inFlight);
    const input = {
      idempotencyKey: `bench-${runId}-${o.name}-${item.seq}`,
      book: { isbn: item.isbn },
      maxTotalPrice: { cents: item.maxTotalCents, currency: 'USD' },
      expiresAt,
      shippingAddress: ADDRESS,
      paymentToken: 'tok_visa',
      conditions: item.conditions,
    };
    fleet.clients[instanceOf(fleet, item.user)]!
      .gql<{ createPurchaseRequest: { purchaseRequest: { id: string; status: string } | null; userErrors: Array<{ code: string }> } }>(
        CREATE,
        { input },
        fleet.tokens[item.user]!,
      )
      .then(
        (res) => {
          r.createdAt = performance.now();
          const payload = res.data?.createPurchaseRequest;
          if (res.status !== 200 || res.errors || !payload?.purchaseRequest) {
            const code = res.errors?.[0]?.extensions?.code ?? payload?.userErrors[0]?.code ?? `HTTP_${res.status}`;
            settle(r, null, `create:${code}`);
            return;
          }
          r.id = payload.purchaseRequest.id;
          watch(r, fleet.ws[item.user]!);
        },
        (e: unknown) => settle(r, null, `create:${(e as { code?: string }).code ?? 'request_failed'}`),
      );
  };

  const watch = (r: RequestRecord, ws: Client) => {
    let unsubscribe: (() => void) | undefined;
    unsubscribe = ws.subscribe<{ purchaseRequestUpdated: { status: string; order: { total: { cents: number } } | null } }>(
      { query: WATCH, variables: { id: r.id } },
      {
        next: (msg) => {
          const state = msg.data?.purchaseRequestUpdated;
          if (msg.errors || !state) {
            settle(r, null, `subscription:${msg.errors?.[0]?.message ?? 'no data'}`, unsubscribe);
            return;
          }
          if (!SETTLED.has(state.status)) return;
          r.orderTotalCents = state.order?.total.cents ?? null;
          // Terminal statuses complete the subscription themselves; watching ones are left by us.
          settle(r, state.status, state.status === 'FAILED' ? 'status:FAILED' : null, TERMINAL.has(state.status) ? undefined : unsubscribe);
        },
        error: (e) => settle(r, null, `subscription:${e instanceof Error ? e.message : 'closed'}`),
        complete: () => settle(r, null, 'subscription:completed_unsettled'),
      },
    );
  };

  const startedAt = performance.now();
  const stopSendingAt = startedAt + o.durationMs;
  let issued = 0;
  for (;;) {
    const now = performance.now();
    if (now >= stopSendingAt) break;
    const due = Math.floor(((now - startedAt) * o.rate) / 1000) + 1;
    while (issued < due && inFlight < o.maxInFlight) {
      launch(o.next());
      issued += 1;
    }
    const before = performance.now();
    await sleep(issued < due ? 5 : Math.max(1, Math.min(20, ((issued - due + 1) * 1000) / o.rate)));
    if (issued < due) throttledMs += performance.now() - before;
  }
  const issuedUntil = performance.now();

  if (inFlight > 0) {
    await new Promise<void>((resolve) => {
      wakeDrain = resolve;
      setTimeout(resolve, o.drainMs);
    });
  }
  for (const r of records) if (r.settledAt === null) settle(r, null, UNSETTLED);
  const endedAt = Math.max(issuedUntil, ...records.map((r) => r.settledAt ?? 0));
  return { name: o.name, records, offeredRate: o.rate, startedAt, issuedUntil, endedAt, throttledMs, maxInFlightSeen };
}

/** Requests settled per second over the phase: from the first send to the last settlement. */
export function sustainedRate(p: PhaseResult): number {
  const ok = p.records.filter((r) => r.status !== null).length;
  const spanS = (p.endedAt - p.startedAt) / 1000;
  return spanS > 0 ? ok / spanS : 0;
}
