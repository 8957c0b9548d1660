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
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Client } from 'graphql-ws';
import pLimit from 'p-limit';
import { loadConfig } from '../src/config.js';
import { CATALOG } from '../src/partners/sandbox/catalog.js';
import { type LedgerEntry, type SandboxSellerSpec, defaultSellerSpecs } from '../src/partners/sandbox/fleet.js';
import { createRng } from '../src/partners/sandbox/random.js';
import { type Breakdown, type PhaseAnalysis, analyzePhase, breakdown } from './analyze.js';
import { type Fleet, type PhaseResult, runPhase } from './load.js';
import { BrokerClient, issueToken } from './lib/broker-client.js';
import { type Child, REPO_ROOT, RssSampler, Supervisor, cpuByPid, firstJsonLine, freePort, machineCpu, processCpuSeconds, processMemoryMb, sleep } from './lib/proc.js';
import { SandboxHandle, captureQuoteCalls, quoteEverything, totalCalls } from './lib/sandbox.js';
import { TIER_SHARES, scaledFleet } from './lib/scaled-fleet.js';
import { connectPostgres, standInForAutovacuum } from './lib/autovacuum.js';
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
    instances: { type: 'string' },
    sellers: { type: 'string' },
    'fanout-in-flight': { type: 'string' },
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

