/**
 * `npm run bench` (add `--quick` for a run under a minute): the broker's benchmark (SPEC §12).
 *
 * Starts, on loopback only, the sandbox partner fleet, the broker (Postgres when DATABASE_URL is set,
 * else embedded PGlite) and two reference servers, each in its own process; drives purchase requests
 * at a target rate from many users and watches them settle over subscriptions; measures the
 * in-run references (raw undici ceiling, bare Apollo, raw ws broadcast, the physical floor); writes
 * bench/results/<timestamp>.json and prints a table. Everything it starts is stopped on the way out,
 * on failure and on Ctrl-C too. See bench/README.md for what each figure means.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Client } from 'graphql-ws';
import postgres from 'postgres';
import { loadConfig } from '../src/config.js';
import { CATALOG } from '../src/partners/sandbox/catalog.js';
import type { LedgerEntry, SandboxSellerSpec } from '../src/partners/sandbox/fleet.js';
import { createRng } from '../src/partners/sandbox/random.js';
import { type Breakdown, type PhaseAnalysis, analyzePhase, breakdown } from './analyze.js';
import { type Fleet, type PhaseResult, runPhase } from './load.js';
import { BrokerClient, issueToken } from './lib/broker-client.js';
import { REPO_ROOT, RssSampler, Supervisor, cpuByPid, firstJsonLine, freePort, machineCpu, processCpuSeconds, processMemoryMb, sleep } from './lib/proc.js';
import { SandboxHandle, captureQuoteCalls, quoteEverything, totalCalls } from './lib/sandbox.js';
import { deltaBy, median, round } from './lib/stats.js';
import { type ApolloRun, type EngineFanoutRun, type RawRun, apolloCeiling, engineFanout, rawCeiling, subscriptionFanout } from './references.js';
import { printTable } from './report.js';
import { Workload, unknownIsbn } from './workload.js';

// ---- configuration ----

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rate: { type: 'string' },
    duration: { type: 'string' },
    users: { type: 'string' },
    seed: { type: 'string' },
    'latency-scale': { type: 'string' },
    subscribers: { type: 'string' },
    out: { type: 'string' },
    profile: { type: 'boolean', default: false },
  },
  strict: true,
});

const quick = args.quick ?? false;
const num = (raw: string | undefined, fallback: number) => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`invalid number ${JSON.stringify(raw)}`);
  return n;
};

const plan = {
  mode: quick ? 'quick' : 'full',
  seed: num(args.seed, 1),
  latencyScale: num(args['latency-scale'], 1),
  users: Math.round(num(args.users, quick ? 50 : 200)),
  warmup: { rate: quick ? 40 : 60, durationMs: quick ? 2_000 : 6_000 },
  main: {
    rate: num(args.rate, quick ? 200 : 500),
    durationMs: num(args.duration, quick ? 8 : 45) * 1000,
    drainMs: quick ? 5_000 : 20_000,
  },
  /** When the main phase could not keep up: latency at a load the server can sustain (full runs only). */
  moderate: quick ? null : { share: 0.5, durationMs: 20_000, drainMs: 15_000 },
  /** ORDERED requests whose event timelines are read back for the time split. */
  timelines: quick ? 50 : 200,
  subscriptions: { clients: Math.round(num(args.subscribers, quick ? 500 : 2_000)), triggers: quick ? 5 : 10, timeoutMs: 10_000 },
  fanout: {
    /** Extra broker sellers per sandbox seller (same partner, registered again), so each request fans out widely. */
    copies: quick ? 4 : 8,
    repeats: quick ? 2 : 3,
    windowMs: quick ? 1_500 : 4_000,
    warmupMs: quick ? 600 : 1_500,
    requestsInFlight: quick ? 12 : 16,
  },
  apollo: { repeats: quick ? 2 : 3, durationMs: quick ? 1_000 : 3_000, warmupMs: quick ? 300 : 500, connections: 64 },
  /** After the main phase: longest wait for the broker to finish the work still queued. */
  quiesceMs: quick ? 8_000 : 40_000,
  /** Hard cap on the whole run; the watchdog stops everything beyond it. */
  maxRunMs: quick ? 120_000 : 420_000,
};

/** Broker settings the caller may tune through the environment; passed through when set. */
const PASS_THROUGH = [
  'ENGINE_POLL_MS',
  'ENGINE_MAX_ACTIVE',
  'ENGINE_LEASE_MS',
  'ENGINE_GLOBAL_CONCURRENCY',
  'IMPROVEMENT_WINDOW_MS',
  'RECONCILE_INTERVAL_MS',
  'ORDER_RETRY_BACKOFF_MS',
  'ORDER_INLINE_RETRIES',
  'SELLER_INITIAL_CONCURRENCY',
  'BREAKER_THRESHOLD',
  'BREAKER_HALF_OPEN_MS',
  'DB_POOL_SIZE',
  'MAX_BACKLOG',
  'LOG_LEVEL',
];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function loopbackUrl(name: string, raw: string): URL {
  const url = new URL(raw);
  if (!LOOPBACK.has(url.hostname) && !(url.hostname === '' && url.searchParams.has('host'))) {
    throw new Error(`${name} must point at this machine (127.0.0.1): the benchmark sends traffic to loopback only`);
  }
  return url;
}

/** The connector's keep-alive sockets per partner origin (all sandbox sellers share one origin). */
function connectorPoolSize(): number {
  try {
    const src = readFileSync(join(REPO_ROOT, 'src/partners/connector.ts'), 'utf8');
    return Number(/const DEFAULT_CONNECTIONS = (\d+)/.exec(src)?.[1] ?? 64);
  } catch {
    return 64;
  }
}

// ---- the run ----

