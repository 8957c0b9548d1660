import type { Client } from 'graphql-ws';
import { Pool } from 'undici';
import WebSocket from 'ws';
import type { BrokerClient } from './lib/broker-client.js';
import { cpuByPid, processCpuSeconds, sleep } from './lib/proc.js';
import { type CapturedCall, type SandboxHandle, totalCalls } from './lib/sandbox.js';
import { percentiles } from './lib/stats.js';
import { CREATE } from './load.js';
import { ADDRESS } from './workload.js';

/** One timed run of a closed-loop client: throughput and the client's own CPU per call. */
export interface RawRun {
  connections: number;
  calls: number;
  errors: number;
  seconds: number;
  callsPerSecond: number;
  /** CPU of the benchmark process (the bare client) per call, µs. */
  clientCpuMicrosPerCall: number;
  /** CPU of the sandbox process per call, µs (the same partner work in every mode). */
  sandboxCpuMicrosPerCall: number | null;
}

/**
 * The raw HTTP loopback ceiling: a bare undici Pool replaying the engine's own quote calls
 * (captured from the broker's connector) against the same sandbox, `connections` in flight, as
 * fast as they come back. A short warm-up is excluded from the window.
 */
export async function rawCeiling(
  sandbox: SandboxHandle,
  calls: readonly CapturedCall[],
  o: { connections: number; durationMs: number; warmupMs: number },
): Promise<RawRun> {
  const pool = new Pool(sandbox.url, { connections: o.connections, pipelining: 1, keepAliveTimeout: 30_000 });
  let next = 0;
  let counting = false;
  let done = 0;
  let errors = 0;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const c = calls[next++ % calls.length]!;
      try {
        const res = await pool.request({ path: c.path, method: c.method as 'GET' | 'POST', headers: c.headers, body: c.body });
        // Read 2xx answers as the connector does; drain the rest (404 "not carried").
        if (res.statusCode >= 200 && res.statusCode < 300) JSON.parse(await res.body.text());
        else await res.body.dump();
        if (counting) done += 1;
      } catch {
        if (counting) errors += 1;
      }
    }
  };
  const workers = Array.from({ length: o.connections }, worker);
  await sleep(o.warmupMs);
  counting = true;
  const cpu0 = process.cpuUsage();
  const sb0 = processCpuSeconds(sandbox.child.pid);
  const t0 = performance.now();
  await sleep(o.durationMs);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const sb1 = processCpuSeconds(sandbox.child.pid);
  counting = false;
  const calls_ = done;
  stop = true;
  await Promise.allSettled(workers);
  await pool.close();
  return {
    connections: o.connections,
    calls: calls_,
    errors,
    seconds,
    callsPerSecond: calls_ / seconds,
    clientCpuMicrosPerCall: calls_ > 0 ? (cpu.user + cpu.system) / calls_ : Number.NaN,
    sandboxCpuMicrosPerCall: sb0 !== null && sb1 !== null && calls_ > 0 ? ((sb1 - sb0) * 1e6) / calls_ : null,
  };
}

export interface EngineFanoutRun {
  requestsInFlight: number;
  requests: number;
  sellerCalls: number;
  seconds: number;
  callsPerSecond: number;
  /** Mean seller calls in flight in the window (the broker's call durations summed, per second). */
  callsInFlight: number;
  /** CPU of the whole broker process per seller call in the window, µs. */
  serverCpuMicrosPerCall: number | null;
  sandboxCpuMicrosPerCall: number | null;
  /** CPU of the Postgres backends serving the broker, per call, µs (null on embedded PGlite, which is inside the broker). */
  postgresCpuMicrosPerCall: number | null;
  /** Postgres transactions (autocommitted statements count one each) per call; approximate, Postgres publishes its counters about once a second. */
  postgresTransactionsPerCall: number | null;
  errors: number;
}

/**
 * Fan-out-heavy load on the engine: `inFlight` requests at a time for books nobody carries
 * (fresh ISBNs: no cache hit, nothing to coalesce), so every request asks every seller in every
 * tier. Closed loop: a settled request (OUT_OF_STOCK, seen on its subscription) is replaced at once.
 */