const instances = num(args.instances, 1);
if (!Number.isInteger(instances)) throw new Error(`--instances must be a whole number, not ${JSON.stringify(args.instances)}`);
const sellers = args.sellers === undefined ? null : num(args.sellers, 0);
// Checked before anything starts: the sandbox's default fleet is what the extra sellers copy.
if (sellers !== null) {
  try {
    scaledFleet(defaultSellerSpecs(), sellers);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
}

const plan = {
  mode: quick ? 'quick' : 'full',
  /** Broker processes on one database for the scaling phase (1: no scaling phase). */
  instances,
  /** Registered broker sellers for the many-sellers main phase (null: no such phase). */
  sellers: sellers === null ? null : { count: sellers, shares: TIER_SHARES, registerConcurrency: 20 },
  seed: num(args.seed, 1),
  latencyScale: num(args['latency-scale'], 1),
  users: Math.round(num(args.users, quick ? 50 : 200)),
  warmup: { rate: quick ? 40 : 60, durationMs: quick ? 2_000 : 6_000 },
  main: {
    rate: num(args.rate, quick ? 400 : 1_000),
    durationMs: num(args.duration, quick ? 8 : 45) * 1000,
    drainMs: quick ? 5_000 : 20_000,
  },
  /** When the main phase could not keep up: latency at 80% of the rate it sustained (the overhead goal's load). */
  moderate: quick ? { share: 0.8, durationMs: 5_000, drainMs: 5_000 } : { share: 0.8, durationMs: 20_000, drainMs: 15_000 },
  /** ORDERED requests whose event timelines are read back for the time split. */
  timelines: quick ? 50 : 200,
  subscriptions: { clients: Math.round(num(args.subscribers, quick ? 500 : 2_000)), triggers: quick ? 5 : 10, timeoutMs: 10_000 },
  fanout: {
    /** Extra broker sellers per sandbox seller (same partner, registered again), so each request fans out widely. */
    copies: quick ? 4 : 8,
    repeats: quick ? 2 : 3,
    windowMs: quick ? 1_500 : 4_000,
    warmupMs: quick ? 600 : 1_500,
    // Requests kept in flight; unset, as many as the engine's global concurrency, so its calls in
    // flight can reach that cap as the raw ceiling's connections do. A round asks at most
    // ROUND_MAX_SELLERS sellers, a wave of a few per tier at a time, so a searching request has one
    // or two calls in flight (reported as callsInFlight): 64 requests kept 133–141 in flight,
    // 256 kept 240–375, 512 kept 435–508.
    requestsInFlight: args['fanout-in-flight'] === undefined ? null : num(args['fanout-in-flight'], 0),
  },
  apollo: { repeats: quick ? 2 : 3, durationMs: quick ? 1_000 : 3_000, warmupMs: quick ? 300 : 500, connections: 64 },
  /**
   * The webhook outbox's cost: the main workload without endpoints and with one per user (every
   * event), alternately, `pairs` runs with them between `pairs + 1` without, each side averaged: the
   * database growing over the runs counts against neither side.
   */
  webhooks: { pairs: quick ? 1 : 6, durationMs: quick ? 6_000 : 15_000, warmupMs: quick ? 2_000 : 5_000, outboxDrainMs: quick ? 15_000 : 60_000, settleMs: quick ? 60_000 : 120_000, registerConcurrency: 20 },
  /** After the main phase: longest wait for the broker to finish the work still queued. */
  quiesceMs: quick ? 8_000 : 40_000,
  /** Hard cap on the whole run; the watchdog stops everything beyond it (the scaling phase adds its share). */
  maxRunMs: (quick ? 240_000 : 600_000) + (instances > 1 ? (quick ? 60_000 : 150_000) : 0) + (sellers !== null ? (quick ? 90_000 : 180_000) : 0),
};

// Several instances share one database and see each other's changes: only a Postgres server can be shared,
// and any instance's engine may claim a request, so its updates reach the subscriber (on the instance the
// user talks to) only through Redis pub/sub. Refused before anything starts.
if (plan.instances > 1 && !process.env.DATABASE_URL) {
  console.error(
    `--instances ${plan.instances}: several broker instances need a shared Postgres database; embedded PGlite lives inside one broker process.\n` +
      'Set DATABASE_URL, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench -- --instances 2',
  );
  process.exit(2);
}
if (plan.instances > 1 && !process.env.REDIS_URL) {
  console.error(
    `--instances ${plan.instances}: several broker instances need REDIS_URL (e.g. redis://127.0.0.1:6379): any instance's engine may claim a request, ` +
      "and its updates reach a subscriber connected to another instance only through Redis pub/sub (the bench keeps each user's creates and subscription on one instance, but not the engine's work).",
  );
  process.exit(2);
}

/** Broker settings the caller may tune through the environment; passed through when set. */
const PASS_THROUGH = [
  'ENGINE_POLL_MS',
  'ENGINE_MAX_ACTIVE',
  'ENGINE_LEASE_MS',
  'ENGINE_GLOBAL_CONCURRENCY',
  'PARTNER_CONNECTIONS_PER_ORIGIN',
  'IMPROVEMENT_WINDOW_MS',
  'ROUND_MAX_SELLERS',
  'RECONCILE_INTERVAL_MS',
  'ORDER_RETRY_BACKOFF_MS',
  'ORDER_INLINE_RETRIES',
  'SELLER_INITIAL_CONCURRENCY',
  'BREAKER_THRESHOLD',
  'BREAKER_HALF_OPEN_MS',
  'DB_POOL_SIZE',
  'MAX_BACKLOG',
  'HEAP_GROWTH_PERCENT',
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
    // The outbox phase's receiver is on loopback, which production's default (public) refuses.
    WEBHOOK_URLS: 'any',
  };
  for (const name of PASS_THROUGH) if (process.env[name]) brokerEnv[name] = process.env[name]!;
  // Node's own options for the broker processes alone (the bench's own process keeps NODE_OPTIONS).
  if (process.env.BROKER_NODE_OPTIONS) brokerEnv.NODE_OPTIONS = process.env.BROKER_NODE_OPTIONS;
  let database: 'postgres' | 'embedded';
  /** Pids of the Postgres backends serving the benchmark's database (their CPU is the database's share). */
  let dbBackends: () => Promise<number[]> = async () => [];
  /** Postgres's own counters for the benchmark's database (transactions are statements, for autocommitted ones). */
  let dbCounters: () => Promise<DbCounters | null> = async () => null;
  if (process.env.DATABASE_URL) {
    database = 'postgres';
    const adminUrl = loopbackUrl('DATABASE_URL', process.env.DATABASE_URL);
    const name = `broker_bench_${randomBytes(5).toString('hex')}`;
    const admin = connectPostgres(adminUrl.toString());
    try {
      await admin.unsafe(`create database ${name}`);
    } catch (e) {
      throw new Error(`DATABASE_URL is set but Postgres refused to create a fresh benchmark database: ${(e as Error).message}`, { cause: e });
    } finally {
      await admin.end();
    }
    cleanups.push(async () => {
      const again = connectPostgres(adminUrl.toString());
      await again.unsafe(`drop database if exists ${name} with (force)`).finally(() => again.end());
    });
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    brokerEnv.DATABASE_URL = url.toString();
    // The machine's Postgres may run with autovacuum off, which no production server does.
    const autovacuum = await standInForAutovacuum(url.toString());
    cleanups.push(() => autovacuum.stop());
    if (autovacuum.standingIn) {
      notes.push(
        "the Postgres server runs with autovacuum off: the bench vacuumed its database's hot tables every 10 s in autovacuum's place (bench/lib/autovacuum.ts), its CPU counted in Postgres's",
      );
    }
    const watcher = connectPostgres(adminUrl.toString());
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
    // A prefix of its own, so the run shares no key or channel with anything else on that Redis (its keys expire).
    brokerEnv.REDIS_PREFIX = process.env.REDIS_PREFIX || `bench-${randomBytes(4).toString('hex')}:`;
  }
  const effective = loadConfig(brokerEnv);

  // The broker runs as `npm start` runs it: built first (scripts/build.mjs), then plain Node.
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build.mjs')], { stdio: 'inherit' });
  // Processes: sandbox, broker and the two reference servers start together (the references idle until used).
  log(`starting sandbox (seed ${plan.seed}, latency ×${plan.latencyScale}), broker (${database}) and reference servers`);
  const apolloChild = sup.spawnNode('apollo-reference', 'bench/children/apollo.ts', [], { NODE_ENV: 'production' });
  const wsChild = sup.spawnNode('ws-reference', 'bench/children/ws-broadcast.ts', [], {});
  const receiverChild = sup.spawnNode('webhook-receiver', 'bench/children/webhook-receiver.ts', [], {});
  const profileDir = join(args.out ?? join(REPO_ROOT, 'bench/results'), 'profiles');
  if (args.profile) mkdirSync(profileDir, { recursive: true });
  /** Starts broker instance `index` (0: the one every phase uses) on its own port, same database and environment. */
  const spawnBroker = (index: number, onPort: number): Broker => {
    const child = sup.spawnNode(index === 0 ? 'broker' : `broker-${index + 1}`, 'bench/children/broker.mjs', [], { ...brokerEnv, PORT: String(onPort) }, args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
    const c = new BrokerClient(`http://127.0.0.1:${onPort}`, 64);
    cleanups.push(() => c.close());
    return { index, child, client: c, rss: null };
  };
  const brokerReady = async (b: Broker): Promise<void> => {
    const readyBy = Date.now() + 60_000;
    while (!(await b.client.ready())) {
      if (b.child.process.exitCode !== null) throw new Error(`${b.child.name} exited before it was ready\n${b.child.output()}`);
      if (Date.now() > readyBy) throw new Error(`${b.child.name} not ready within 60 s\n${b.child.output()}`);
      await sleep(100);
    }
    const sampler = new RssSampler(b.child.pid);
    cleanups.push(async () => sampler.stop());
    b.rss = sampler;
  };
  const first = spawnBroker(0, port);
  const brokerChild = first.child;
  const [sandbox, apolloInfo, wsInfo, receiverInfo] = await Promise.all([
    SandboxHandle.start(sup, { seed: plan.seed, latencyScale: plan.latencyScale }),
    firstJsonLine<{ url: string }>(apolloChild),
    firstJsonLine<{ url: string }>(wsChild),
    firstJsonLine<{ url: string }>(receiverChild),
  ]);
  const client = first.client;
  await brokerReady(first);
  const rss = first.rss!;
  log(`broker ready on ${client.url} (pid ${brokerChild.pid}); sandbox on ${sandbox.url}`);

  // Sellers: the sandbox fleet, registered through upsertSeller like any partner.
  const admin = await issueToken(jwtSecret, 'bench-admin', 'admin');
  const UPSERT = `mutation U($input: SellerInput!) { upsertSeller(input: $input) { seller { id } userErrors { field code message } } }`;
  type SellerInput = (typeof sandbox.sellers)[number];
  const registered: Array<{ input: SellerInput; id: string }> = [];
  /** Registers (or updates) sellers through upsertSeller, `plan.sellers.registerConcurrency` at a time; their ids in order. */
  const upsertAll = async (inputs: readonly SellerInput[]): Promise<string[]> => {
    const limit = pLimit(plan.sellers?.registerConcurrency ?? 1);
    return Promise.all(
      inputs.map((input) =>
        limit(async () => {
          const res = await client.gql<{ upsertSeller: { seller: { id: string } | null; userErrors: unknown[] } }>(UPSERT, { input }, admin);
          const id = res.data?.upsertSeller.seller?.id;
          if (!id) throw new Error(`upsertSeller ${input.name} failed: ${JSON.stringify(res.errors ?? res.data)}`);
          return id;
        }),
      ),
    );
  };
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
  const fleet: Fleet = { clients: [client], tokens, ws };
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
  const ledgerByRequest = new Map<string, LedgerEntry[]>();
  /** Re-reads the sandbox's ledger (every order since the start) into ledgerByRequest. */
  const readLedger = async () => {
    const ledger = await sandbox.ledger();
    ledgerByRequest.clear();
    for (const e of ledger) if (e.requestId) (ledgerByRequest.get(e.requestId) ?? ledgerByRequest.set(e.requestId, []).get(e.requestId)!).push(e);
  };
  const analysisDeps = { ledgerByRequest, table: before.table, specs, latencyScale: plan.latencyScale, rng: createRng(plan.seed ^ 0x5eed) };

  /**
   * The main workload against `brokers` (users spread over them round-robin), measured: sandbox calls,
   * the brokers' /metrics (summed), CPU of every broker process, of the Postgres backends and of the
   * machine, Postgres's counters, the brokers' RSS. Waits for the brokers to finish what is left.
   */
  const measureMain = async (
    name: string,
    phaseFleet: Fleet,
    brokers: Broker[],
    label = brokers.length === 1 ? 'main' : `main × ${brokers.length} instances`,
    { rate = plan.main.rate, durationMs = plan.main.durationMs, maxInFlight = Math.max(200, Math.round(rate * 2)) }: { rate?: number; durationMs?: number; maxInFlight?: number } = {},
  ): Promise<MainRun> => {
    log(`${label}: ${rate}/s offered for ${durationMs / 1000}s from ${plan.users} users (at most ${maxInFlight} unsettled)`);
    if (database === 'postgres') await sleep(1_200); // let Postgres publish the warm-up's counters first
    const dbc0 = await dbCounters();
    const m0 = await Promise.all(brokers.map((b) => b.client.metrics()));
    const s0 = totalCalls(await sandbox.stats());
    const cpu0 = brokers.map((b) => processCpuSeconds(b.child.pid));
    const sbCpu0 = processCpuSeconds(sandbox.child.pid);
    const benchCpu0 = process.cpuUsage();
    const machine0 = machineCpu();
    const db0 = cpuByPid(await dbBackends());
    for (const b of brokers) b.rss!.peakMb = 0;
    const phase = await runPhase(phaseFleet, {
      name,
      rate,
      durationMs,
      maxInFlight,
      drainMs: plan.main.drainMs,
      next: () => workload.next(),
      expiresInMs: 3_600_000,
    });
    const rssPeak = Math.max(...brokers.map((b) => b.rss!.peakMb));
    const benchCpu = process.cpuUsage(benchCpu0);
    const machine1 = machineCpu();
    const db1 = cpuByPid(await dbBackends());
    const dbSeconds = database === 'postgres' ? [...db1].reduce((sum, [pid, cpu]) => sum + cpu - (db0.get(pid) ?? 0), 0) : null;
    const cpu1 = brokers.map((b) => processCpuSeconds(b.child.pid));
    const sbCpu1 = processCpuSeconds(sandbox.child.pid);
    const s1 = totalCalls(await sandbox.stats());
    const m1 = await Promise.all(brokers.map((b) => b.client.metrics()));
    const spanS = (phase.endedAt - phase.startedAt) / 1000;
    await readLedger();
    const analysis = analyzePhase(phase, analysisDeps);
    log(`${label}: ${analysis.settled}/${analysis.sent} settled, ${analysis.requestsPerSecond.toFixed(1)}/s, p90 ${analysis.latencyMs?.p90.toFixed(0)} ms, errors ${analysis.errors}`);
    const machineCores = machine0 && machine1 ? ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * cpus().length : null;
    // Work the phase left behind (requests still queued) must not leak into the next measurement.
    const quiesced = await quiesce(brokers.map((b) => b.client), plan.quiesceMs);
    if (!quiesced) notes.push(`the broker${brokers.length > 1 ? 's' : ''} still had work in flight ${plan.quiesceMs / 1000}s after the ${label} phase; later phases may be slowed by it`);
    // Postgres publishes its counters about once a second: read them once the phase's work is done.
    await sleep(database === 'postgres' ? 1_200 : 0);
    const dbc1 = await dbCounters();
    const perCreated = (a: number, b: number) => (analysis.created > 0 ? round((b - a) / analysis.created, 1) : null);
    const db =
      dbc0 && dbc1
        ? { transactions: perCreated(dbc0.xact, dbc1.xact), rowsInserted: perCreated(dbc0.inserted, dbc1.inserted), rowsUpdated: perCreated(dbc0.updated, dbc1.updated), rowsRead: perCreated(dbc0.returned, dbc1.returned) }
        : null;
    // Seller calls (sandbox counters), cache and coalescing (every broker's /metrics, summed).
    const calls = { quote: s1.quote - s0.quote, order: s1.order - s0.order, orderStatus: s1.orderStatus - s0.orderStatus, total: s1.total - s0.total };
    const sumDelta = (metric: string, byLabel: string) => {
      const out: Record<string, number> = {};
      brokers.forEach((_, i) => {
        for (const [k, v] of Object.entries(deltaBy(m0[i]!, m1[i]!, metric, byLabel))) out[k] = (out[k] ?? 0) + v;
      });
      return out;
    };
    const cache = sumDelta('broker_offer_cache_lookups_total', 'result');
    const members = sumDelta('broker_round_members_total', 'how');
    const brokerSeconds = cpu0.every((c) => c !== null) && cpu1.every((c) => c !== null) ? cpu1.reduce((sum, c, i) => sum + c! - cpu0[i]!, 0) : null;
    const sandboxSeconds = sbCpu0 !== null && sbCpu1 !== null ? sbCpu1 - sbCpu0 : null;
    const benchSeconds = (benchCpu.user + benchCpu.system) / 1e6;
    const created = analysis.created;
    return {
      instances: brokers.length,
      phase,
      analysis,
      spanS,
      calls,
      cache: { hit: cache.hit ?? 0, miss: cache.miss ?? 0 },
      members: { started: members.started ?? 0, joined: members.joined ?? 0 },
      skipped: m1.reduce((sum, m, i) => sum + m.sum('broker_seller_calls_skipped_total') - m0[i]!.sum('broker_seller_calls_skipped_total'), 0),
      brokerCallsByOutcome: sumDelta('broker_seller_calls_total', 'outcome'),
      hasMetric: (metric: string) => m1.every((m) => m.has(metric)),
      cpu: {
        brokerCores: brokerSeconds !== null ? round(brokerSeconds / spanS, 2) : null,
        sandboxCores: sandboxSeconds !== null ? round(sandboxSeconds / spanS, 2) : null,
        benchCores: round(benchSeconds / spanS, 2),
        machineBusyCores: round(machineCores, 2),
        postgresCores: dbSeconds !== null ? round(dbSeconds / spanS, 2) : null,
        otherCores: machineCores !== null ? round(machineCores - ((brokerSeconds ?? 0) + (sandboxSeconds ?? 0) + benchSeconds + (dbSeconds ?? 0)) / spanS, 2) : null,
        postgresCpuMsPerRequest: dbSeconds !== null && created > 0 ? round((dbSeconds * 1000) / created, 2) : null,
        /** Every broker process's CPU, summed. */
        brokerCpuMsPerRequest: brokerSeconds !== null && created > 0 ? round((brokerSeconds * 1000) / created, 2) : null,
      },
      db,
      rssPeakMb: rssPeak,
      quiesced,
    };
  };

  const mainRun = await measureMain('main', fleet, [first]);
  const mainPhase = mainRun.phase;
  const main_ = mainRun.analysis;
  const mainSpanS = mainRun.spanS;
  const mainRssPeak = mainRun.rssPeakMb;
  const dbPerRequest = mainRun.db;
  const mainCalls = mainRun.calls;
  const skipped = mainRun.skipped;
  const brokerCallsByOutcome = mainRun.brokerCallsByOutcome;
  const hits = mainRun.cache.hit;
  const misses = mainRun.cache.miss;
  const joined = mainRun.members.joined;
  const startedRounds = mainRun.members.started;
  if (!mainRun.hasMetric('broker_offer_cache_lookups_total')) notes.push('broker /metrics has no broker_offer_cache_lookups_total: cacheHitRate not measured');
  if (!mainRun.hasMetric('broker_round_members_total')) notes.push('broker /metrics has no broker_round_members_total: coalesceRate not measured');
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

  // ---- latency at 80% of the sustained rate, when the main phase was saturated ----
  let moderate: { phase: PhaseResult; analysis: PhaseAnalysis; breakdown: Breakdown } | null = null;
  const saturated = main_.requestsPerSecond < 0.9 * plan.main.rate;
  if (saturated) {
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
    await readLedger();
    moderate = { phase, analysis: analyzePhase(phase, analysisDeps), breakdown: await timelinesOf(phase, plan.timelines) };
    await quiesce([client], plan.quiesceMs);
  }

  // ---- webhook outbox: the main workload without endpoints and with one per user, alternately ----
  let outbox: OutboxRuns | null = null;
  try {
    const CREATE_ENDPOINT = `mutation W($input: WebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } userErrors { code message } } }`;
    const DELETE_ENDPOINT = `mutation D($id: ID!) { deleteWebhookEndpoint(id: $id) { endpoint { id } userErrors { code } } }`;
    const limit = pLimit(plan.webhooks.registerConcurrency);
    const received = async () => ((await (await fetch(`${receiverInfo.url}/stats`)).json()) as { received: number }).received;
    // The main phase's offered rate, with at most about two seconds of what it sustained unsettled: a
    // saturated run measures capacity (the cap, not a queue, holds the load back) and leaves no backlog to the next.
    const rate = plan.main.rate;
    const load = { rate, durationMs: plan.webhooks.durationMs, maxInFlight: Math.max(50, Math.round(2 * main_.requestsPerSecond)) };
    // What the earlier phases left queued would slow the first run only.
    if (!(await quiesce([client], plan.webhooks.settleMs))) notes.push(`webhook outbox: the broker still had work queued ${plan.webhooks.settleMs / 1000}s after the earlier phases; the first run without webhooks carried it`);
    const runs: OutboxRuns = { endpoints: tokens.length, offeredRate: rate, off: [], on: [], tries: {}, received: 0, drainSeconds: [], drained: true };
    const offRun = async () => {
      runs.off.push(await measureMain(`outbox-off-${runs.off.length + 1}`, fleet, [first], `outbox off (${runs.off.length + 1}/${plan.webhooks.pairs + 1})`, load));
    };
    // Every user of the load gets an endpoint for every event (created without `events`).
    const register = () =>
      Promise.all(
        tokens.map((token, u) =>
          limit(async () => {
            const res = await client.gql<{ createWebhookEndpoint: { endpoint: { id: string } | null } }>(CREATE_ENDPOINT, { input: { url: `${receiverInfo.url}/user-${u}` } }, token);
            const id = res.data?.createWebhookEndpoint.endpoint?.id;
            if (!id) throw new Error(`createWebhookEndpoint failed: ${JSON.stringify(res.errors ?? res.data)}`);
            return { id, token };
          }),
        ),
      );
    const unregister = (endpoints: Array<{ id: string; token: string }>) => Promise.all(endpoints.map(({ id, token }) => limit(() => client.gql(DELETE_ENDPOINT, { id }, token))));
    // The delivery path (relay, sender, the receiver's connections) is cold until the first event:
    // it gets a warm-up of its own, not reported, as the main workload had, so that JIT and pools
    // are not charged to the first run with webhooks alone.
    {
      const endpoints = await register();
      log(`outbox warm-up: ${rate}/s offered for ${plan.webhooks.warmupMs / 1000}s with ${endpoints.length} endpoints`);
      await runPhase(fleet, { name: 'outbox-warmup', rate, durationMs: plan.webhooks.warmupMs, maxInFlight: load.maxInFlight, drainMs: plan.main.drainMs, next: () => workload.next(), expiresInMs: 3_600_000 });
      await outboxDrained(client, plan.webhooks.outboxDrainMs);
      await unregister(endpoints);
      if (!(await quiesce([client], plan.webhooks.settleMs))) notes.push(`webhook outbox: the broker still had work queued ${plan.webhooks.settleMs / 1000}s after its warm-up`);
    }
    await offRun();
    for (let pair = 1; pair <= plan.webhooks.pairs; pair++) {
      const endpoints = await register();
      const m0 = await client.metrics();
      const r0 = await received();
      runs.on.push(await measureMain(`outbox-on-${pair}`, fleet, [first], `outbox on (${pair}/${plan.webhooks.pairs}, ${endpoints.length} endpoints)`, load));
      // Deliveries still owed when the run's requests were done: the relay's backlog, drained before the next run.
      const drainStart = performance.now();
      runs.drained &&= await outboxDrained(client, plan.webhooks.outboxDrainMs);
      runs.drainSeconds.push((performance.now() - drainStart) / 1000);
      const m1 = await client.metrics();
      for (const [k, v] of Object.entries(deltaBy(m0, m1, 'broker_webhook_deliveries_total', 'outcome'))) runs.tries[k] = (runs.tries[k] ?? 0) + v;
      runs.received += (await received()) - r0;
      await unregister(endpoints);
      await offRun();
    }
    outbox = runs;
    // The last run's requests still settling would be counted against the phases after this one.
    if (!(await quiesce([client], plan.webhooks.settleMs))) notes.push(`webhook outbox: the broker still had work queued ${plan.webhooks.settleMs / 1000}s after the phase; the next phase carried it`);
    const rps = (xs: MainRun[]) => xs.map((r) => r.analysis.requestsPerSecond.toFixed(1)).join(', ');
    log(`outbox: ${rps(runs.on)}/s with webhooks, ${rps(runs.off)}/s without; ${runs.received} delivered`);
  } catch (e) {
    notes.push(`webhook outbox cost not measured: ${(e as Error).message}`);
  }
  await Promise.allSettled(ws.map((c) => c.dispose()));

  // ---- scaling: the main workload again on N instances (same database), users round-robin over them ----
  let scaledRun: MainRun | null = null;
  const extraPeakRssMb: number[] = [];
  let extraLogs = '';
  if (plan.instances > 1) {
    log(`scaling: starting ${plan.instances - 1} more broker instance(s) on the same database`);
    const extra: Broker[] = [];
    for (let i = 1; i < plan.instances; i++) extra.push(spawnBroker(i, await freePort()));
    await Promise.all(extra.map((b) => brokerReady(b)));
    const all = [first, ...extra];
    log(`scaling: ${all.map((b) => `${b.child.name} ${b.client.url} (pid ${b.child.pid})`).join(', ')}`);
    const wsN: Client[] = tokens.map((t, u) => all[u % all.length]!.client.wsClient(t, (e) => wsErrors.push(String((e as { message?: string })?.message ?? e))));
    cleanups.push(async () => void (await Promise.allSettled(wsN.map((c) => c.dispose()))));
    const fleetN: Fleet = { clients: all.map((b) => b.client), tokens, ws: wsN };
    // The new instances start cold (JIT, pools, their own offer cache): each gets the warm-up the first one had.
    const warmN = await runPhase(fleetN, {
      name: `warmup-${all.length}`,
      rate: plan.warmup.rate * all.length,
      durationMs: plan.warmup.durationMs,
      maxInFlight: 1_000 * all.length,
      drainMs: 10_000,
      next: () => workload.next(),
      expiresInMs: 3_600_000,
    });
    const warmNErrors = warmN.records.filter((r) => r.error !== null).length;
    if (warmNErrors > 0) notes.push(`scaling warm-up: ${warmNErrors} of ${warmN.records.length} requests ended in errors (${[...new Set(warmN.records.map((r) => r.error).filter(Boolean))].slice(0, 5).join(', ')})`);
    await quiesce(fleetN.clients, plan.quiesceMs);
    scaledRun = await measureMain(`main-${all.length}`, fleetN, all);
    await Promise.allSettled(wsN.map((c) => c.dispose()));
    // The later phases run on the first instance alone, as before.
    for (const b of extra) {
      const m = processMemoryMb(b.child.pid);
      extraPeakRssMb.push(Math.max(m?.hwm ?? 0, b.rss?.peakMb ?? 0));
    }
    await Promise.all(extra.map((b) => b.child.stop()));
    // 'exit' can come before the last of a child's output has been read: give its pipes a moment to close.
    await Promise.all(extra.map((b) => Promise.race([new Promise((resolve) => b.child.process.once('close', resolve)), sleep(500)])));
    for (const b of extra) {
      const out = b.child.output();
      extraLogs += out.trim() !== '' ? `\n---- ${b.child.name} ----\n${out}` : '';
      if (b.child.process.exitCode !== 0 && b.child.process.signalCode === null) {
        const why = shutdownFailure(out);
        notes.push(`${b.child.name} exited with code ${b.child.process.exitCode} when stopped${why ? ` (shutdown failed: ${why})` : ''}${out.trim() !== '' ? '; its log is in bench/results/<timestamp>.broker.log' : ' and logged nothing at LOG_LEVEL=' + (brokerEnv.LOG_LEVEL ?? 'info')}`);
      }
    }
  }

  // ---- subscription fan-out: broker vs raw ws, same number of subscribers ----
  log(`subscriptions: ${plan.subscriptions.clients} subscribers, broker vs raw ws, ${plan.subscriptions.triggers} interleaved triggers`);
  const owner = await issueToken(jwtSecret, 'bench-fanout-owner', 'user');
  let subs: Awaited<ReturnType<typeof subscriptionFanout>> | null = null;
  /** The broker's memory with no subscriber connected and with every one subscribed (the WebSocket tier's cost per subscription). */
  let subsMemory: { rssMb: [number, number]; heapUsedMb: [number, number]; connections: number } | null = null;
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
    const memoryNow = async () => {
      const m = await client.metrics();
      return { rss: processMemoryMb(brokerChild.pid)?.rss ?? Number.NaN, heapUsed: m.sum('broker_process_nodejs_heap_size_used_bytes') / 2 ** 20, connections: m.sum('broker_websocket_connections') };
    };
    const idle = await memoryNow();
    subs = await subscriptionFanout({
      client,
      token: owner,
      requestId,
      makeWs: () => client.wsClient(owner),
      rawUrl: wsInfo.url,
      clients: plan.subscriptions.clients,
      triggers: plan.subscriptions.triggers,
      timeoutMs: plan.subscriptions.timeoutMs,
      onSubscribed: async () => {
        const busy = await memoryNow();
        subsMemory = { rssMb: [idle.rss, busy.rss], heapUsedMb: [idle.heapUsed, busy.heapUsed], connections: busy.connections - idle.connections };
      },
    });
    log(`subscriptions: broker p99 ${subs.broker.p99Ms?.toFixed(1)} ms, raw ws p99 ${subs.raw.p99Ms?.toFixed(1)} ms`);
  } catch (e) {
    notes.push(`subscription fan-out not measured: ${(e as Error).message}`);
  }

  // ---- fan-out-heavy: engine vs the raw loopback ceiling, interleaved ----
  // The connector's keep-alive sockets per partner origin, as the broker runs (all sandbox sellers share one origin).
  const poolSize = effective.connectionsPerOrigin;
  const globalConcurrency = effective.engine.globalConcurrency;
  const fanoutInFlight = plan.fanout.requestsInFlight ?? globalConcurrency;
  log(`fan-out-heavy: registering ${plan.fanout.copies} more broker sellers per sandbox seller`);
  const fanoutCopies: Array<{ input: SellerInput; id: string }> = [];
  for (let k = 1; k <= plan.fanout.copies; k++) {
    for (const { input } of registered) {
      const copy = { ...input, name: `${input.name} · fan-out ${k}` };
      const res = await client.gql<{ upsertSeller: { seller: { id: string } | null } }>(UPSERT, { input: copy }, admin);
      if (!res.data?.upsertSeller.seller) throw new Error(`upsertSeller copy failed: ${JSON.stringify(res.errors ?? res.data)}`);
      fanoutCopies.push({ input: copy, id: res.data.upsertSeller.seller.id });
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
        { inFlight: fanoutInFlight, durationMs: plan.fanout.windowMs, warmupMs: plan.fanout.warmupMs, drainMs: 8_000, expiresInMs: 3_600_000 },
      ),
    );
    const e = engineRuns.at(-1)!;
    log(
      `fan-out repeat ${r + 1}: raw@${globalConcurrency} ${rawRuns.at(-1)!.callsPerSecond.toFixed(0)}/s, raw@${poolSize} ${rawPoolRuns.at(-1)!.callsPerSecond.toFixed(0)}/s, engine ${e.callsPerSecond.toFixed(0)}/s (${e.serverCpuMicrosPerCall?.toFixed(0)} µs/call, ${e.callsInFlight.toFixed(0)} calls in flight)`,
    );
  }

  // ---- bare Apollo ----
  log('bare Apollo Server ceiling');
  const apolloRuns: ApolloRun[] = [];
  for (let r = 0; r < plan.apollo.repeats; r++) apolloRuns.push(await apolloCeiling(apolloInfo.url, plan.apollo));

  // ---- end of run: memory, final prices, stop ----
  const mem = processMemoryMb(brokerChild.pid);
  rss.sample();
  // The many-sellers phase below restarts the sampler's peak: peakRssMb stays the 8-seller phases' figure.
  const firstRssPeakMb = rss.peakMb;

  // ---- many sellers: the main workload again with `--sellers N` registered (first instance) ----
  let manySellers: { run: MainRun; byTier: Record<number, number>; registrationSeconds: number; disabledFanoutCopies: number } | null = null;
  if (plan.sellers) {
    const { extras, byTier } = scaledFleet(sandbox.sellers, plan.sellers.count);
    const t0 = performance.now();
    // The fan-out-heavy phase's copies would skew the tier shares: taken out of service first.
    await upsertAll(fanoutCopies.map((c) => ({ ...c.input, id: c.id, enabled: false })));
    log(
      `sellers: registering ${extras.length} more (${plan.sellers.count} in all; by tier ${Object.entries(byTier).map(([t, n]) => `${t}: ${n}`).join(', ')}), ` +
        `${plan.sellers.registerConcurrency} at a time`,
    );
    await upsertAll(extras);
    const registrationSeconds = (performance.now() - t0) / 1000;
    log(`sellers: registered in ${registrationSeconds.toFixed(1)} s`);
    const wsS: Client[] = tokens.map((t) => client.wsClient(t, (e) => wsErrors.push(String((e as { message?: string })?.message ?? e))));
    cleanups.push(async () => void (await Promise.allSettled(wsS.map((c) => c.dispose()))));
    const fleetS: Fleet = { clients: [client], tokens, ws: wsS };
    // The new sellers have no cached offers yet: the same warm-up the 8-seller main phase had.
    const warmS = await runPhase(fleetS, {
      name: 'warmup-sellers',
      rate: plan.warmup.rate,
      durationMs: plan.warmup.durationMs,
      maxInFlight: 1_000,
      drainMs: 10_000,
      next: () => workload.next(),
      expiresInMs: 3_600_000,
    });
    const warmSErrors = warmS.records.filter((r) => r.error !== null).length;
    if (warmSErrors > 0) notes.push(`many-sellers warm-up: ${warmSErrors} of ${warmS.records.length} requests ended in errors (${[...new Set(warmS.records.map((r) => r.error).filter(Boolean))].slice(0, 5).join(', ')})`);
    await quiesce([client], plan.quiesceMs);
    const run = await measureMain(`main-${plan.sellers.count}-sellers`, fleetS, [first], `main × ${plan.sellers.count} sellers`);
    await Promise.allSettled(wsS.map((c) => c.dispose()));
    manySellers = { run, byTier, registrationSeconds, disabledFanoutCopies: fanoutCopies.length };
  }
  const after = await quoteEverything(sandbox, isbns);
  const changed = [...before.table].filter(([isbn, pts]) => JSON.stringify(pts.map((p) => p.totalCents).sort()) !== JSON.stringify((after.table.get(isbn) ?? []).map((p) => p.totalCents).sort()));
  if (changed.length > 0) notes.push(`prices of ${changed.length} books differ between the start and the end of the run; regret used the start prices`);
  const brokerLog = brokerChild.output() + extraLogs;
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
  const outboxCost = outbox ? outboxView(outbox) : null;
  const subsRatio = subs && subs.broker.p99Ms !== null && subs.raw.p99Ms ? subs.broker.p99Ms / subs.raw.p99Ms : null;
  const firstPeakRss = mem ? Math.max(mem.hwm, firstRssPeakMb) : firstRssPeakMb || null;
  // The largest of any instance's (the extra ones ran for the scaling phase only).
  const peakRss = firstPeakRss === null && extraPeakRssMb.length === 0 ? null : Math.max(firstPeakRss ?? 0, ...extraPeakRssMb);
  if (mem === null) notes.push('could not read /proc/<pid>/status of the broker at the end; peakRssMb is the largest sampled VmRSS');
  if (!brokerAlive) notes.push('the broker process exited before the end of the run');
  if (headline.unsettled > 0) {
    notes.push(`${headline.unsettled} requests had not settled when the main phase stopped waiting; they count in latencyMs at the time waiting stopped (a lower bound), not as errors`);
  }
  if (headline.overheadMs === null) notes.push('overheadMs: no ORDERED request with a ledger entry, so no floor to compare with');
  if (headline.regret.meanPct === null) notes.push('regret: no ORDERED request with a ledger entry');
  if (subs === null) notes.push('subscriptionFanout figures are null: see the note above');
  if (database === 'embedded') notes.push('embedded PGlite runs inside the broker process (single-threaded WASM): its CPU is in the broker\'s, and Postgres CPU, transactions and rows are not measured; set DATABASE_URL for the Postgres figures');
  else notes.push("Postgres runs in its own processes: its CPU is not in cpuMicrosPerSellerCall (the broker process's only); the backends serving the bench database are measured apart (main.cpu.postgres*, fanout.postgresCpuMicrosPerCall)");
  notes.push(
    `floor: per ORDERED request, one draw from the sandbox's own latency model for the fastest seller with a valid offer plus one for the order with the seller that took it (×${plan.latencyScale}); overheadMs = ORDERED end-to-end percentile − floor percentile`,
  );
  notes.push('regret: ordered total (sandbox ledger) vs the lowest total any seller offers in the accepted conditions, from quoting every seller for every book through the broker connector at the start (re-quoted at the end to confirm)');
  notes.push(
    `seller calls/s: fan-out-heavy mode (${fanoutSellers} broker sellers, every request for a book nobody carries); ceiling = bare undici Pool replaying the connector's captured quote calls with ${globalConcurrency} sockets (the engine's global concurrency cap); at the connector's own pool size (${poolSize} sockets per origin, all sandbox sellers share one origin) the bare client does ${round(ceilingAtPool, 0)}/s`,
  );

  // Goals by storage: Postgres (the deployment the targets are for) or embedded PGlite (bench:quick's default).
  const embedded = database === 'embedded';
  const rateTarget = embedded ? 200 : 500;
  const rssTarget = embedded ? 400 : 300;
  const rateMeasurable = plan.main.rate > rateTarget;
  if (!rateMeasurable && headline.requestsPerSecond < rateTarget) {
    notes.push(`requests/s goal not measurable: ${plan.main.rate}/s offered is not above the ${rateTarget}/s target (offer about twice the target, e.g. --rate ${rateTarget * 2})`);
  }
  // The overhead goal's load: 80% of the sustained rate (the extra phase), or the main phase itself when it kept up (its load was sustainable).
  const atLoad = moderate ? moderate.analysis : saturated ? null : headline;
  const atLoadRate = moderate ? moderate.phase.offeredRate : plan.main.rate;
  const perRequest = {
    brokerCpuMs: mainRun.cpu.brokerCpuMsPerRequest,
    postgresCpuMs: mainRun.cpu.postgresCpuMsPerRequest,
    transactions: dbPerRequest?.transactions ?? null,
    rowsRead: dbPerRequest?.rowsRead ?? null,
    rowsInserted: dbPerRequest?.rowsInserted ?? null,
    rowsUpdated: dbPerRequest?.rowsUpdated ?? null,
  };
  const atMost = (v: number | null, target: number) => (v !== null ? v <= target : null);
  const goals = [
    goal(
      `requests/s sustained, 1 instance (${embedded ? 'PGlite' : 'Postgres'})`,
      round(headline.requestsPerSecond, 1),
      `>= ${rateTarget}`,
      headline.requestsPerSecond >= rateTarget ? true : rateMeasurable ? false : null,
    ),
    goal(`p90 overhead above floor at ${atLoadRate}/s (ms)`, round(atLoad?.overheadMs?.p90, 1), '< 50', atLoad?.overheadMs ? atLoad.overheadMs.p90 < 50 : null),
    goal('broker CPU ms per request', perRequest.brokerCpuMs, '<= 2', atMost(perRequest.brokerCpuMs, 2)),
    goal('Postgres CPU ms per request', perRequest.postgresCpuMs, '<= 1.5', atMost(perRequest.postgresCpuMs, 1.5)),
    goal('Postgres transactions per request', perRequest.transactions, '<= 4', atMost(perRequest.transactions, 4)),
    goal('Postgres rows read per request', perRequest.rowsRead, '<= 50', atMost(perRequest.rowsRead, 50)),
    goal('seller calls per request vs naive', ratio(callsPerReq(mainCalls.total, created), sellersCount + orderedShare), '< 0.25', created > 0 ? callsPerReq(mainCalls.total, created)! < 0.25 * (sellersCount + orderedShare) : null),
    goal('mean regret (%)', round(headline.regret.meanPct, 3), '< 0.5', headline.regret.meanPct !== null ? headline.regret.meanPct < 0.5 : null),
    goal('seller calls/s vs loopback ceiling', ratio(engineCalls, ceiling), '>= 0.5', engineCalls !== null && ceiling ? engineCalls / ceiling >= 0.5 : null),
    goal('CPU per call vs raw undici', ratio(engineCpu, rawCpu), '<= 2', engineCpu !== null && rawCpu ? engineCpu / rawCpu <= 2 : null),
    goal('subscription p99 vs raw ws', round(subsRatio, 2), '<= 3', subsRatio !== null ? subsRatio <= 3 : null),
    goal(`server peak RSS (MB, ${embedded ? 'PGlite' : 'Postgres'})`, round(peakRss, 0), `< ${rssTarget}`, peakRss !== null ? peakRss < rssTarget : null),
    goal(
      'requests/s with webhooks vs without',
      outboxCost?.throughputRatio ?? null,
      '>= 0.9',
      outboxCost && outboxCost.throughputRatio !== null && outboxCost.saturated ? outboxCost.throughputRatio >= 0.9 : null,
    ),
  ];
  if (outboxCost && !outboxCost.saturated) {
    notes.push(
      `webhook outbox: the runs with webhooks kept up with the ${outboxCost.offeredRate}/s offered, so throughput cannot show the outbox's cost (goal not judged); ` +
        `broker CPU per request with/without: ${outboxCost.brokerCpuMsPerRequest.ratio ?? 'n/a'}× — offer more (--rate) to measure it`,
    );
  }
  if (outboxCost && !outboxCost.deliveries.drained) notes.push(`webhook outbox: still delivering ${plan.webhooks.outboxDrainMs / 1000}s after a run's requests were done`);
  if (saturated && atLoad === null) notes.push('p90 overhead goal not measured: the main phase was saturated and the phase at 80% of its rate did not run');

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
      memory: subsMemoryView(subsMemory, plan.subscriptions.clients),
    },
    errors: headline.errors,
    unsettled: headline.unsettled,
    peakRssMb: round(peakRss, 1),
    perRequest,
    instances: {
      count: plan.instances,
      // One database for every run: the N-instance run follows the 1-instance phases on it.
      sameDatabase: true,
      pubsub: brokerEnv.REDIS_URL ? 'redis' : 'memory',
      runs: [mainRun, ...(scaledRun ? [scaledRun] : [])].map(runView),
      speedup: scaledRun ? ratio(scaledRun.analysis.requestsPerSecond, headline.requestsPerSecond) : null,
    },
    ...(manySellers && plan.sellers ? { sellers: sellersView(mainRun, sellersCount, manySellers, plan.sellers) } : {}),
    webhookOutbox: outboxCost,
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
      cpu: mainRun.cpu,
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
      requestsInFlight: fanoutInFlight,
      windowSeconds: plan.fanout.windowMs / 1000,
      engine: engineRuns.map((r) => ({
        ...r,
        seconds: round(r.seconds, 2),
        callsPerSecond: round(r.callsPerSecond, 0),
        callsInFlight: round(r.callsInFlight, 0),
        serverCpuMicrosPerCall: round(r.serverCpuMicrosPerCall, 1),
        sandboxCpuMicrosPerCall: round(r.sandboxCpuMicrosPerCall, 1),
        postgresCpuMicrosPerCall: round(r.postgresCpuMicrosPerCall, 1),
        postgresTransactionsPerCall: round(r.postgresTransactionsPerCall, 2),
      })),
      callsInFlight: round(median(engineRuns.map((r) => r.callsInFlight)), 0),
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
      instances: plan.instances,
      workload: { ...workload.mix, topBookShare: round(workload.topShare(), 3), books: isbns.length },
      subscriptions: plan.subscriptions,
      fanout: { ...plan.fanout, requestsInFlight: fanoutInFlight, sellers: fanoutSellers, ceilingConnections: globalConcurrency, connectorPoolPerOrigin: poolSize },
      apollo: plan.apollo,
      webhooks: plan.webhooks,
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
  if (manySellers) {
    notes.push(
      `many sellers: the main workload ran again as the last phase with ${plan.sellers!.count} sellers registered (copies of sandbox sellers of the same tier, ${manySellers.disabledFanoutCopies} fan-out copies disabled first), ` +
        'on the first instance and the same database (its tables hold every earlier phase\'s rows by then); every copy is served by the one sandbox origin, so they share the connector\'s per-origin sockets, where real partners would each have their own',
    );
  }
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

