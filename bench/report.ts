/** The benchmark's readable table (stdout); the JSON beside it holds everything. */

type P = { p50: number | null; p90: number | null; p99: number | null };
type Split = { sampled: number; create: P; queue: P; round: P; order: P; deliver: P };
type PerRequest = {
  brokerCpuMs: number | null;
  postgresCpuMs: number | null;
  transactions: number | null;
  rowsRead: number | null;
  rowsInserted: number | null;
  rowsUpdated: number | null;
};
type InstancesRun = {
  instances: number;
  offeredRate: number;
  requestsPerSecond: number | null;
  latencyMs: P;
  overheadMs: P;
  errors: number;
  unsettled: number;
  perRequest: PerRequest & { sellerCalls: number | null };
  cacheHitRate: number | null;
  exactlyOnce: { duplicateOrders: number; orderedWithoutLedgerEntry: number };
  cpu: { brokerCores: number | null; postgresCores: number | null; machineBusyCores: number | null };
  peakRssMb: number | null;
};

type SellersRun = InstancesRun & {
  sellers: number;
  perRequest: { quotes: number | null; orders: number | null; statusChecks: number | null; cacheLookups: number | null; callsSkipped: number | null };
  naiveCallsPerRequest: number | null;
  callsVsNaive: number | null;
  coalesceRate: number | null;
};

export interface ReportInput {
  requestsPerSecond: number | null;
  latencyMs: P;
  overheadMs: P;
  callsPerRequest: number | null;
  naiveCallsPerRequest: number | null;
  cacheHitRate: number | null;
  coalesceRate: number | null;
  regret: { meanPct: number | null; shareAtBest: number | null };
  sellerCallsPerSecond: number | null;
  loopbackCeilingCallsPerSecond: number | null;
  cpuMicrosPerSellerCall: number | null;
  rawClientCpuMicrosPerCall: number | null;
  apolloCeilingRps: number | null;
  subscriptionFanout: {
    clients: number;
    p99Ms: number | null;
    rawWsP99Ms: number | null;
    memory: { rssKbPerSubscriber: number | null; heapKbPerSubscriber: number | null } | null;
  };
  errors: number;
  unsettled: number;
  peakRssMb: number | null;
  perRequest: PerRequest;
  instances: { count: number; pubsub: string; runs: InstancesRun[]; speedup: number | null };
  /** Present with `--sellers N` only. */
  sellers?: {
    count: number;
    byTier: Record<string, number>;
    registrationSeconds: number | null;
    runs: SellersRun[];
    brokerCpuRatio: number | null;
    sellerCallsRatio: number | null;
  };
  /** The webhook outbox phase (null when it could not run). */
  webhookOutbox?: {
    endpoints: number;
    offeredRate: number;
    saturated: boolean;
    requestsPerSecond: { off: number | null; on: number | null; offRuns: Array<number | null>; onRuns: Array<number | null> };
    throughputRatio: number | null;
    brokerCpuMsPerRequest: { off: number | null; on: number | null; ratio: number | null };
    postgresCpuMsPerRequest: { off: number | null; on: number | null; ratio: number | null };
    deliveries: { delivered: number; perRequest: number | null; failedTries: number; receiverAnswered: number; drainSecondsAfterRuns: Array<number | null>; drained: boolean };
  } | null;
  ratios: Record<string, number | null>;
  goals: Array<{ name: string; actual: number | null; target: string; met: boolean | null }>;
  main: {
    offeredRate: number;
    sent: number;
    settled: number;
    byStatus: Record<string, number>;
    errorsByKind: Record<string, number>;
    unexpectedOutcomes: Record<string, number>;
    floorMs: P;
    latencyByOutcomeMs: Record<string, P>;
    breakdownMs: Split;
    regret: { vsTierPolicyMeanPct: number | null; shareAtTierPolicyBest: number | null };
    postgresPerRequest: { transactions: number | null; rowsInserted: number | null; rowsUpdated: number | null; rowsRead: number | null } | null;
    exactlyOnce: { duplicateOrders: number; orderedWithoutLedgerEntry: number };
    sellerCalls: { quote: number; order: number; orderStatus: number; perSecond: number | null };
    cpu: {
      brokerCores: number | null;
      sandboxCores: number | null;
      benchCores: number | null;
      machineBusyCores: number | null;
      postgresCores: number | null;
      otherCores: number | null;
      brokerCpuMsPerRequest: number | null;
      postgresCpuMsPerRequest: number | null;
    };
  };
  moderate: {
    offeredRate: number;
    requestsPerSecond: number | null;
    latencyMs: P;
    overheadMs: P;
    breakdownMs: Split;
  } | null;
  fanout: { sellers: number; requestsInFlight: number; callsInFlight: number | null; loopbackCeilingAtConnectorPool: number | null; postgresCpuMicrosPerCall: number | null; postgresTransactionsPerCall: number | null };
  config: { mode: string; database: string; users: number; sellers: number; latencyScale: number; machine: { cpus: number }; wallSeconds: number | null };
  notes: string[];
}