export async function engineFanout(
  d: { client: BrokerClient; token: string; ws: Client; sandbox: SandboxHandle; brokerPid: number; dbPids: (() => Promise<number[]>) | null; dbTransactions: (() => Promise<number | null>) | null; nextIsbn: () => string },
  o: { inFlight: number; durationMs: number; warmupMs: number; drainMs: number; expiresInMs: number },
): Promise<EngineFanoutRun> {
  let stop = false;
  let errors = 0;
  let settled = 0;
  let seq = 0;
  const expiresAt = new Date(Date.now() + o.expiresInMs).toISOString();
  const prefix = `fanout-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

  const one = async (): Promise<void> => {
    const res = await d.client.gql<{ createPurchaseRequest: { purchaseRequest: { id: string } | null } }>(
      CREATE,
      {
        input: {
          idempotencyKey: `${prefix}-${seq++}`,
          book: { isbn: d.nextIsbn() },
          maxTotalPrice: { cents: 5_000, currency: 'USD' },
          expiresAt,
          shippingAddress: ADDRESS,
          paymentToken: 'tok_visa',
        },
      },
      d.token,
    );
    const id = res.data?.createPurchaseRequest?.purchaseRequest?.id;
    if (!id) {
      errors += 1;
      await sleep(50);
      return;
    }
    await new Promise<void>((resolve) => {
      let finished = false;
      const finish = (ok: boolean) => {
        if (finished) return;
        finished = true;
        if (ok) settled += 1;
        else errors += 1;
        unsubscribe();
        resolve();
      };
      const unsubscribe = d.ws.subscribe<{ purchaseRequestUpdated: { status: string } }>(
        { query: 'subscription W($id: ID!) { purchaseRequestUpdated(id: $id) { id status revision } }', variables: { id } },
        {
          next: (m) => {
            const s = m.data?.purchaseRequestUpdated?.status;
            if (s === 'OUT_OF_STOCK' || s === 'QUOTED' || s === 'EXPIRED' || s === 'FAILED' || s === 'ORDERED') finish(s === 'OUT_OF_STOCK');
          },
          error: () => finish(false),
          complete: () => finish(false),
        },
      );
    });
  };
  const loops = Array.from({ length: o.inFlight }, async () => {
    while (!stop) await one().catch(() => void (errors += 1));
  });

  await sleep(o.warmupMs);
  const s0 = totalCalls(await d.sandbox.stats()).total;
  const cpu0 = processCpuSeconds(d.brokerPid);
  const sb0 = processCpuSeconds(d.sandbox.child.pid);
  const db0 = d.dbPids ? cpuByPid(await d.dbPids()) : null;
  const x0 = d.dbTransactions ? await d.dbTransactions() : null;
  const m0 = await d.client.metrics();
  const settled0 = settled;
  const errors0 = errors;
  const t0 = performance.now();
  await sleep(o.durationMs);
  const s1 = totalCalls(await d.sandbox.stats()).total;
  const cpu1 = processCpuSeconds(d.brokerPid);
  const sb1 = processCpuSeconds(d.sandbox.child.pid);
  const db1 = d.dbPids ? cpuByPid(await d.dbPids()) : null;
  const x1 = d.dbTransactions ? await d.dbTransactions() : null;
  const m1 = await d.client.metrics();
  const seconds = (performance.now() - t0) / 1000;
  // Little's law over the broker's own call timings: seconds spent in calls per second of window.
  const busy = (m: typeof m0) => m.sum('broker_seller_call_duration_seconds_sum');
  const requests = settled - settled0;
  const dbSeconds = db0 && db1 ? [...db1].reduce((sum, [pid, cpu]) => sum + cpu - (db0.get(pid) ?? 0), 0) : null;
  const windowErrors = errors - errors0;
  stop = true;
  // Let the requests in flight finish, so the next measurement starts on a quiet engine.
  await Promise.race([Promise.allSettled(loops), sleep(o.drainMs)]);
  const sellerCalls = s1 - s0;
  return {
    requestsInFlight: o.inFlight,
    requests,
    sellerCalls,
    seconds,
    callsPerSecond: sellerCalls / seconds,
    callsInFlight: (busy(m1) - busy(m0)) / seconds,
    serverCpuMicrosPerCall: cpu0 !== null && cpu1 !== null && sellerCalls > 0 ? ((cpu1 - cpu0) * 1e6) / sellerCalls : null,
    sandboxCpuMicrosPerCall: sb0 !== null && sb1 !== null && sellerCalls > 0 ? ((sb1 - sb0) * 1e6) / sellerCalls : null,
    postgresCpuMicrosPerCall: dbSeconds !== null && sellerCalls > 0 ? (dbSeconds * 1e6) / sellerCalls : null,
    postgresTransactionsPerCall: x0 !== null && x1 !== null && sellerCalls > 0 ? (x1 - x0) / sellerCalls : null,
    errors: windowErrors,
  };
}

export interface ApolloRun {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
}

/** A bare Apollo Server's trivial mutation, closed loop with `connections` in flight. */
export async function apolloCeiling(url: string, o: { connections: number; durationMs: number; warmupMs: number }): Promise<ApolloRun> {
  const pool = new Pool(url, { connections: o.connections, pipelining: 1 });
  const body = JSON.stringify({ query: 'mutation P($n: Int!) { ping(n: $n) }', variables: { n: 1 } });
  let counting = false;
  let stop = false;
  let done = 0;
  let errors = 0;
  const worker = async () => {
    while (!stop) {
      try {
        const res = await pool.request({ path: '/', method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const parsed = JSON.parse(await res.body.text()) as { data?: { ping?: number } };
        if (counting) {
          if (res.statusCode === 200 && parsed.data?.ping === 2) done += 1;
          else errors += 1;
        }
      } catch {
        if (counting) errors += 1;
      }
    }
  };
  const workers = Array.from({ length: o.connections }, worker);
  await sleep(o.warmupMs);
  counting = true;
  const t0 = performance.now();
  await sleep(o.durationMs);
  const seconds = (performance.now() - t0) / 1000;
  counting = false;
  const requests = done;
  stop = true;
  await Promise.allSettled(workers);
  await pool.close();
  return { requests, errors, seconds, rps: requests / seconds };
}

export interface FanoutResult {
  clients: number;
  triggers: number;
  /** Deliveries expected (clients × triggers) and those that never came within the timeout. */
  expected: number;
  missing: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

/**
 * Subscription delivery to many subscribers, broker vs a raw `ws` broadcast, interleaved trigger by
 * trigger. Broker: `clients` graphql-ws connections subscribe to one request; each trigger is an
 * `updatePurchaseRequest` (a new deadline) and every subscriber's latency is from just before the
 * mutation is sent to the arrival of the new revision. Raw: as many plain WebSocket clients of the
 * reference server; each trigger is one HTTP POST making it send the same-sized message to all.
 */
export async function subscriptionFanout(d: {
  client: BrokerClient;
  token: string;
  requestId: string;
  makeWs: () => Client;
  rawUrl: string;
  clients: number;
  triggers: number;
  timeoutMs: number;
  /** Called once every broker subscriber has its first state and before any raw client connects (memory readings). */
  onSubscribed?: () => Promise<void>;
}): Promise<{ broker: FanoutResult; raw: FanoutResult; openMs: number }> {
  const t0 = performance.now();
  // Broker subscribers: each on its own connection, as 2,000 separate users' apps would be.
  const brokerClients: Client[] = [];
  const brokerLatest: number[] = new Array(d.clients).fill(-1);
  let brokerTarget = Number.POSITIVE_INFINITY;
  let brokerTriggerAt = 0;
  const brokerSamples: number[] = [];
  let brokerPending = 0;
  let brokerWake: (() => void) | null = null;
  const ready: Array<Promise<void>> = [];
  const rawSockets: WebSocket[] = [];
  try {
    for (let i = 0; i < d.clients; i++) {
      const ws = d.makeWs();
      brokerClients.push(ws);
      let first = true;
      ready.push(
        new Promise<void>((resolve, reject) => {
          ws.subscribe<{ purchaseRequestUpdated: { revision: number } }>(
            { query: 'subscription W($id: ID!) { purchaseRequestUpdated(id: $id) { id status revision } }', variables: { id: d.requestId } },
            {
              next: (m) => {
                const rev = m.data?.purchaseRequestUpdated?.revision ?? -1;
                if (first) {
                  first = false;
                  brokerLatest[i] = rev;
                  resolve();
                  return;
                }
                if (rev >= brokerTarget && brokerLatest[i]! < brokerTarget) {
                  brokerSamples.push(performance.now() - brokerTriggerAt);
                  brokerPending -= 1;
                  if (brokerPending === 0) brokerWake?.();
                }
                brokerLatest[i] = Math.max(brokerLatest[i]!, rev);
              },
              error: (e) => reject(e instanceof Error ? e : new Error('subscription error')),
              complete: () => undefined,
            },
          );
        }),
      );
      // Open in batches so the accept queue is never the thing measured.
      if (ready.length % 100 === 0) await Promise.all(ready.slice(-100));
    }
    await Promise.all(ready);
    await d.onSubscribed?.();

    // Raw subscribers.
    const rawWsUrl = d.rawUrl.replace(/^http/, 'ws');
    const rawSamples: number[] = [];
    let rawTarget = -1;
    let rawTriggerAt = 0;
    let rawPending = 0;
    let rawWake: (() => void) | null = null;
    const rawLatest: number[] = new Array(d.clients).fill(-1);
    for (let i = 0; i < d.clients; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, d.clients - i) }, (_, k) => {
          const idx = i + k;
          const ws = new WebSocket(rawWsUrl);
          rawSockets.push(ws);
          ws.on('message', (data) => {
            const rev = (JSON.parse(String(data)) as { payload: { data: { purchaseRequestUpdated: { revision: number } } } }).payload.data
              .purchaseRequestUpdated.revision;
            if (rev === rawTarget && rawLatest[idx]! < rawTarget) {
              rawSamples.push(performance.now() - rawTriggerAt);
              rawPending -= 1;
              if (rawPending === 0) rawWake?.();
            }
            rawLatest[idx] = Math.max(rawLatest[idx]!, rev);
          });
          return new Promise<void>((resolve, reject) => {
            ws.once('open', () => resolve());
            ws.once('error', reject);
          });
        }),
      );
    }
    const openMs = performance.now() - t0;

    const rawPool = new Pool(d.rawUrl, { connections: 1 });
    let brokerMissing = 0;
    let rawMissing = 0;
    const baseDeadline = Date.now() + 3_600_000;
    try {
      await sleep(500);
      for (let t = 0; t < d.triggers; t++) {
        // Broker trigger.
        const currentMax = Math.max(...brokerLatest);
        brokerTarget = currentMax + 1;
        brokerPending = d.clients;
        const brokerDone = new Promise<void>((resolve) => {
          brokerWake = resolve;
          setTimeout(resolve, d.timeoutMs);
        });
        brokerTriggerAt = performance.now();
        const res = await d.client.gql<{ updatePurchaseRequest: { userErrors: Array<{ code: string }> } }>(
          'mutation U($id: ID!, $input: UpdatePurchaseRequestInput!) { updatePurchaseRequest(id: $id, input: $input) { purchaseRequest { revision } userErrors { code message } } }',
          { id: d.requestId, input: { expiresAt: new Date(baseDeadline + t * 1_000).toISOString() } },
          d.token,
        );
        if (res.errors || (res.data?.updatePurchaseRequest.userErrors.length ?? 1) > 0) {
          throw new Error(`updatePurchaseRequest refused during the fan-out test: ${JSON.stringify(res.errors ?? res.data)}`);
        }
        await brokerDone;
        brokerMissing += Math.max(0, brokerPending);
        brokerPending = 0;
        await sleep(200);

        // Raw trigger.
        rawTarget = t + 1;
        rawPending = d.clients;
        const rawDone = new Promise<void>((resolve) => {
          rawWake = resolve;
          setTimeout(resolve, d.timeoutMs);
        });
        rawTriggerAt = performance.now();
        const r = await rawPool.request({ path: `/broadcast?rev=${rawTarget}&id=${d.requestId}`, method: 'POST' });
        await r.body.dump();
        await rawDone;
        rawMissing += Math.max(0, rawPending);
        rawPending = 0;
        await sleep(200);
      }
    } finally {
      await rawPool.close();
    }
    const summarize = (samples: number[], missing: number): FanoutResult => {
      const p = percentiles(samples);
      return { clients: d.clients, triggers: d.triggers, expected: d.clients * d.triggers, missing, p50Ms: p?.p50 ?? null, p99Ms: p?.p99 ?? null };
    };
    return { broker: summarize(brokerSamples, brokerMissing), raw: summarize(rawSamples, rawMissing), openMs };
  } finally {
    await Promise.allSettled(brokerClients.map((c) => c.dispose()));
    for (const ws of rawSockets) ws.terminate();
  }
}