/** Waits until every broker has no request in a round or ordering and nothing due in its queue. */
async function quiesce(clients: readonly BrokerClient[], timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ms = await Promise.all(clients.map((c) => c.metrics()));
    if (ms.every((m) => m.sum('broker_requests_active') === 0 && m.sum('broker_queue_lag_seconds') === 0)) return true;
    await sleep(250);
  }
  return false;
}

/**
 * Waits until the broker's outbox has nothing claimable left (broker_webhook_outbox_lag_seconds 0)
 * and its delivery tries stopped moving between two looks: every event of the phase delivered.
 */
async function outboxDrained(client: BrokerClient, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < until) {
    const m = await client.metrics();
    const tries = m.sum('broker_webhook_deliveries_total');
    if (m.sum('broker_webhook_outbox_lag_seconds') === 0 && tries === last) return true;
    last = tries;
    await sleep(500);
  }
  return false;
}

/** The error message of the broker's last "shutdown failed" log line, if it logged one. */
function shutdownFailure(output: string): string | undefined {
  const line = output.split('\n').reverse().find((l) => l.includes('"msg":"shutdown failed"'));
  if (!line) return undefined;
  try {
    return (JSON.parse(line) as { err?: { message?: string } }).err?.message;
  } catch {
    return undefined;
  }
}