const notes: string[] = [];
const sup = new Supervisor();
const cleanups: Array<() => Promise<void>> = [];
let stopping = false;

async function cleanup(): Promise<void> {
  await sup.stopAll();
  for (const c of cleanups.splice(0).reverse()) await c().catch((e: unknown) => console.error(`cleanup: ${String(e)}`));
}

function onSignal(signal: NodeJS.Signals): void {
  if (stopping) process.exit(130);
  stopping = true;
  console.error(`\n${signal}: stopping everything the benchmark started…`);
  void cleanup().finally(() => process.exit(130));
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const log = (msg: string) => process.stderr.write(`[bench ${((performance.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`);
const T0 = performance.now();

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error(`benchmark exceeded its ${plan.maxRunMs / 1000}s budget; stopping everything`);
    void cleanup().finally(() => process.exit(1));
  }, plan.maxRunMs);
  watchdog.unref();

  // Storage: a fresh database on the given Postgres server, or a fresh PGlite directory.
  const jwtSecret = randomBytes(32).toString('base64url');
  const port = await freePort();
  const brokerEnv: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: String(port),
    JWT_SECRET: jwtSecret,
    NODE_ENV: 'production',
    SANDBOX: 'off',
    LOG_LEVEL: 'warn',
    // One user may create many requests here; the limits are not what is measured.
    RATE_LIMIT_PER_MINUTE: '10000000',
    RATE_LIMIT_BURST: '10000000',
    // Requests settled QUOTED / OUT_OF_STOCK must not recheck during later phases and skew them.
    RECHECK_INTERVAL_MS: '3600000',
    RECHECK_MAX_MS: '3600000',
    WS_MAX_CONNECTIONS_PER_USER: '100000',
    WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '100000',
  };
  for (const name of PASS_THROUGH) if (process.env[name]) brokerEnv[name] = process.env[name]!;
  let database: 'postgres' | 'embedded';
  /** Pids of the Postgres backends serving the benchmark's database (their CPU is the database's share). */
  let dbBackends: () => Promise<number[]> = async () => [];
  /** Postgres's own counters for the benchmark's database (transactions are statements, for autocommitted ones). */
  let dbCounters: () => Promise<DbCounters | null> = async () => null;
  if (process.env.DATABASE_URL) {
    database = 'postgres';
    const adminUrl = loopbackUrl('DATABASE_URL', process.env.DATABASE_URL);
    const name = `broker_bench_${randomBytes(5).toString('hex')}`;
    const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`create database ${name}`);
    } catch (e) {
      throw new Error(`DATABASE_URL is set but Postgres refused to create a fresh benchmark database: ${(e as Error).message}`, { cause: e });
    } finally {
      await admin.end();
    }
    cleanups.push(async () => {
      const again = postgres(adminUrl.toString(), { max: 1, onnotice: () => {} });
      await again.unsafe(`drop database if exists ${name} with (force)`).finally(() => again.end());
    });
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    brokerEnv.DATABASE_URL = url.toString();
    const watcher = postgres(adminUrl.toString(), { max: 1, onnotice: () => {} });
    cleanups.push(() => watcher.end());
    dbBackends = async () => {
      try {
        const rows = await watcher<Array<{ pid: number }>>`select pid from pg_stat_activity where datname = ${name}`;
        return rows.map((r) => r.pid);
      } catch {
        return [];
      }
    };
    dbCounters = async () => {
      try {
        const [row] = await watcher<Array<{ xact: string; inserted: string; updated: string; returned: string }>>`
          select xact_commit + xact_rollback as xact, tup_inserted as inserted, tup_updated as updated, tup_returned as returned
          from pg_stat_database where datname = ${name}`;
        return row ? { xact: Number(row.xact), inserted: Number(row.inserted), updated: Number(row.updated), returned: Number(row.returned) } : null;
      } catch {
        return null;
      }
    };
  } else {
    database = 'embedded';
    const dir = mkdtempSync(join(tmpdir(), 'broker-bench-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    brokerEnv.DATA_DIR = dir;
  }
  if (process.env.REDIS_URL) {
    loopbackUrl('REDIS_URL', process.env.REDIS_URL);
    brokerEnv.REDIS_URL = process.env.REDIS_URL;
  }
  const effective = loadConfig(brokerEnv);

  // Processes: sandbox, broker and the two reference servers start together (the references idle until used).
  log(`starting sandbox (seed ${plan.seed}, latency ×${plan.latencyScale}), broker (${database}) and reference servers`);
  const apolloChild = sup.spawnNode('apollo-reference', 'bench/children/apollo.ts', [], { NODE_ENV: 'production' });
  const wsChild = sup.spawnNode('ws-reference', 'bench/children/ws-broadcast.ts', [], {});
  const profileDir = join(args.out ?? join(REPO_ROOT, 'bench/results'), 'profiles');
  if (args.profile) mkdirSync(profileDir, { recursive: true });
  const brokerChild = sup.spawnNode('broker', 'bench/children/broker.ts', [], brokerEnv, args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
  const [sandbox, apolloInfo, wsInfo] = await Promise.all([
    SandboxHandle.start(sup, { seed: plan.seed, latencyScale: plan.latencyScale }),
    firstJsonLine<{ url: string }>(apolloChild),
    firstJsonLine<{ url: string }>(wsChild),
  ]);
  const client = new BrokerClient(`http://127.0.0.1:${port}`, 64);
  cleanups.push(() => client.close());
  const readyBy = Date.now() + 60_000;
  while (!(await client.ready())) {
    if (brokerChild.process.exitCode !== null) throw new Error(`broker exited before it was ready\n${brokerChild.output()}`);
    if (Date.now() > readyBy) throw new Error(`broker not ready within 60 s\n${brokerChild.output()}`);
    await sleep(100);
  }
  const rss = new RssSampler(brokerChild.pid);
  cleanups.push(async () => rss.stop());
  log(`broker ready on ${client.url} (pid ${brokerChild.pid}); sandbox on ${sandbox.url}`);

  // Sellers: the sandbox fleet, registered through upsertSeller like any partner.
  const admin = await issueToken(jwtSecret, 'bench-admin', 'admin');
  const UPSERT = `mutation U($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { field code message } } }`;
  const registered: Array<{ input: (typeof sandbox.sellers)[number]; id: string }> = [];
  for (const input of sandbox.sellers) {
    const res = await client.gql<{ upsertSeller: { seller: { id: string } | null; userErrors: unknown[] } }>(UPSERT, { input }, admin);
    const id = res.data?.upsertSeller.seller?.id;
    if (!id) throw new Error(`upsertSeller ${input.name} failed: ${JSON.stringify(res.errors ?? res.data)}`);
    registered.push({ input, id });
  }

  // Prices: every seller quoted for every catalog book through the broker's own connector.
  const isbns = CATALOG.map((b) => b.isbn);
  const before = await quoteEverything(sandbox, isbns);
  if (before.failures > 0) notes.push(`${before.failures} price-table quotes failed at the start; regret uses the offers that answered`);
  // Stock high enough that popular books never sell out, so the outcome mix holds for the whole run.
  const carried = new Set<string>();
  for (const [isbn, points] of before.table) for (const p of points) carried.add(`${p.sellerKey}|${isbn}`);
  await Promise.all([...carried].map((k) => sandbox.setInventory(k.split('|')[0]!, k.split('|')[1]!, 1_000_000)));
  const specs = new Map<string, SandboxSellerSpec>((await sandbox.specs()).map((s) => [s.key, s]));
  log(`${registered.length} sellers registered; price table: ${[...before.table.values()].reduce((n, v) => n + v.length, 0)} offers over ${isbns.length} books`);

  // Users: a token and a WebSocket each.
  const tokens = await Promise.all(Array.from({ length: plan.users }, (_, i) => issueToken(jwtSecret, `bench-user-${i}`, 'user')));
  const wsErrors: string[] = [];
  const ws: Client[] = tokens.map((t) => client.wsClient(t, (e) => wsErrors.push(String((e as { message?: string })?.message ?? e))));
  cleanups.push(async () => void (await Promise.allSettled(ws.map((c) => c.dispose()))));
  const fleet: Fleet = { client, tokens, ws };
  const workload = new Workload(before.table, plan.seed, plan.users);

  // ---- warm-up (JIT, pools, the offer cache), not reported ----
  log(`warm-up: ${plan.warmup.rate}/s for ${plan.warmup.durationMs / 1000}s`);
  const warm = await runPhase(fleet, {
    name: 'warmup',
    rate: plan.warmup.rate,
    durationMs: plan.warmup.durationMs,
    maxInFlight: 1_000,
    drainMs: 10_000,
    next: () => workload.next(),
    expiresInMs: 3_600_000,
  });
  const warmErrors = warm.records.filter((r) => r.error !== null).length;
  if (warmErrors > 0) notes.push(`warm-up: ${warmErrors} of ${warm.records.length} requests ended in errors (${[...new Set(warm.records.map((r) => r.error).filter(Boolean))].slice(0, 5).join(', ')})`);

  // ---- main phase ----
  const mainMaxInFlight = Math.max(200, Math.round(plan.main.rate * 2));
  log(`main: ${plan.main.rate}/s offered for ${plan.main.durationMs / 1000}s from ${plan.users} users (at most ${mainMaxInFlight} unsettled)`);
  const m0 = await client.metrics();
  const s0 = totalCalls(await sandbox.stats());
  const cpuMain0 = processCpuSeconds(brokerChild.pid);
  const sbCpuMain0 = processCpuSeconds(sandbox.child.pid);
  const benchCpu0 = process.cpuUsage();
  const machine0 = machineCpu();
  const db0 = cpuByPid(await dbBackends());
  if (database === 'postgres') await sleep(1_200); // let Postgres publish the warm-up's counters first
  const dbc0 = await dbCounters();
  rss.peakMb = 0;
  const mainPhase = await runPhase(fleet, {
    name: 'main',
    rate: plan.main.rate,
    durationMs: plan.main.durationMs,
    maxInFlight: mainMaxInFlight,
    drainMs: plan.main.drainMs,
    next: () => workload.next(),
    expiresInMs: 3_600_000,
  });
  const mainRssPeak = rss.peakMb;
  const benchCpu = process.cpuUsage(benchCpu0);
  const machine1 = machineCpu();
  const db1 = cpuByPid(await dbBackends());
  const dbSeconds = database === 'postgres' ? [...db1].reduce((sum, [pid, cpu]) => sum + cpu - (db0.get(pid) ?? 0), 0) : null;
  const cpuMain1 = processCpuSeconds(brokerChild.pid);
  const sbCpuMain1 = processCpuSeconds(sandbox.child.pid);
  const s1 = totalCalls(await sandbox.stats());
  const m1 = await client.metrics();
  const mainSpanS = (mainPhase.endedAt - mainPhase.startedAt) / 1000;
  const ledger = await sandbox.ledger();
  const ledgerByRequest = new Map<string, LedgerEntry[]>();
  for (const e of ledger) if (e.requestId) (ledgerByRequest.get(e.requestId) ?? ledgerByRequest.set(e.requestId, []).get(e.requestId)!).push(e);
  const analysisDeps = { ledgerByRequest, table: before.table, specs, latencyScale: plan.latencyScale, rng: createRng(plan.seed ^ 0x5eed) };
  const main_ = analyzePhase(mainPhase, analysisDeps);
  log(`main: ${main_.settled}/${main_.sent} settled, ${main_.requestsPerSecond.toFixed(1)}/s, p90 ${main_.latencyMs?.p90.toFixed(0)} ms, errors ${main_.errors}`);
  const machineCores = machine0 && machine1 ? ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * cpus().length : null;
  // Work the phase left behind (requests still queued) must not leak into the next measurement.
  if (!(await quiesce(client, plan.quiesceMs))) notes.push(`the broker still had work in flight ${plan.quiesceMs / 1000}s after the main phase; later phases may be slowed by it`);
  // Postgres publishes its counters about once a second: read them once the phase's work is done.
  await sleep(database === 'postgres' ? 1_200 : 0);
  const dbc1 = await dbCounters();
  const perRequest = (a: number, b: number) => (main_.created > 0 ? round((b - a) / main_.created, 1) : null);
  const dbPerRequest =
    dbc0 && dbc1
      ? { transactions: perRequest(dbc0.xact, dbc1.xact), rowsInserted: perRequest(dbc0.inserted, dbc1.inserted), rowsUpdated: perRequest(dbc0.updated, dbc1.updated), rowsRead: perRequest(dbc0.returned, dbc1.returned) }
      : null;

  // Seller calls, cache and coalescing over the main phase (sandbox counters and the broker's /metrics).
  const mainCalls = { quote: s1.quote - s0.quote, order: s1.order - s0.order, orderStatus: s1.orderStatus - s0.orderStatus, total: s1.total - s0.total };
  const cache = deltaBy(m0, m1, 'broker_offer_cache_lookups_total', 'result');
  const members = deltaBy(m0, m1, 'broker_round_members_total', 'how');
  const skipped = m1.sum('broker_seller_calls_skipped_total') - m0.sum('broker_seller_calls_skipped_total');
  const brokerCallsByOutcome = deltaBy(m0, m1, 'broker_seller_calls_total', 'outcome');
  const hits = cache.hit ?? 0;
  const misses = cache.miss ?? 0;
  const joined = members.joined ?? 0;
  const startedRounds = members.started ?? 0;
  if (!m1.has('broker_offer_cache_lookups_total')) notes.push('broker /metrics has no broker_offer_cache_lookups_total: cacheHitRate not measured');
  if (!m1.has('broker_round_members_total')) notes.push('broker /metrics has no broker_round_members_total: coalesceRate not measured');
  const brokerCounted = Object.values(brokerCallsByOutcome).reduce((a, b) => a + b, 0);
  if (mainCalls.total > 0 && Math.abs(brokerCounted - mainCalls.total) > 0.05 * mainCalls.total) {
    notes.push(`broker_seller_calls_total counted ${brokerCounted} partner calls in the main phase where the sandbox received ${mainCalls.total}; the figures here use the sandbox's counts`);
  }
  const sellersCount = registered.length;
  const created = main_.created;
  const orderedShare = created > 0 ? (main_.byStatus.ORDERED ?? 0) / created : 0;

  // Where the time goes: the event timelines of a sample of ORDERED requests.
  const timelinesOf = async (phase: PhaseResult, n: number) => {
    const sample = phase.records.filter((r) => r.status === 'ORDERED' && r.id !== null).filter((_, i, a) => i % Math.max(1, Math.floor(a.length / n)) === 0).slice(0, n);
    const timelines: Array<{ r: (typeof sample)[number]; createdAt: string; events: Array<{ type: string; at: string }> }> = [];
    for (let i = 0; i < sample.length; i += 10) {
      await Promise.all(
        sample.slice(i, i + 10).map(async (r) => {
          const res = await client.gql<{ purchaseRequest: { createdAt: string; events: Array<{ type: string; at: string }> } | null }>(
            'query E($id: ID!) { purchaseRequest(id: $id) { createdAt events { type at } } }',
            { id: r.id },
            tokens[r.item.user]!,
          );
          if (res.data?.purchaseRequest) timelines.push({ r, createdAt: res.data.purchaseRequest.createdAt, events: res.data.purchaseRequest.events });
        }),
      );
    }
    return breakdown(timelines);
  };
  const mainBreakdown = await timelinesOf(mainPhase, plan.timelines);

  // ---- latency at a sustainable load, when the main phase was saturated ----
  let moderate: { phase: PhaseResult; analysis: PhaseAnalysis; breakdown: Breakdown } | null = null;
  const saturated = main_.requestsPerSecond < 0.9 * plan.main.rate;
  if (saturated && plan.moderate === null) {
    notes.push(`the main phase was saturated (${main_.requestsPerSecond.toFixed(0)}/s of ${plan.main.rate}/s offered): its latencies include queueing; a full run adds a phase at half the sustained rate`);
  }
  if (saturated && plan.moderate !== null) {
    const rate = Math.max(5, Math.round(main_.requestsPerSecond * plan.moderate.share));
    log(`main phase saturated (${main_.requestsPerSecond.toFixed(0)}/s of ${plan.main.rate}/s offered); latency at ${rate}/s`);
    await sleep(1_000);
    const phase = await runPhase(fleet, {
      name: 'moderate',
      rate,
      durationMs: plan.moderate.durationMs,
      maxInFlight: Math.max(100, rate * 4),
      drainMs: plan.moderate.drainMs,
      next: () => workload.next(),
      expiresInMs: 3_600_000,
    });
    const l2 = await sandbox.ledger();
    for (const e of l2) if (e.requestId && !ledgerByRequest.has(e.requestId)) ledgerByRequest.set(e.requestId, [e]);
    moderate = { phase, analysis: analyzePhase(phase, analysisDeps), breakdown: await timelinesOf(phase, plan.timelines) };
    await quiesce(client, plan.quiesceMs);
  }
  await Promise.allSettled(ws.map((c) => c.dispose()));

  // ---- subscription fan-out: broker vs raw ws, same number of subscribers ----
  log(`subscriptions: ${plan.subscriptions.clients} subscribers, broker vs raw ws, ${plan.subscriptions.triggers} interleaved triggers`);
  const owner = await issueToken(jwtSecret, 'bench-fanout-owner', 'user');
  let subs: Awaited<ReturnType<typeof subscriptionFanout>> | null = null;
  try {
    const oos = CATALOG.find((b) => b.outOfPrint)!.isbn;
    const res = await client.gql<{ createPurchaseRequest: { purchaseRequest: { id: string } | null } }>(
      'mutation C($input: CreatePurchaseRequestInput!) { createPurchaseRequest(input: $input) { purchaseRequest { id } userErrors { code } } }',
      {
        input: {
          idempotencyKey: `bench-fanout-${randomBytes(4).toString('hex')}`,
          book: { isbn: oos },
          maxTotalPrice: { cents: 3_000, currency: 'USD' },
          expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
          shippingAddress: { name: 'Fan Out', line1: '1 Loopback Way', city: 'Localhost', postalCode: '12345', country: 'US' },
          paymentToken: 'tok_visa',
        },
      },
      owner,
    );
    const requestId = res.data?.createPurchaseRequest.purchaseRequest?.id;
    if (!requestId) throw new Error(`could not create the fan-out request: ${JSON.stringify(res.errors ?? res.data)}`);
    const settleBy = Date.now() + 15_000;
    for (;;) {
      const s = await client.gql<{ purchaseRequest: { status: string } | null }>('query S($id: ID!) { purchaseRequest(id: $id) { status } }', { id: requestId }, owner);
      if (s.data?.purchaseRequest?.status === 'OUT_OF_STOCK') break;
      if (Date.now() > settleBy) throw new Error(`fan-out request did not settle (status ${s.data?.purchaseRequest?.status})`);
      await sleep(100);
    }
    subs = await subscriptionFanout({
      client,
      token: owner,
      requestId,
      makeWs: () => client.wsClient(owner),
      rawUrl: wsInfo.url,
      clients: plan.subscriptions.clients,
      triggers: plan.subscriptions.triggers,
      timeoutMs: plan.subscriptions.timeoutMs,
    });
    log(`subscriptions: broker p99 ${subs.broker.p99Ms?.toFixed(1)} ms, raw ws p99 ${subs.raw.p99Ms?.toFixed(1)} ms`);
  } catch (e) {
    notes.push(`subscription fan-out not measured: ${(e as Error).message}`);
  }

  // ---- fan-out-heavy: engine vs the raw loopback ceiling, interleaved ----
  const poolSize = connectorPoolSize();
  const globalConcurrency = effective.engine.globalConcurrency;
  log(`fan-out-heavy: registering ${plan.fanout.copies} more broker sellers per sandbox seller`);
  for (let k = 1; k <= plan.fanout.copies; k++) {
    for (const { input } of registered) {
      const res = await client.gql<{ upsertSeller: { seller: { id: string } | null } }>(UPSERT, { input: { ...input, name: `${input.name} · fan-out ${k}` } }, admin);
      if (!res.data?.upsertSeller.seller) throw new Error(`upsertSeller copy failed: ${JSON.stringify(res.errors ?? res.data)}`);
    }
  }
  const fanoutSellers = registered.length * (plan.fanout.copies + 1);
  const isbnRng = createRng(plan.seed ^ 0xfa4);
  const captured = await captureQuoteCalls(registered, Array.from({ length: 32 }, () => unknownIsbn(isbnRng)), client.url);
  const fanOwner = await issueToken(jwtSecret, 'bench-fanout-user', 'user');
  const fanWs = client.wsClient(fanOwner);
  cleanups.push(async () => void (await fanWs.dispose()));
  const rawRuns: RawRun[] = [];
  const rawPoolRuns: RawRun[] = [];
  const engineRuns: EngineFanoutRun[] = [];
  for (let r = 0; r < plan.fanout.repeats; r++) {
    rawRuns.push(await rawCeiling(sandbox, captured, { connections: globalConcurrency, durationMs: plan.fanout.windowMs, warmupMs: 400 }));
    rawPoolRuns.push(await rawCeiling(sandbox, captured, { connections: poolSize, durationMs: plan.fanout.windowMs, warmupMs: 400 }));
    engineRuns.push(
      await engineFanout(
        { client, token: fanOwner, ws: fanWs, sandbox, brokerPid: brokerChild.pid, dbPids: database === 'postgres' ? dbBackends : null, dbTransactions: database === 'postgres' ? async () => (await dbCounters())?.xact ?? null : null, nextIsbn: () => unknownIsbn(isbnRng) },
        { inFlight: plan.fanout.requestsInFlight, durationMs: plan.fanout.windowMs, warmupMs: plan.fanout.warmupMs, drainMs: 8_000, expiresInMs: 3_600_000 },
      ),
    );
    const e = engineRuns.at(-1)!;
    log(
      `fan-out repeat ${r + 1}: raw@${globalConcurrency} ${rawRuns.at(-1)!.callsPerSecond.toFixed(0)}/s, raw@${poolSize} ${rawPoolRuns.at(-1)!.callsPerSecond.toFixed(0)}/s, engine ${e.callsPerSecond.toFixed(0)}/s (${e.serverCpuMicrosPerCall?.toFixed(0)} µs/call)`,
    );
  }

  // ---- bare Apollo ----
  log('bare Apollo Server ceiling');
  const apolloRuns: ApolloRun[] = [];
  for (let r = 0; r < plan.apollo.repeats; r++) apolloRuns.push(await apolloCeiling(apolloInfo.url, plan.apollo));

  // ---- end of run: memory, final prices, stop ----
  const mem = processMemoryMb(brokerChild.pid);
  rss.sample();
  const after = await quoteEverything(sandbox, isbns);
  const changed = [...before.table].filter(([isbn, pts]) => JSON.stringify(pts.map((p) => p.totalCents).sort()) !== JSON.stringify((after.table.get(isbn) ?? []).map((p) => p.totalCents).sort()));
  if (changed.length > 0) notes.push(`prices of ${changed.length} books differ between the start and the end of the run; regret used the start prices`);
  const brokerLog = brokerChild.output();
  const brokerAlive = brokerChild.process.exitCode === null;
  await cleanup();
  clearTimeout(watchdog);

  // ---- figures ----
  const med = (xs: number[]) => median(xs.filter((x) => Number.isFinite(x)));
  const ceiling = med(rawRuns.map((r) => r.callsPerSecond));
  const ceilingAtPool = med(rawPoolRuns.map((r) => r.callsPerSecond));
  const rawCpu = med(rawRuns.map((r) => r.clientCpuMicrosPerCall));
  const rawPoolCpu = med(rawPoolRuns.map((r) => r.clientCpuMicrosPerCall));
  const engineCalls = med(engineRuns.map((r) => r.callsPerSecond));
  const engineCpu = med(engineRuns.map((r) => r.serverCpuMicrosPerCall ?? Number.NaN));
  const apolloRps = med(apolloRuns.map((r) => r.rps));
  const headline: PhaseAnalysis = main_;
  const subsRatio = subs && subs.broker.p99Ms !== null && subs.raw.p99Ms ? subs.broker.p99Ms / subs.raw.p99Ms : null;
  const peakRss = mem ? Math.max(mem.hwm, rss.peakMb) : rss.peakMb || null;
  if (mem === null) notes.push('could not read /proc/<pid>/status of the broker at the end; peakRssMb is the largest sampled VmRSS');
  if (!brokerAlive) notes.push('the broker process exited before the end of the run');
  if (headline.unsettled > 0) {
    notes.push(`${headline.unsettled} requests had not settled when the main phase stopped waiting; they count in latencyMs at the time waiting stopped (a lower bound), not as errors`);
  }
  if (headline.overheadMs === null) notes.push('overheadMs: no ORDERED request with a ledger entry, so no floor to compare with');
  if (headline.regret.meanPct === null) notes.push('regret: no ORDERED request with a ledger entry');
  if (subs === null) notes.push('subscriptionFanout figures are null: see the note above');
  if (database === 'embedded') notes.push('embedded PGlite runs inside the broker process (single-threaded WASM): set DATABASE_URL for the Postgres figures the goals refer to');
  else notes.push("Postgres runs in its own processes: its CPU is not in cpuMicrosPerSellerCall (the broker process's only); the backends serving the bench database are measured apart (main.cpu.postgres*, fanout.postgresCpuMicrosPerCall)");
  notes.push(
    `floor: per ORDERED request, one draw from the sandbox's own latency model for the fastest seller with a valid offer plus one for the order with the seller that took it (×${plan.latencyScale}); overheadMs = ORDERED end-to-end percentile − floor percentile`,
  );
  notes.push('regret: ordered total (sandbox ledger) vs the lowest total any seller offers in the accepted conditions, from quoting every seller for every book through the broker connector at the start (re-quoted at the end to confirm)');
  notes.push(
    `seller calls/s: fan-out-heavy mode (${fanoutSellers} broker sellers, every request for a book nobody carries); ceiling = bare undici Pool replaying the connector's captured quote calls with ${globalConcurrency} sockets (the engine's global concurrency cap); at the connector's own pool size (${poolSize} sockets per origin, all sandbox sellers share one origin) the bare client does ${round(ceilingAtPool, 0)}/s`,
  );

  const goals = [
    goal('requests/s sustained', round(headline.requestsPerSecond, 1), '>= 500', headline.requestsPerSecond >= 500),
    goal('p90 overhead above floor (ms)', round(headline.overheadMs?.p90, 1), '< 25', headline.overheadMs !== null ? headline.overheadMs.p90 < 25 : null),
    goal('seller calls per request vs naive', ratio(callsPerReq(mainCalls.total, created), sellersCount + orderedShare), '< 0.25', created > 0 ? callsPerReq(mainCalls.total, created)! < 0.25 * (sellersCount + orderedShare) : null),
    goal('mean regret (%)', round(headline.regret.meanPct, 3), '< 0.5', headline.regret.meanPct !== null ? headline.regret.meanPct < 0.5 : null),
    goal('seller calls/s vs loopback ceiling', ratio(engineCalls, ceiling), '>= 0.8', engineCalls !== null && ceiling ? engineCalls / ceiling >= 0.8 : null),
    goal('CPU per call vs raw undici', ratio(engineCpu, rawCpu), '< 2', engineCpu !== null && rawCpu ? engineCpu / rawCpu < 2 : null),
    goal('subscription p99 vs raw ws', round(subsRatio, 2), '<= 3', subsRatio !== null ? subsRatio <= 3 : null),
    goal('server peak RSS (MB)', round(peakRss, 0), '< 300', peakRss !== null ? peakRss < 300 : null),
  ];

  const result = {
    requestsPerSecond: round(headline.requestsPerSecond, 1),
    latencyMs: pct(headline.latencyMs),
    overheadMs: pct(headline.overheadMs),
    callsPerRequest: round(callsPerReq(mainCalls.total, created), 3),
    naiveCallsPerRequest: round(sellersCount + orderedShare, 3),
    cacheHitRate: hits + misses > 0 ? round(hits / (hits + misses), 4) : null,
    coalesceRate: joined + startedRounds > 0 ? round(joined / (joined + startedRounds), 4) : null,
    regret: { meanPct: round(headline.regret.meanPct, 4), shareAtBest: round(headline.regret.shareAtBest, 4) },
    sellerCallsPerSecond: round(engineCalls, 0),
    loopbackCeilingCallsPerSecond: round(ceiling, 0),
    cpuMicrosPerSellerCall: round(engineCpu, 1),
    rawClientCpuMicrosPerCall: round(rawCpu, 1),
    apolloCeilingRps: round(apolloRps, 0),
    subscriptionFanout: {
      clients: plan.subscriptions.clients,
      p99Ms: round(subs?.broker.p99Ms, 2),
      rawWsP99Ms: round(subs?.raw.p99Ms, 2),
      p50Ms: round(subs?.broker.p50Ms, 2),
      rawWsP50Ms: round(subs?.raw.p50Ms, 2),
      missing: subs ? subs.broker.missing : null,
      rawMissing: subs ? subs.raw.missing : null,
      triggers: plan.subscriptions.triggers,
    },
    errors: headline.errors,
    unsettled: headline.unsettled,
    peakRssMb: round(peakRss, 1),
    ratios: {
      requestsVsApollo: ratio(headline.requestsPerSecond, apolloRps),
      callsVsNaive: ratio(callsPerReq(mainCalls.total, created), sellersCount + orderedShare),
      callsVsCeiling: ratio(engineCalls, ceiling),
      callsVsCeilingAtConnectorPool: ratio(engineCalls, ceilingAtPool),
      cpuVsRaw: ratio(engineCpu, rawCpu),
      subscriptionP99VsRawWs: round(subsRatio, 2),
    },
    goals,
    main: {
      offeredRate: plan.main.rate,
      sent: headline.sent,
      created: headline.created,
      settled: headline.settled,
      spanSeconds: round(mainSpanS, 1),
      throttledSeconds: round(mainPhase.throttledMs / 1000, 1),
      maxUnsettled: mainPhase.maxInFlightSeen,
      byStatus: headline.byStatus,
      unexpectedOutcomes: headline.unexpected,
      errorsByKind: headline.errorsByKind,
      latencyByOutcomeMs: mapPct(headline.latencyByOutcomeMs),
      floorMs: pct(headline.floorMs),
      breakdownMs: breakdownView(mainBreakdown),
      regret: {
        ...headline.regret,
        meanPct: round(headline.regret.meanPct, 4),
        maxPct: round(headline.regret.maxPct, 3),
        vsTierPolicyMeanPct: round(headline.regret.vsTierPolicyMeanPct, 4),
        shareAtTierPolicyBest: round(headline.regret.shareAtTierPolicyBest, 4),
      },
      postgresPerRequest: dbPerRequest,
      exactlyOnce: { duplicateOrders: headline.duplicateOrders, orderedWithoutLedgerEntry: headline.orderedWithoutLedger },
      sellerCalls: { ...mainCalls, perSecond: round(mainCalls.total / mainSpanS, 0) },
      brokerSellerCallsByOutcome: brokerCallsByOutcome,
      cacheLookups: { hit: hits, miss: misses },
      roundMembers: { started: startedRounds, joined },
      callsSkippedByEarlyExit: skipped,
      cpu: {
        brokerCores: cpuMain0 !== null && cpuMain1 !== null ? round((cpuMain1 - cpuMain0) / mainSpanS, 2) : null,
        sandboxCores: sbCpuMain0 !== null && sbCpuMain1 !== null ? round((sbCpuMain1 - sbCpuMain0) / mainSpanS, 2) : null,
        benchCores: round((benchCpu.user + benchCpu.system) / 1e6 / mainSpanS, 2),
        machineBusyCores: round(machineCores, 2),
        postgresCores: dbSeconds !== null ? round(dbSeconds / mainSpanS, 2) : null,
        otherCores: machineCores !== null ? round(machineCores - [cpuMain1 !== null && cpuMain0 !== null ? (cpuMain1 - cpuMain0) / mainSpanS : 0, sbCpuMain1 !== null && sbCpuMain0 !== null ? (sbCpuMain1 - sbCpuMain0) / mainSpanS : 0, (benchCpu.user + benchCpu.system) / 1e6 / mainSpanS, dbSeconds !== null ? dbSeconds / mainSpanS : 0].reduce((a, b) => a + b, 0), 2) : null,
        postgresCpuMsPerRequest: dbSeconds !== null && created > 0 ? round((dbSeconds * 1000) / created, 2) : null,
        brokerCpuMsPerRequest: cpuMain0 !== null && cpuMain1 !== null && created > 0 ? round(((cpuMain1 - cpuMain0) * 1000) / created, 2) : null,
      },
      peakRssMb: round(mainRssPeak, 1),
    },
    moderate: moderate && {
      offeredRate: moderate.phase.offeredRate,
      requestsPerSecond: round(moderate.analysis.requestsPerSecond, 1),
      latencyMs: pct(moderate.analysis.latencyMs),
      overheadMs: pct(moderate.analysis.overheadMs),
      floorMs: pct(moderate.analysis.floorMs),
      byStatus: moderate.analysis.byStatus,
      errors: moderate.analysis.errors,
      unsettled: moderate.analysis.unsettled,
      breakdownMs: breakdownView(moderate.breakdown),
      regret: { meanPct: round(moderate.analysis.regret.meanPct, 4), shareAtBest: round(moderate.analysis.regret.shareAtBest, 4) },
    },
    fanout: {
      sellers: fanoutSellers,
      requestsInFlight: plan.fanout.requestsInFlight,
      windowSeconds: plan.fanout.windowMs / 1000,
      engine: engineRuns.map((r) => ({
        ...r,
        seconds: round(r.seconds, 2),
        callsPerSecond: round(r.callsPerSecond, 0),
        serverCpuMicrosPerCall: round(r.serverCpuMicrosPerCall, 1),
        sandboxCpuMicrosPerCall: round(r.sandboxCpuMicrosPerCall, 1),
        postgresCpuMicrosPerCall: round(r.postgresCpuMicrosPerCall, 1),
        postgresTransactionsPerCall: round(r.postgresTransactionsPerCall, 2),
      })),
      postgresTransactionsPerCall: round(median(engineRuns.map((r) => r.postgresTransactionsPerCall).filter((v): v is number => v !== null)), 2),
      postgresCpuMicrosPerCall: round(median(engineRuns.map((r) => r.postgresCpuMicrosPerCall).filter((v): v is number => v !== null)), 1),
      rawCeiling: rawRuns.map(rawView),
      rawAtConnectorPool: rawPoolRuns.map(rawView),
      loopbackCeilingAtConnectorPool: round(ceilingAtPool, 0),
      rawClientCpuMicrosPerCallAtConnectorPool: round(rawPoolCpu, 1),
    },
    apollo: apolloRuns.map((r) => ({ ...r, rps: round(r.rps, 0), seconds: round(r.seconds, 2) })),
    config: {
      mode: plan.mode,
      database,
      seed: plan.seed,
      latencyScale: plan.latencyScale,
      users: plan.users,
      sellers: sellersCount,
      offeredRate: plan.main.rate,
      durationSeconds: plan.main.durationMs / 1000,
      workload: { ...workload.mix, topBookShare: round(workload.topShare(), 3), books: isbns.length },
      subscriptions: plan.subscriptions,
      fanout: { ...plan.fanout, sellers: fanoutSellers, ceilingConnections: globalConcurrency, connectorPoolPerOrigin: poolSize },
      apollo: plan.apollo,
      broker: {
        env: Object.fromEntries(Object.entries(brokerEnv).filter(([k]) => k !== 'JWT_SECRET').map(([k, v]) => [k, k === 'DATABASE_URL' ? v.replace(/\/\/[^@/]*@/, '//***@') : v])),
        improvementWindowMs: effective.engine.improvementWindowMs,
        globalConcurrency,
        maxActive: effective.engine.maxActive,
        dbPoolSize: effective.dbPoolSize,
      },
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, memoryGb: round(totalmem() / 2 ** 30, 1), node: process.version, platform: process.platform },
      startedAt: new Date(Date.now() - (performance.now() - T0)).toISOString(),
      wallSeconds: round((performance.now() - T0) / 1000, 1),
    },
    notes,
  };
  if (wsErrors.length > 0) notes.push(`WebSocket client errors: ${wsErrors.length} (${[...new Set(wsErrors)].slice(0, 3).join('; ')})`);
  if (/"level":(50|60)/.test(brokerLog)) notes.push('the broker logged errors during the run (last lines in bench/results/<timestamp>.broker.log)');

  const outDir = args.out ?? join(REPO_ROOT, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(outDir, `${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  if (brokerLog.trim() !== '') writeFileSync(join(outDir, `${stamp}.broker.log`), brokerLog);
  printTable(result);
  process.stdout.write(`\nwritten: ${file}\n`);
}

/** Waits until the broker has no request in a round or ordering and nothing due in its queue. */
async function quiesce(client: BrokerClient, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const m = await client.metrics();
    if (m.sum('broker_requests_active') === 0 && m.sum('broker_queue_lag_seconds') === 0) return true;
    await sleep(250);
  }
  return false;
}

function breakdownView(b: Breakdown) {
  return { sampled: b.sampled, create: pct(b.createMs), queue: pct(b.queueMs), round: pct(b.roundMs), order: pct(b.orderMs), deliver: pct(b.deliverMs) };
}

interface DbCounters {
  xact: number;
  inserted: number;
  updated: number;
  returned: number;
}

function rawView(r: RawRun) {
  return { ...r, callsPerSecond: round(r.callsPerSecond, 0), clientCpuMicrosPerCall: round(r.clientCpuMicrosPerCall, 1), sandboxCpuMicrosPerCall: round(r.sandboxCpuMicrosPerCall, 1), seconds: round(r.seconds, 2) };
}

function callsPerReq(calls: number, requests: number): number | null {
  return requests > 0 ? calls / requests : null;
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a === null || a === undefined || !b ? null : round(a / b, 3);
}

function pct(p: { p50: number; p90: number; p99: number } | null) {
  return p ? { p50: round(p.p50, 1), p90: round(p.p90, 1), p99: round(p.p99, 1) } : { p50: null, p90: null, p99: null };
}

function mapPct(m: Record<string, { p50: number; p90: number; p99: number } | null>) {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, pct(v)]));
}

function goal(name: string, actual: number | null, target: string, met: boolean | null) {
  return { name, actual, target, met };
}

main().then(
  () => {
    if (process.env.BENCH_DEBUG_HANDLES) console.error(process.getActiveResourcesInfo());
    // Everything started is stopped by now; idle client sockets must not hold the process open.
    process.exit(0);
  },
  async (e: unknown) => {
    console.error(`\nbenchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    await cleanup();
    process.exit(1);
  },
);
