import type { LatencySpec, LedgerEntry, SandboxSellerSpec } from '../src/partners/sandbox/fleet.js';
import { type Rng, logNormalMs } from '../src/partners/sandbox/random.js';
import { type PhaseResult, type RequestRecord, UNSETTLED } from './load.js';
import type { PriceTable } from './lib/sandbox.js';
import { type Percentiles, mean, percentiles } from './lib/stats.js';

export interface PhaseAnalysis {
  sent: number;
  created: number;
  settled: number;
  byStatus: Record<string, number>;
  /** Failures: refused or failed creates, subscription errors, FAILED requests. */
  errors: number;
  errorsByKind: Record<string, number>;
  /** Requests still unsettled when the phase's drain time ran out (saturation, not failure). */
  unsettled: number;
  /** Settled in a status other than the one the sandbox's prices predict (e.g. QUOTED where ORDERED was expected). */
  unexpected: Record<string, number>;
  requestsPerSecond: number;
  /** Every settled request, plus unsettled ones counted at the time waiting stopped (a lower bound). */
  latencyMs: Percentiles | null;
  latencyByOutcomeMs: Record<string, Percentiles | null>;
  /** The physical floor of ORDERED requests: fastest valid quote + the order, drawn from the sandbox's own latency model. */
  floorMs: Percentiles | null;
  /** ORDERED end-to-end percentile minus floor percentile. */
  overheadMs: Percentiles | null;
  regret: {
    meanPct: number | null;
    shareAtBest: number | null;
    maxPct: number | null;
    measured: number;
    /**
     * Against the best offer of the first tier holding a valid one (what tier-by-tier asking can
     * reach at best): the part of the regret the engine's own choices add beyond the tier policy.
     */
    vsTierPolicyMeanPct: number | null;
    shareAtTierPolicyBest: number | null;
  };
  /** Requests with more than one order in the sandbox ledger (must be zero: exactly once). */
  duplicateOrders: number;
  /** ORDERED requests with no ledger entry (must be zero). */
  orderedWithoutLedger: number;
}

/** Draws one call's latency from a seller's configured distribution, as the sandbox itself does. */
function draw(rng: Rng, spec: LatencySpec, scale: number): number {
  return logNormalMs(rng, spec.medianMs, spec.p99Ms) * scale;
}

export function analyzePhase(
  p: PhaseResult,
  d: { ledgerByRequest: Map<string, LedgerEntry[]>; table: PriceTable; specs: Map<string, SandboxSellerSpec>; latencyScale: number; rng: Rng },
): PhaseAnalysis {
  const recs = p.records;
  const byStatus: Record<string, number> = {};
  const errorsByKind: Record<string, number> = {};
  const unexpected: Record<string, number> = {};
  const latency: number[] = [];
  const byOutcome: Record<string, number[]> = {};
  const floors: number[] = [];
  const regrets: number[] = [];
  const tierRegrets: number[] = [];
  let atBest = 0;
  let atTierBest = 0;
  let duplicateOrders = 0;
  let orderedWithoutLedger = 0;

  let unsettled = 0;
  for (const r of recs) {
    if (r.error === UNSETTLED) {
      unsettled += 1;
      // Censored, not dropped: it took at least this long, so leaving it out would flatter the tail.
      latency.push(p.endedAt - r.sentAt);
      continue;
    }
    if (r.error !== null) errorsByKind[r.error] = (errorsByKind[r.error] ?? 0) + 1;
    if (r.status === null || r.settledAt === null) continue;
    byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    if (r.status !== r.item.expected) {
      const k = `${r.item.expected}->${r.status}`;
      unexpected[k] = (unexpected[k] ?? 0) + 1;
    }
    const ms = r.settledAt - r.sentAt;
    latency.push(ms);
    (byOutcome[r.status] ??= []).push(ms);

    const orders = r.id === null ? [] : (d.ledgerByRequest.get(r.id) ?? []);
    if (orders.length > 1) duplicateOrders += 1;
    if (r.status !== 'ORDERED') continue;
    const order = orders[0];
    if (!order) {
      orderedWithoutLedger += 1;
      continue;
    }
    const floor = floorFor(r, order, d);
    if (floor !== null) floors.push(floor);
    if (r.item.bestTotalCents !== null) {
      const pct = ((order.totalCents - r.item.bestTotalCents) / r.item.bestTotalCents) * 100;
      regrets.push(pct);
      if (order.totalCents <= r.item.bestTotalCents) atBest += 1;
    }
    const tierBest = tierPolicyBest(r, d.table);
    if (tierBest !== null) {
      tierRegrets.push(((order.totalCents - tierBest) / tierBest) * 100);
      if (order.totalCents <= tierBest) atTierBest += 1;
    }
  }

  const lat = percentiles(latency);
  const ordered = percentiles(byOutcome.ORDERED ?? []);
  const floor = percentiles(floors);
  const settled = latency.length - unsettled;
  const spanS = (p.endedAt - p.startedAt) / 1000;
  return {
    sent: recs.length,
    created: recs.filter((r) => r.id !== null).length,
    settled,
    byStatus,
    errors: Object.values(errorsByKind).reduce((a, b) => a + b, 0),
    errorsByKind,
    unsettled,
    unexpected,
    requestsPerSecond: spanS > 0 ? settled / spanS : 0,
    latencyMs: lat,
    latencyByOutcomeMs: Object.fromEntries(Object.entries(byOutcome).map(([k, v]) => [k, percentiles(v)])),
    floorMs: floor,
    overheadMs: ordered && floor ? { p50: ordered.p50 - floor.p50, p90: ordered.p90 - floor.p90, p99: ordered.p99 - floor.p99 } : null,
    regret: {
      meanPct: mean(regrets),
      shareAtBest: regrets.length > 0 ? atBest / regrets.length : null,
      maxPct: regrets.length > 0 ? Math.max(...regrets) : null,
      measured: regrets.length,
      vsTierPolicyMeanPct: mean(tierRegrets),
      shareAtTierPolicyBest: tierRegrets.length > 0 ? atTierBest / tierRegrets.length : null,
    },
    duplicateOrders,
    orderedWithoutLedger,
  };
}