/** One broker process the bench started (index 0 serves every phase; the others the scaling phase). */
interface Broker {
  index: number;
  child: Child;
  client: BrokerClient;
  rss: RssSampler | null;
}

/** The main workload measured on one set of instances. */
interface MainRun {
  instances: number;
  phase: PhaseResult;
  analysis: PhaseAnalysis;
  spanS: number;
  calls: { quote: number; order: number; orderStatus: number; total: number };
  cache: { hit: number; miss: number };
  members: { started: number; joined: number };
  skipped: number;
  brokerCallsByOutcome: Record<string, number>;
  hasMetric: (metric: string) => boolean;
  cpu: {
    brokerCores: number | null;
    sandboxCores: number | null;
    benchCores: number | null;
    machineBusyCores: number | null;
    postgresCores: number | null;
    otherCores: number | null;
    postgresCpuMsPerRequest: number | null;
    brokerCpuMsPerRequest: number | null;
  };
  db: { transactions: number | null; rowsInserted: number | null; rowsUpdated: number | null; rowsRead: number | null } | null;
  rssPeakMb: number;
  quiesced: boolean;
}

/** The main workload without webhook endpoints and with one per user, alternately. */
interface OutboxRuns {
  endpoints: number;
  offeredRate: number;
  off: MainRun[];
  on: MainRun[];
  /** broker_webhook_deliveries_total by outcome, from each registration until the outbox drained. */
  tries: Record<string, number>;
  /** POSTs the receiver answered over the same spans. */
  received: number;
  /** After each run with webhooks, the time from its requests being done to the outbox being empty. */
  drainSeconds: number[];
  drained: boolean;
}