const f = (n: number | null | undefined, digits = 1) => (n === null || n === undefined ? 'n/a' : n.toFixed(digits));
const p3 = (p: P, digits = 0) => `${f(p.p50, digits)} / ${f(p.p90, digits)} / ${f(p.p99, digits)}`;
const pc = (n: number | null) => (n === null ? 'n/a' : `${(n * 100).toFixed(1)}%`);
const x = (n: number | null | undefined) => (n === null || n === undefined ? 'n/a' : `${n.toFixed(2)}×`);

const split = (b: Split) =>
  `p50/p90 ms (${b.sampled} sampled) create ${f(b.create.p50, 0)}/${f(b.create.p90, 0)} · queue ${f(b.queue.p50, 0)}/${f(b.queue.p90, 0)} · ` +
  `round ${f(b.round.p50, 0)}/${f(b.round.p90, 0)} · order ${f(b.order.p50, 0)}/${f(b.order.p90, 0)} · deliver ${f(b.deliver.p50, 0)}/${f(b.deliver.p90, 0)}`;

export function printTable(r: ReportInput): void {
  const rows: Array<[string, string, string]> = [
    ['requests/s sustained', f(r.requestsPerSecond), `offered ${r.main.offeredRate}/s · bare Apollo ${f(r.apolloCeilingRps, 0)}/s (${x(r.ratios.requestsVsApollo)})`],
    ['end-to-end ms p50/p90/p99', p3(r.latencyMs), 'create → settled status, seen on the subscription'],
    ['  ORDERED ms p50/p90/p99', p3(r.main.latencyByOutcomeMs.ORDERED ?? { p50: null, p90: null, p99: null }), `floor ${p3(r.main.floorMs)}`],
    ['overhead above floor ms', p3(r.overheadMs), 'ORDERED percentile − floor percentile'],
    ['seller calls / request', f(r.callsPerRequest, 2), `naive ${f(r.naiveCallsPerRequest, 2)} (${x(r.ratios.callsVsNaive)})`],
    [
      'broker CPU ms / request',
      f(r.perRequest.brokerCpuMs, 2),
      r.config.database === 'postgres'
        ? `Postgres CPU ${f(r.perRequest.postgresCpuMs, 2)} ms · ${f(r.perRequest.transactions, 1)} transactions · rows read ${f(r.perRequest.rowsRead, 0)}, inserted ${f(r.perRequest.rowsInserted, 1)}, updated ${f(r.perRequest.rowsUpdated, 1)}`
        : 'embedded PGlite runs inside the broker process: its work is in this figure',
    ],
    ['offer cache hit rate', pc(r.cacheHitRate), ''],
    ['coalescing rate', pc(r.coalesceRate), 'requests that joined a round in flight'],
    ['price regret', `${f(r.regret.meanPct, 3)}% mean`, `${pc(r.regret.shareAtBest)} ordered at the best total`],
    ['seller calls/s (fan-out)', f(r.sellerCallsPerSecond, 0), `ceiling ${f(r.loopbackCeilingCallsPerSecond, 0)}/s (${x(r.ratios.callsVsCeiling)}); at connector pool ${f(r.fanout.loopbackCeilingAtConnectorPool, 0)}/s (${x(r.ratios.callsVsCeilingAtConnectorPool)}); ${f(r.fanout.callsInFlight, 0)} calls in flight from ${r.fanout.requestsInFlight} requests`],
    [
      'CPU µs / seller call',
      f(r.cpuMicrosPerSellerCall),
      `broker process, fan-out mode; raw undici ${f(r.rawClientCpuMicrosPerCall)} µs (${x(r.ratios.cpuVsRaw)})` +
        (r.fanout.postgresCpuMicrosPerCall !== null ? `; Postgres adds ${f(r.fanout.postgresCpuMicrosPerCall)} µs` : ''),
    ],
    [
      `subscription p99 ms (${r.subscriptionFanout.clients})`,
      f(r.subscriptionFanout.p99Ms),
      `raw ws ${f(r.subscriptionFanout.rawWsP99Ms)} ms (${x(r.ratios.subscriptionP99VsRawWs)})` +
        (r.subscriptionFanout.memory
          ? ` · broker memory per subscriber: RSS ${f(r.subscriptionFanout.memory.rssKbPerSubscriber)} KB, heap ${f(r.subscriptionFanout.memory.heapKbPerSubscriber)} KB`
          : ''),
    ],
    [
      'errors',
      String(r.errors),
      [...Object.entries(r.main.errorsByKind).map(([k, v]) => `${k}: ${v}`), `${r.unsettled} unsettled when waiting stopped (not errors)`].join(', '),
    ],
    ['server peak RSS MB', f(r.peakRssMb, 0), r.instances.count > 1 ? 'the largest of any instance' : ''],
  ];
  const o = r.webhookOutbox;
  if (o) {
    rows.push([
      'requests/s with webhooks',
      f(o.requestsPerSecond.on),
      `runs ${o.requestsPerSecond.onRuns.map((v) => f(v)).join(', ')} · without ${f(o.requestsPerSecond.off)}/s (runs ${o.requestsPerSecond.offRuns.map((v) => f(v)).join(', ')}): ${x(o.throughputRatio)} · ${o.endpoints} endpoints, every event, ${f(o.deliveries.perRequest, 2)} deliveries per request`,
    ]);
  }
  const w0 = Math.max(...rows.map((row) => row[0].length));
  const w1 = Math.max(...rows.map((row) => row[1].length));
  const line = (a: string, b: string, c: string) => `  ${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`;
  const out: string[] = [];
  out.push('');
  out.push(`Broker benchmark — ${r.config.mode}, ${r.config.database}${r.instances.count > 1 ? ` (1 and ${r.instances.count} instances)` : ''}, ${r.config.machine.cpus} CPUs, ${r.config.users} users, ${r.config.sellers} sellers${r.sellers ? ` (and ${r.sellers.count})` : ''}, latency ×${r.config.latencyScale}, ${f(r.config.wallSeconds, 0)} s`);
  out.push('');
  for (const row of rows) out.push(line(...row));
  out.push('');
  out.push(
    `  outcomes: ${Object.entries(r.main.byStatus).map(([k, v]) => `${k} ${v}`).join(', ')} of ${r.main.sent} sent` +
      (Object.keys(r.main.unexpectedOutcomes).length > 0 ? ` · unexpected: ${Object.entries(r.main.unexpectedOutcomes).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''),
  );
  out.push(`  exactly once: ${r.main.exactlyOnce.duplicateOrders} duplicate orders, ${r.main.exactlyOnce.orderedWithoutLedgerEntry} ORDERED without a ledger entry`);
  out.push(`  ORDERED time split, main phase: ${split(r.main.breakdownMs)}`);
  out.push(
    `  regret against the best of the first tier with a valid offer (the tier policy's reach): ${f(r.main.regret.vsTierPolicyMeanPct, 3)}% mean, ${pc(r.main.regret.shareAtTierPolicyBest)} at it`,
  );
  out.push(
    `  CPU during main phase (cores): broker ${f(r.main.cpu.brokerCores, 2)}, ` +
      (r.main.cpu.postgresCores !== null ? `Postgres ${f(r.main.cpu.postgresCores, 2)}, ` : '') +
      `sandbox ${f(r.main.cpu.sandboxCores, 2)}, load generator ${f(r.main.cpu.benchCores, 2)}, anything else ${f(r.main.cpu.otherCores, 2)}; machine busy ${f(r.main.cpu.machineBusyCores, 2)} of ${r.config.machine.cpus}` +
      ` · CPU ms per request: broker ${f(r.main.cpu.brokerCpuMsPerRequest, 2)}` +
      (r.main.cpu.postgresCpuMsPerRequest !== null ? `, Postgres ${f(r.main.cpu.postgresCpuMsPerRequest, 2)}` : ''),
  );
  const db = r.main.postgresPerRequest;
  if (db) {
    out.push(
      `  Postgres per request: ${f(db.transactions, 1)} transactions, ${f(db.rowsInserted, 1)} rows inserted, ${f(db.rowsUpdated, 1)} updated, ${f(db.rowsRead, 0)} read` +
        (r.fanout.postgresTransactionsPerCall !== null ? ` · fan-out mode: ${f(r.fanout.postgresTransactionsPerCall, 2)} transactions per seller call` : ''),
    );
  }
  out.push(`  seller calls in main phase: ${r.main.sellerCalls.quote} quotes, ${r.main.sellerCalls.order} orders, ${r.main.sellerCalls.orderStatus} status checks (${f(r.main.sellerCalls.perSecond, 0)}/s)`);
  if (r.moderate) {
    out.push(`  at 80% of the sustained rate, ${r.moderate.offeredRate}/s offered: ${f(r.moderate.requestsPerSecond)}/s, end-to-end ${p3(r.moderate.latencyMs)} ms, overhead ${p3(r.moderate.overheadMs)} ms`);
    out.push(`  ORDERED time split at ${r.moderate.offeredRate}/s: ${split(r.moderate.breakdownMs)}`);
  }
  if (o) {
    out.push(
      `  webhook outbox at ${o.offeredRate}/s offered: broker CPU ms per request ${f(o.brokerCpuMsPerRequest.off, 2)} without, ${f(o.brokerCpuMsPerRequest.on, 2)} with (${x(o.brokerCpuMsPerRequest.ratio)})` +
        (o.postgresCpuMsPerRequest.on !== null ? `, Postgres ${f(o.postgresCpuMsPerRequest.off, 2)} / ${f(o.postgresCpuMsPerRequest.on, 2)} (${x(o.postgresCpuMsPerRequest.ratio)})` : '') +
        ` · ${o.deliveries.delivered} delivered (receiver answered ${o.deliveries.receiverAnswered}), ${o.deliveries.failedTries} failed tries, outbox empty ${o.deliveries.drainSecondsAfterRuns.map((v) => f(v)).join(', ')} s after each run` +
        (o.saturated ? '' : ' · the runs with webhooks kept up with the load: throughput cannot show the cost'),
    );
  }
  if (r.instances.runs.length > 1) out.push('', ...instancesTable(r));
  if (r.sellers) out.push('', ...sellersTable(r.sellers));
  out.push('');
  out.push('  goals:');
  const wg = Math.max(38, ...r.goals.map((g) => g.name.length));
  for (const g of r.goals) out.push(`    ${g.met === null ? '  ?' : g.met ? ' ok' : 'MISS'}  ${g.name.padEnd(wg)} ${f(g.actual, 3).padStart(10)}  (target ${g.target})`);
  if (r.notes.length > 0) {
    out.push('');
    out.push('  notes:');
    for (const n of r.notes) out.push(`    - ${n}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

/** The main workload on 1 instance and on N, side by side (same database, users round-robin over the instances). */
function instancesTable(r: ReportInput): string[] {
  const runs = r.instances.runs;
  const rows: Array<[string, ...string[]]> = [
    ['instances', ...runs.map((x) => String(x.instances))],
    ['offered requests/s', ...runs.map((x) => String(x.offeredRate))],
    ['requests/s sustained', ...runs.map((x) => f(x.requestsPerSecond))],
    ['end-to-end ms p50/p90/p99', ...runs.map((x) => p3(x.latencyMs))],
    ['overhead above floor ms p50/p90/p99', ...runs.map((x) => p3(x.overheadMs))],
    ['broker CPU ms / request (all instances)', ...runs.map((x) => f(x.perRequest.brokerCpuMs, 2))],
    ['Postgres CPU ms / request', ...runs.map((x) => f(x.perRequest.postgresCpuMs, 2))],
    ['transactions / request', ...runs.map((x) => f(x.perRequest.transactions, 1))],
    ['rows read / inserted / updated per request', ...runs.map((x) => `${f(x.perRequest.rowsRead, 0)} / ${f(x.perRequest.rowsInserted, 1)} / ${f(x.perRequest.rowsUpdated, 1)}`)],
    ['seller calls / request', ...runs.map((x) => f(x.perRequest.sellerCalls, 2))],
    ['offer cache hit rate', ...runs.map((x) => pc(x.cacheHitRate))],
    ['cores: brokers / Postgres / machine busy', ...runs.map((x) => `${f(x.cpu.brokerCores, 2)} / ${f(x.cpu.postgresCores, 2)} / ${f(x.cpu.machineBusyCores, 2)}`)],
    ['peak RSS MB (largest instance)', ...runs.map((x) => f(x.peakRssMb, 0))],
    ['errors / unsettled', ...runs.map((x) => `${x.errors} / ${x.unsettled}`)],
    ['duplicate orders / ORDERED without order', ...runs.map((x) => `${x.exactlyOnce.duplicateOrders} / ${x.exactlyOnce.orderedWithoutLedgerEntry}`)],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const out = [`  main workload by instances (same database, pub/sub ${r.instances.pubsub}; ${r.instances.count} instances: ${x(r.instances.speedup)} the requests/s of 1):`];
  for (const row of rows) out.push(`    ${row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ')}`);
  return out;
}

/** `--sellers N`: the main workload with the sandbox's 8 sellers and with N registered, side by side. */
function sellersTable(s: NonNullable<ReportInput['sellers']>): string[] {
  const runs = s.runs;
  const rows: Array<[string, ...string[]]> = [
    ['registered sellers', ...runs.map((x) => String(x.sellers))],
    ['requests/s sustained (offered)', ...runs.map((x) => `${f(x.requestsPerSecond)} (${x.offeredRate})`)],
    ['end-to-end ms p50/p90/p99', ...runs.map((x) => p3(x.latencyMs))],
    ['overhead above floor ms p50/p90/p99', ...runs.map((x) => p3(x.overheadMs))],
    ['broker CPU ms / request', ...runs.map((x) => f(x.perRequest.brokerCpuMs, 2))],
    ['seller calls / request (naive)', ...runs.map((x) => `${f(x.perRequest.sellerCalls, 2)} (${f(x.naiveCallsPerRequest, 1)})`)],
    ['  quotes / orders / status checks', ...runs.map((x) => `${f(x.perRequest.quotes, 2)} / ${f(x.perRequest.orders, 2)} / ${f(x.perRequest.statusChecks, 2)}`)],
    ['offer cache lookups / request', ...runs.map((x) => f(x.perRequest.cacheLookups, 1))],
    ['seller calls skipped / request (early exit)', ...runs.map((x) => f(x.perRequest.callsSkipped, 2))],
    ['offer cache hit rate · coalescing', ...runs.map((x) => `${pc(x.cacheHitRate)} · ${pc(x.coalesceRate)}`)],
    ['Postgres CPU ms / request', ...runs.map((x) => f(x.perRequest.postgresCpuMs, 2))],
    ['transactions / rows read per request', ...runs.map((x) => `${f(x.perRequest.transactions, 1)} / ${f(x.perRequest.rowsRead, 0)}`)],
    ['cores: broker / Postgres / machine busy', ...runs.map((x) => `${f(x.cpu.brokerCores, 2)} / ${f(x.cpu.postgresCores, 2)} / ${f(x.cpu.machineBusyCores, 2)}`)],
    ['peak RSS MB', ...runs.map((x) => f(x.peakRssMb, 0))],
    ['errors / unsettled', ...runs.map((x) => `${x.errors} / ${x.unsettled}`)],
    ['duplicate orders / ORDERED without order', ...runs.map((x) => `${x.exactlyOnce.duplicateOrders} / ${x.exactlyOnce.orderedWithoutLedgerEntry}`)],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const tiers = Object.entries(s.byTier).map(([t, n]) => `tier ${t}: ${n}`).join(', ');
  const out = [
    `  main workload by registered sellers (${s.count}: ${tiers}; registered in ${f(s.registrationSeconds)} s) · ` +
      `${s.count} vs ${runs[0]!.sellers}: broker CPU per request ${x(s.brokerCpuRatio)}, seller calls per request ${x(s.sellerCallsRatio)}`,
  ];
  for (const row of rows) out.push(`    ${row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ')}`);
  return out;
}