/** The lowest valid total in the first tier (lowest number) that has any valid offer for the request. */
function tierPolicyBest(r: RequestRecord, table: PriceTable): number | null {
  const valid = (table.get(r.item.isbn) ?? []).filter((o) => r.item.conditions.includes(o.condition) && o.totalCents <= r.item.maxTotalCents);
  if (valid.length === 0) return null;
  const tier = Math.min(...valid.map((v) => v.tier));
  return Math.min(...valid.filter((v) => v.tier === tier).map((v) => v.totalCents));
}

/**
 * The physical floor of one ORDERED request: the calls that were needed were one quote from a
 * seller with a valid offer (the fastest of them answers first) and the order with the seller
 * that took it. Each is one draw from the sandbox's configured latency distribution for that
 * seller and endpoint (the same log-normal the sandbox draws from), times the latency scale.
 */
function floorFor(
  r: RequestRecord,
  order: LedgerEntry,
  d: { table: PriceTable; specs: Map<string, SandboxSellerSpec>; latencyScale: number; rng: Rng },
): number | null {
  const valid = (d.table.get(r.item.isbn) ?? []).filter((o) => r.item.conditions.includes(o.condition) && o.totalCents <= r.item.maxTotalCents);
  if (valid.length === 0) return null;
  let fastest = Number.POSITIVE_INFINITY;
  for (const sellerKey of new Set(valid.map((v) => v.sellerKey))) {
    const spec = d.specs.get(sellerKey);
    if (spec) fastest = Math.min(fastest, draw(d.rng, spec.knobs.latency, d.latencyScale));
  }
  const orderedFrom = d.specs.get(order.sellerKey);
  if (!orderedFrom || !Number.isFinite(fastest)) return null;
  return fastest + draw(d.rng, orderedFrom.knobs.orderLatency ?? orderedFrom.knobs.latency, d.latencyScale);
}

export interface Breakdown {
  sampled: number;
  /** Client send → the request's createdAt (HTTP, validation, insert). */
  createMs: Percentiles | null;
  /** createdAt → SEARCH_STARTED (waiting to be claimed by the engine). */
  queueMs: Percentiles | null;
  /** SEARCH_STARTED → ORDER_STARTED (the round, incl. improvement window and revalidation). */
  roundMs: Percentiles | null;
  /** ORDER_STARTED → ORDERED (payment authorisation, the order call, capture). */
  orderMs: Percentiles | null;
  /** ORDERED → the subscriber's receipt (publish and delivery). */
  deliverMs: Percentiles | null;
}

/** Where the time of ORDERED requests went, from each request's own event timeline (server clock = client clock here). */
export function breakdown(samples: Array<{ r: RequestRecord; createdAt: string; events: Array<{ type: string; at: string }> }>): Breakdown {
  const create: number[] = [];
  const queue: number[] = [];
  const roundMs: number[] = [];
  const order: number[] = [];
  const deliver: number[] = [];
  for (const { r, createdAt, events } of samples) {
    const at = (type: string) => {
      const e = events.find((x) => x.type === type);
      return e ? Date.parse(e.at) : null;
    };
    const created = Date.parse(createdAt);
    const searched = at('SEARCH_STARTED');
    const ordering = at('ORDER_STARTED');
    const ordered = at('ORDERED');
    const receivedWall = r.settledAt === null ? null : r.sentWall + (r.settledAt - r.sentAt);
    create.push(created - r.sentWall);
    if (searched !== null) queue.push(searched - created);
    if (searched !== null && ordering !== null) roundMs.push(ordering - searched);
    if (ordering !== null && ordered !== null) order.push(ordered - ordering);
    if (ordered !== null && receivedWall !== null) deliver.push(receivedWall - ordered);
  }
  return {
    sampled: samples.length,
    createMs: percentiles(create),
    queueMs: percentiles(queue),
    roundMs: percentiles(roundMs),
    orderMs: percentiles(order),
    deliverMs: percentiles(deliver),
  };
}