/**
 * The outbox's cost: requests/s with every user's endpoint registered over requests/s without,
 * each the mean of its runs (goal: at least 0.9, i.e. the outbox costs at most 10% of throughput),
 * and the CPU per request each way, which shows the cost when the load does not saturate the broker.
 */
function outboxView(o: OutboxRuns) {
  const offered = o.offeredRate;
  const atCapacity = (r: MainRun) => r.phase.throttledMs >= 0.1 * (r.phase.issuedUntil - r.phase.startedAt) || r.analysis.requestsPerSecond < 0.9 * offered;
  const meanOf = (runs: MainRun[], pick: (r: MainRun) => number | null) => {
    const xs = runs.map(pick);
    return xs.length === 0 || xs.some((v) => v === null) ? null : (xs as number[]).reduce((a, b) => a + b, 0) / xs.length;
  };
  const offRps = meanOf(o.off, (r) => r.analysis.requestsPerSecond);
  const onRps = meanOf(o.on, (r) => r.analysis.requestsPerSecond);
  const offBroker = meanOf(o.off, (r) => r.cpu.brokerCpuMsPerRequest);
  const onBroker = meanOf(o.on, (r) => r.cpu.brokerCpuMsPerRequest);
  const offPostgres = meanOf(o.off, (r) => r.cpu.postgresCpuMsPerRequest);
  const onPostgres = meanOf(o.on, (r) => r.cpu.postgresCpuMsPerRequest);
  const created = o.on.reduce((n, r) => n + r.analysis.created, 0);
  return {
    endpoints: o.endpoints,
    offeredRate: offered,
    durationSeconds: o.on[0] ? round((o.on[0].phase.issuedUntil - o.on[0].phase.startedAt) / 1000, 1) : null,
    /**
     * Whether the runs with webhooks were at capacity: held back by their unsettled cap for a tenth
     * of the run or more, or short of the offered rate. When they kept up, throughput cannot show
     * the outbox's cost; CPU per request does.
     */
    saturated: o.on.length > 0 && o.on.every(atCapacity),
    requestsPerSecond: { off: round(offRps, 1), on: round(onRps, 1), offRuns: o.off.map((r) => round(r.analysis.requestsPerSecond, 1)), onRuns: o.on.map((r) => round(r.analysis.requestsPerSecond, 1)) },
    throughputRatio: ratio(onRps, offRps),
    brokerCpuMsPerRequest: { off: round(offBroker, 2), on: round(onBroker, 2), ratio: ratio(onBroker, offBroker) },
    postgresCpuMsPerRequest: { off: round(offPostgres, 2), on: round(onPostgres, 2), ratio: ratio(onPostgres, offPostgres) },
    deliveries: {
      delivered: o.tries.delivered ?? 0,
      perRequest: created > 0 ? round((o.tries.delivered ?? 0) / created, 2) : null,
      failedTries: Object.entries(o.tries).filter(([k]) => k !== 'delivered').reduce((n, [, v]) => n + v, 0),
      receiverAnswered: o.received,
      drainSecondsAfterRuns: o.drainSeconds.map((v) => round(v, 1)),
      drained: o.drained,
    },
    runs: { off: o.off.map(outboxRunView), on: o.on.map(outboxRunView) },
  };
}

/** One run of the outbox phase: runView, and how long its unsettled cap held the load back. */
function outboxRunView(r: MainRun) {
  return { ...runView(r), throttledSeconds: round(r.phase.throttledMs / 1000, 1) };
}

/** A main-workload run as the JSON's `instances.runs` and the table's side-by-side columns show it. */
function runView(r: MainRun) {
  const a = r.analysis;
  return {
    instances: r.instances,
    offeredRate: r.phase.offeredRate,
    requestsPerSecond: round(a.requestsPerSecond, 1),
    latencyMs: pct(a.latencyMs),
    overheadMs: pct(a.overheadMs),
    sent: a.sent,
    created: a.created,
    settled: a.settled,
    errors: a.errors,
    unsettled: a.unsettled,
    byStatus: a.byStatus,
    perRequest: {
      brokerCpuMs: r.cpu.brokerCpuMsPerRequest,
      postgresCpuMs: r.cpu.postgresCpuMsPerRequest,
      transactions: r.db?.transactions ?? null,
      rowsRead: r.db?.rowsRead ?? null,
      rowsInserted: r.db?.rowsInserted ?? null,
      rowsUpdated: r.db?.rowsUpdated ?? null,
      sellerCalls: round(callsPerReq(r.calls.total, a.created), 3),
    },
    cacheHitRate: r.cache.hit + r.cache.miss > 0 ? round(r.cache.hit / (r.cache.hit + r.cache.miss), 4) : null,
    coalesceRate: r.members.joined + r.members.started > 0 ? round(r.members.joined / (r.members.joined + r.members.started), 4) : null,
    exactlyOnce: { duplicateOrders: a.duplicateOrders, orderedWithoutLedgerEntry: a.orderedWithoutLedger },
    cpu: r.cpu,
    /** The largest VmRSS sampled of any instance during the phase. */
    peakRssMb: round(r.rssPeakMb, 1),
    quiesced: r.quiesced,
  };
}

/**
 * The broker's memory with no subscriber and with every subscriber of the fan-out phase connected
 * (one WebSocket and one subscription each): RSS and V8 heap in use, and their growth per subscriber.
 * Garbage not yet collected counts too, so it is an upper estimate.
 */
function subsMemoryView(m: { rssMb: [number, number]; heapUsedMb: [number, number]; connections: number } | null, clients: number) {
  if (!m) return null;
  const perKb = (pair: [number, number]) => round(((pair[1] - pair[0]) * 1024) / clients, 1);
  return {
    rssMb: { idle: round(m.rssMb[0], 1), subscribed: round(m.rssMb[1], 1) },
    heapUsedMb: { idle: round(m.heapUsedMb[0], 1), subscribed: round(m.heapUsedMb[1], 1) },
    websocketConnectionsAdded: m.connections,
    rssKbPerSubscriber: perKb(m.rssMb),
    heapKbPerSubscriber: perKb(m.heapUsedMb),
  };
}

/** One main-workload run as the many-sellers comparison shows it: runView plus calls by kind and the naive count. */
function sellersRunView(r: MainRun, sellers: number) {
  const v = runView(r);
  const created = r.analysis.created;
  const naive = sellers + (created > 0 ? (r.analysis.byStatus.ORDERED ?? 0) / created : 0);
  return {
    sellers,
    ...v,
    perRequest: {
      ...v.perRequest,
      quotes: round(callsPerReq(r.calls.quote, created), 3),
      orders: round(callsPerReq(r.calls.order, created), 3),
      statusChecks: round(callsPerReq(r.calls.orderStatus, created), 3),
      cacheLookups: round(callsPerReq(r.cache.hit + r.cache.miss, created), 1),
      /** Calls a round did not make because its requests were already satisfied (`broker_seller_calls_skipped_total`). */
      callsSkipped: round(callsPerReq(r.skipped, created), 2),
    },
    naiveCallsPerRequest: round(naive, 3),
    callsVsNaive: ratio(callsPerReq(r.calls.total, created), naive),
  };
}

/** `--sellers N`: the 8-seller main phase and the N-seller one side by side, and their ratios. */
function sellersView(
  base: MainRun,
  baseSellers: number,
  many: { run: MainRun; byTier: Record<number, number>; registrationSeconds: number; disabledFanoutCopies: number },
  plan: { count: number; shares: Readonly<Record<number, number>>; registerConcurrency: number },
) {
  const runs = [sellersRunView(base, baseSellers), sellersRunView(many.run, plan.count)];
  return {
    count: plan.count,
    byTier: many.byTier,
    shares: plan.shares,
    registrationSeconds: round(many.registrationSeconds, 1),
    registerConcurrency: plan.registerConcurrency,
    disabledFanoutCopies: many.disabledFanoutCopies,
    runs,
    /** N-seller figure ÷ 8-seller figure. */
    brokerCpuRatio: ratio(runs[1]!.perRequest.brokerCpuMs, runs[0]!.perRequest.brokerCpuMs),
    sellerCallsRatio: ratio(runs[1]!.perRequest.sellerCalls, runs[0]!.perRequest.sellerCalls),
  };
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
