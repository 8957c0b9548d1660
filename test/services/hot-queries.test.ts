import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../src/db/client.js';
import { attemptsForRequests, attemptsNeedingAttention, claimDueAttempts, findAttemptByKey, nextAttemptNo, orphanedOrdering } from '../../src/db/queries/attempts.js';
import { eventsForRequests } from '../../src/db/queries/events.js';
import { advanceAttempts } from '../../src/db/queries/attempt-steps.js';
import { findIdempotencyKey } from '../../src/db/queries/idempotency.js';
import { releaseRequests } from '../../src/db/queries/releases.js';
import { applyTransitions, type Transition } from '../../src/db/queries/transitions.js';
import { claimDeliveries, releaseLapsed } from '../../src/db/queries/webhooks.js';
import { paymentCallsForRequest } from '../../src/db/queries/payments.js';
import { findRequestById, updateRequestAtRevision } from '../../src/db/queries/requests.js';
import {
  claimDueRequests,
  countPending,
  extendLeases,
  findExpiredActive,
  nextDueAt,
  oldestDue,
  pendingSpan,
  queuePositions,
  releaseRequest,
  wakeWatchers,
} from '../../src/db/queries/work.js';
import * as schema from '../../src/db/schema.js';
import { SandboxPaymentGateway } from '../../src/payments/sandbox-gateway.js';
import { freshDatabase } from '../support/server.js';

/**
 * The queries the engine runs on every tick and for every request, EXPLAINed against a database
 * the size of a busy day (tens of thousands of finished requests, a few thousand watching, a
 * backlog, requests in flight under lease): each must be answered from the index meant for it,
 * with no sequential scan of a large table and no walk over rows it does not return — before the
 * tables are analysed and after. The plans and the rows read (EXPLAIN ANALYZE, counts only, inside
 * a rolled-back transaction) are deterministic for the seeded data: a query that starts counting
 * or walking the table fails here rather than in a benchmark.
 */

const LARGE = new Set([
  'purchase_requests',
  'order_attempts',
  'request_events',
  'idempotency_keys',
  'sandbox_payments',
  'sandbox_payment_calls',
  'webhook_endpoints',
  'webhook_outbox',
  'webhook_deliveries',
]);
const NOW = new Date('2030-01-01T12:00:00.000Z');
const OWNER = 'engine-a';
const SELLER = '00000000-0000-4000-8000-ffffffffffff';
/** Every seeded request is at this revision, with one event per revision. */
const REVISION = 4;

/** Seeded populations, by seq range (one request per seq). */
const FINISHED = 30_000; // ORDERED (with a succeeded attempt, payments, idempotency key), EXPIRED, CANCELED, FAILED
const WATCHING = 4_000; // QUOTED / OUT_OF_STOCK over 40 books, due in an hour
const IN_FLIGHT = 300; // SEARCHING or QUOTED (a recheck), leased by OWNER, due time in the past (claimed a while ago)
const ORDERING = 50; // ORDERING, leased, with a live attempt
const LAPSED = 20; // SEARCHING, lease lapsed (a crashed instance's)
const PENDING = 2_000; // the backlog, due, FIFO
/** Webhooks: one endpoint for each of the requests' 500 users, 5,000 of other users; a delivered history, a few due. */
const OTHER_ENDPOINTS = 5_000;
const DELIVERED = 20_000; // delivered events of finished requests (webhook_deliveries)
const DUE_WEBHOOKS = 40; // pending and due, one per endpoint (watching requests)
const LATER_WEBHOOKS = 20; // pending, due later
/** A failing receiver's backlog: user-1's endpoint has 60 finished requests × 300 revisions pending, retried in an hour. */
const BACKLOG_REQUESTS = 60;
const BACKLOG_REVISIONS = 300;

const WATCH_FROM = FINISHED + 1;
const FLIGHT_FROM = WATCH_FROM + WATCHING;
const ORDERING_FROM = FLIGHT_FROM + IN_FLIGHT;
const LAPSED_FROM = ORDERING_FROM + ORDERING;
const PENDING_FROM = LAPSED_FROM + LAPSED;
const TOTAL = PENDING_FROM + PENDING - 1;

/** Deterministic request ids: seq n is the uuid ending in n. */
const idOf = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const uuidSql = `('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid`;
/** Attempt ids likewise: the attempt of request n ends in n. */
const attemptOf = (n: number) => `00000000-0000-4000-9000-${String(n).padStart(12, '0')}`;
const attemptUuidSql = `('00000000-0000-4000-9000-' || lpad(i::text, 12, '0'))::uuid`;

interface Statement {
  sql: string;
  params: unknown[];
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

const SCANS = new Set(['Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Heap Scan']);

/** Rows the scans of a plan read: those they returned and those their filters threw away. */
function rowsRead(plan: PlanNode): number {
  return nodes(plan)
    .filter((n) => SCANS.has(n['Node Type']))
    .reduce(
      (sum, n) => sum + ((n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0)) * (n['Actual Loops'] ?? 1),
      0,
    );
}

describe('hot queries on a large database', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let client: postgres.Sql;
  let captured: Statement[] = [];
  let db: Db;

  beforeAll(async () => {
    database = await freshDatabase();
    const url = database.env.DATABASE_URL;
    if (!url) throw new Error('the hot-query suite needs Postgres (TEST_DATABASE_URL)');
    const migrated = await openDatabase({ url, dataDir: '' });
    await migrated.migrate();
    await migrated.close();
    client = postgres(url, { max: 2, onnotice: () => {} });
    db = drizzle(client, { schema, logger: { logQuery: (sql, params) => void captured.push({ sql, params }) } }) as unknown as Db;
    await seed(client);
  }, 120_000);

  afterAll(async () => {
    await client?.end({ timeout: 5 });
    await database?.drop();
  });

  /** The statements `run` sends, captured while it runs in a transaction that is rolled back. */
  async function statementsOf(run: (db: Db) => Promise<unknown>): Promise<Statement[]> {
    captured = [];
    await db
      .transaction(async (tx) => {
        await run(tx as unknown as Db);
        throw new RolledBack();
      })
      .catch((e: unknown) => {
        if (!(e instanceof RolledBack)) throw e;
      });
    expect(captured.length).toBeGreaterThan(0);
    return captured;
  }

  /** EXPLAIN ANALYZE (counts, no timing) of one statement, in a transaction that is rolled back. */
  async function explain(s: Statement): Promise<PlanNode> {
    let plan: PlanNode | undefined;
    await client
      .begin(async (tx) => {
        const [row] = await tx.unsafe(`explain (analyze, timing off, costs off, summary off, format json) ${s.sql}`, s.params as never[]);
        plan = (row!['QUERY PLAN'] as Array<{ Plan: PlanNode }>)[0]!.Plan;
        throw new RolledBack();
      })
      .catch((e: unknown) => {
        if (!(e instanceof RolledBack)) throw e;
      });
    return plan!;
  }

  interface Case {
    name: string;
    run: (db: Db) => Promise<unknown>;
    /** Indexes the plans must use (each at least once across the statements). */
    uses: string[];
    /** Most rows all the statements may read together. */
    maxRows: number;
  }

  const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => idOf(from + i));

  const cases: Case[] = [
    // Every engine tick.
    { name: 'findExpiredActive', run: (db) => findExpiredActive(db, NOW, 200), uses: ['purchase_requests_active_expiry_idx'], maxRows: 5 },
    {
      name: 'claimDueRequests (past 300 requests in flight and 2,000 waiting)',
      run: (db) => claimDueRequests(db, { owner: 'engine-b', now: NOW, leaseUntil: new Date(NOW.getTime() + 15_000), limit: 100 }),
      uses: ['purchase_requests_unleased_due_idx', 'purchase_requests_lease_expiry_idx', 'purchase_requests_pkey'],
      // 100 due + 20 lapsed + the update's 100 by id; the 300 leased rows are never read.
      maxRows: 100 + LAPSED + 100 + 5,
    },
    {
      name: 'nextDueAt',
      run: (db) => nextDueAt(db, NOW),
      uses: ['purchase_requests_unleased_due_idx', 'purchase_requests_lease_expiry_idx', 'purchase_requests_active_expiry_idx'],
      maxRows: LAPSED + 5,
    },
    // Engine, per request.
    { name: 'findRequestById', run: (db) => findRequestById(db, idOf(FLIGHT_FROM)), uses: ['purchase_requests_pkey'], maxRows: 1 },
    {
      name: 'updateRequestAtRevision',
      run: (db) => updateRequestAtRevision(db, idOf(FLIGHT_FROM), REVISION, { updatedAt: NOW, status: 'QUOTED' }),
      uses: ['purchase_requests_pkey'],
      maxRows: 1,
    },
    {
      name: 'releaseRequest',
      run: (db) => releaseRequest(db, { id: idOf(FLIGHT_FROM), owner: OWNER, seenRevision: REVISION, nextRunAt: new Date(NOW.getTime() + 60_000) }),
      uses: ['purchase_requests_pkey'],
      maxRows: 1,
    },
    // Locked in id order, then written: each row twice.
    { name: 'extendLeases', run: (db) => extendLeases(db, OWNER, ids(FLIGHT_FROM, 50), NOW), uses: ['purchase_requests_pkey'], maxRows: 50 * 2 },
    {
      name: 'wakeWatchers',
      run: (db) => wakeWatchers(db, [{ bookKey: 'book-7', at: NOW }]),
      uses: ['purchase_requests_watching_idx'],
      // The book's 100 watchers not yet due, and none of those already woken and in a recheck.
      maxRows: WATCHING / 40,
    },
    { name: 'eventsForRequests', run: (db) => eventsForRequests(db, ids(FLIGHT_FROM, 10)), uses: ['request_events_request_revision_idx'], maxRows: REVISION * 10 },
    { name: 'attemptsForRequests', run: (db) => attemptsForRequests(db, ids(1, 10)), uses: ['order_attempts_request_no_idx'], maxRows: 10 },
    { name: 'nextAttemptNo', run: (db) => nextAttemptNo(db, idOf(ORDERING_FROM)), uses: ['order_attempts_request_no_idx'], maxRows: 2 },
    { name: 'findAttemptByKey', run: (db) => findAttemptByKey(db, `${idOf(1)}:1`), uses: ['order_attempts_key_idx'], maxRows: 1 },
    // Create: idempotency replay look-up and admission.
    { name: 'findIdempotencyKey', run: (db) => findIdempotencyKey(db, 'user-1', 'key-1'), uses: ['idempotency_keys_user_id_key_pk'], maxRows: 1 },
    { name: 'pendingSpan (admission)', run: (db) => pendingSpan(db), uses: ['purchase_requests_pending_idx'], maxRows: 2 },
    { name: 'countPending (admission at the limit, 500)', run: (db) => countPending(db, 500), uses: ['purchase_requests_pending_idx'], maxRows: 500 },
    // The sandbox payment provider, per order.
    {
      name: 'sandbox authorize, capture, lookup',
      run: async (db) => {
        const gateway = new SandboxPaymentGateway(db, { now: () => NOW });
        const key = `${idOf(ORDERING_FROM)}:1`;
        await gateway.authorize({ key, amountCents: 1500, currency: 'USD', token: 'tok_visa' });
        await gateway.capture({ key, amountCents: 1500 });
        return gateway.lookup(key);
      },
      uses: ['sandbox_payments_pkey'],
      maxRows: 10,
    },
    // Reconciliation, every couple of seconds.
    {
      name: 'claimDueAttempts (5 due)',
      run: (db) => claimDueAttempts(db, { owner: OWNER, now: NOW, leaseUntil: new Date(NOW.getTime() + 15_000), limit: 50 }),
      uses: ['order_attempts_due_idx', 'order_attempts_pkey'],
      // The probe's first entry, the 5 due, the update's 5 by id.
      maxRows: 1 + 5 + 5,
    },
    {
      name: 'orphanedOrdering',
      run: (db) => orphanedOrdering(db, NOW, new Date(NOW.getTime() - 15_000), 50),
      uses: ['purchase_requests_ordering_idx'],
      // The ORDERING requests (all leased here), and nothing of the 30,000 finished ones.
      maxRows: ORDERING + 5,
    },
    // Resolvers and metrics.
    {
      name: 'queuePositions (the 1,000th and 1,001st waiting)',
      run: (db) => queuePositions(db, ids(PENDING_FROM + 999, 2)),
      uses: ['purchase_requests_pkey', 'purchase_requests_pending_idx'],
      maxRows: 1_001 + 2 + 5,
    },
    { name: 'oldestDue', run: (db) => oldestDue(db, NOW), uses: ['purchase_requests_unleased_due_idx', 'purchase_requests_lease_expiry_idx'], maxRows: LAPSED + 5 },
    { name: 'attemptsNeedingAttention', run: (db) => attemptsNeedingAttention(db), uses: ['order_attempts_attention_idx'], maxRows: 10 },
    {
      name: 'claimDeliveries (webhooks: 40 due, past 20,000 delivered and a failing endpoint with 18,000 pending)',
      run: (db) => claimDeliveries(db, { owner: OWNER, now: NOW, leaseMs: 30_000, perEndpoint: 4, limit: 64, sending: {} }),
      uses: ['webhook_outbox_waiting_idx', 'webhook_outbox_leased_idx', 'webhook_outbox_order_idx', 'webhook_endpoints_pkey'],
      // Per endpoint with pending rows (60): one probe to find it, its row, its deliveries in
      // flight, its due rows; per due row, its earlier revisions, then locked, written and
      // returned with its endpoint. The delivered history is never read, nor the failing
      // endpoint's backlog (a due row's earlier revisions are its own request's rows).
      maxRows: (DUE_WEBHOOKS + LATER_WEBHOOKS) * 4 + DUE_WEBHOOKS * 5,
    },
    {
      name: 'releaseLapsed (webhooks: none lapsed, past 20,000 delivered and 18,000 waiting)',
      run: (db) => releaseLapsed(db, { now: NOW, limit: 1_000 }),
      uses: ['webhook_outbox_leased_idx'],
      // Only rows under lease are read (none here): never the waiting backlog, never the history.
      maxRows: 0,
    },
    { name: 'paymentCallsForRequest', run: (db) => paymentCallsForRequest(db, idOf(1)), uses: ['order_attempts_request_no_idx', 'sandbox_payment_calls_key_idx'], maxRows: 5 },
  ];

  // Ten guarded writes: eight rounds ending OUT_OF_STOCK, one order started, one completed.
  const tenTransitions: Transition[] = [
    ...ids(FLIGHT_FROM, 8).map((id) => ({
      id,
      expectedRevision: REVISION,
      changes: { status: 'OUT_OF_STOCK' as const, nextRunAt: new Date(NOW.getTime() + 60_000), leaseOwner: null, leaseExpiresAt: null, updatedAt: NOW },
      event: { type: 'ROUND_ENDED', message: 'none', data: null },
    })),
    {
      id: idOf(FLIGHT_FROM + 8),
      expectedRevision: REVISION,
      changes: { status: 'ORDERING' as const, nextRunAt: null, updatedAt: NOW },
      event: { type: 'ORDER_STARTED', message: null, data: null },
      attempt: {
        start: {
          id: attemptOf(FLIGHT_FROM + 8),
          sellerId: SELLER,
          offer: {} as never,
          leaseOwner: OWNER,
          leaseExpiresAt: new Date(NOW.getTime() + 15_000),
          nextCheckAt: new Date(NOW.getTime() + 15_000),
        },
      },
    },
    {
      id: idOf(ORDERING_FROM + 10),
      expectedRevision: REVISION,
      changes: { status: 'ORDERED' as const, updatedAt: NOW },
      event: { type: 'ORDERED', message: null, data: null },
      attempt: { complete: { id: attemptOf(ORDERING_FROM + 10), from: 'ordering' as const } },
    },
  ];

  // The engine's group-committed writes: every guarded write, attempt move and lease release of a
  // tick in one statement each. Their batch is a JSON record set the planner knows nothing of, so
  // the table side must be reached by id (`= any(array(…))`), never by a join it may hash.
  const batched: Case[] = [
    {
      name: 'applyTransitions (10 requests, one starting an attempt, one completing one)',
      run: (db) => applyTransitions(db, tenTransitions),
      uses: ['purchase_requests_pkey', 'order_attempts_pkey', 'webhook_endpoints_user_idx'],
      // Per request: its row locked, then written; the completed attempt locked, then written;
      // the started attempt's number (its request's attempts); the foreign keys checked. Per
      // outcome (9 here): its user's endpoints by user, and the outbox row's foreign keys.
      maxRows: 10 * 2 + 2 + 2 + 10 * 3 + 9 * 3,
    },
    {
      name: 'applyTransitions, its outbox rows leased to the writer (direct dispatch)',
      run: (db) => applyTransitions(db, tenTransitions, { owner: OWNER, now: NOW, until: new Date(NOW.getTime() + 30_000), perEndpoint: 4, room: 64, sending: {} }),
      uses: ['purchase_requests_pkey', 'order_attempts_pkey', 'webhook_endpoints_user_idx', 'webhook_outbox_order_idx', 'webhook_outbox_leased_idx'],
      // As above, and per outcome its endpoint's earlier pending rows for the request and its
      // leased rows (none here) — never the backlog of the first request's endpoint.
      maxRows: 10 * 2 + 2 + 2 + 10 * 3 + 9 * 3,
    },
    {
      name: 'releaseRequests (20)',
      run: (db) =>
        releaseRequests(db, ids(FLIGHT_FROM, 20).map((id) => ({ id, owner: OWNER, seenRevision: REVISION, nextRunAt: new Date(NOW.getTime() + 60_000) }))),
      uses: ['purchase_requests_pkey'],
      maxRows: 20 * 2,
    },
    {
      name: 'advanceAttempts (10)',
      run: (db) =>
        advanceAttempts(
          db,
          Array.from({ length: 10 }, (_, i) => ({
            id: attemptOf(ORDERING_FROM + 10 + i),
            from: 'ordering' as const,
            changes: { state: 'unknown' as const, lastError: 'timeout', leaseOwner: null, leaseExpiresAt: null, nextCheckAt: NOW, updatedAt: NOW },
          })),
        ),
      uses: ['order_attempts_pkey'],
      maxRows: 10 * 2,
    },
  ];

  async function check({ run, uses, maxRows }: Case): Promise<void> {
    const statements = await statementsOf(run);
    const plans = await Promise.all(statements.map((s) => explain(s)));
    const all = plans.flatMap(nodes);
    const seqScans = all.filter((n) => n['Node Type'] === 'Seq Scan' && LARGE.has(n['Relation Name'] ?? '')).map((n) => n['Relation Name']);
    expect(seqScans, 'sequential scans of large tables').toEqual([]);
    const used = new Set(all.map((n) => n['Index Name']).filter(Boolean));
    for (const index of uses) expect([...used], `plans use ${index}`).toContain(index);
    expect(plans.reduce((n, p) => n + rowsRead(p), 0), 'rows read').toBeLessThanOrEqual(maxRows);
  }

  // A database never analysed is what a fresh deployment runs on until autovacuum's first
  // ANALYZE — and all it ever runs on where autovacuum is off: plans must not depend on statistics.
  describe('with no statistics yet', () => {
    it.each(cases)('$name: uses its index, scans no large table, reads few rows', check);
    it.each(batched)('group commit, $name: reaches rows by id, scans no large table', check);
  });

  describe('after ANALYZE', () => {
    beforeAll(async () => {
      await client.unsafe('analyze');
    });
    it.each(cases)('$name: uses its index, scans no large table, reads few rows', check);
    it.each(batched)('group commit, $name: reaches rows by id, scans no large table', check);
  });

  it('claims exactly the due work: free first by due time, then lapsed leases, never a live lease', async () => {
    const rows = await claimInRolledBackTx(3_000);
    const seqs = rows.map((r) => r.seq).sort((a, b) => a - b);
    expect(rows).toHaveLength(PENDING + LAPSED);
    expect(seqs[0]).toBe(LAPSED_FROM);
    expect(seqs.at(-1)).toBe(TOTAL);
    expect(rows.every((r) => r.leaseOwner === 'engine-b')).toBe(true);
    const limited = await claimInRolledBackTx(5);
    // The oldest due first, whichever index it came from (lapsed leases were due earliest).
    expect(limited.map((r) => r.seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4].map((i) => LAPSED_FROM + i));
  });

  async function claimInRolledBackTx(limit: number): Promise<schema.RequestRow[]> {
    let rows: schema.RequestRow[] = [];
    await db
      .transaction(async (tx) => {
        rows = await claimDueRequests(tx as unknown as Db, { owner: 'engine-b', now: NOW, leaseUntil: new Date(NOW.getTime() + 15_000), limit });
        throw new RolledBack();
      })
      .catch((e: unknown) => {
        if (!(e instanceof RolledBack)) throw e;
      });
    return rows;
  }

  it('answers nextDueAt, oldestDue, queue positions and the backlog as a scan of the table would', async () => {
    // Of the work nobody holds, the lapsed leases were due earliest.
    const lapsedDue = new Date(NOW.getTime() - 90_000);
    expect(await nextDueAt(db, NOW)).toEqual(lapsedDue);
    expect(await oldestDue(db, NOW)).toEqual(lapsedDue);
    const positions = await queuePositions(db, [idOf(PENDING_FROM), idOf(PENDING_FROM + 1_234), idOf(TOTAL), idOf(1)]);
    expect(Object.fromEntries(positions)).toEqual({ [idOf(PENDING_FROM)]: 0, [idOf(PENDING_FROM + 1_234)]: 1_234, [idOf(TOTAL)]: PENDING - 1 });
    expect(await pendingSpan(db)).toBe(PENDING);
    expect(await countPending(db, 10_000)).toBe(PENDING);
    expect(await countPending(db, 100)).toBe(100);
  });

  // The outbox holds only what is still to send, so it drains to nothing whenever receivers keep
  // up, and is vacuumed so. Statements planned then (a prepared statement keeps its generic plan
  // until the table's statistics next change) must still reach it by its indexes: a plan made for
  // an empty file reads the next burst by sequential scans, once per event. Last, as it empties it.
  describe('after the outbox drains and is vacuumed', () => {
    beforeAll(async () => {
      await client.unsafe('delete from webhook_outbox');
      await client.unsafe('vacuum webhook_outbox');
    });

    it('keeps its pages for the next events', async () => {
      const [row] = await client.unsafe<Array<{ bytes: number }>>(`select pg_relation_size('webhook_outbox')::int as bytes`);
      expect(row!.bytes).toBeGreaterThan(0);
    });

    const outbox = [...cases, ...batched].filter((c) => c.uses.some((index) => index.startsWith('webhook_outbox_')));
    it.each(outbox)('$name: still uses its index', check);
  });
});

class RolledBack extends Error {}

/**
 * The populations above, written with generate_series (not analysed). Due times increase with seq
 * so FIFO order is checkable; leased rows' due times are in the past, as after a claim.
 */
async function seed(sql: postgres.Sql): Promise<void> {
  // Statistics change only when this suite says: no autovacuum ANALYZE in between.
  for (const table of LARGE) await sql.unsafe(`alter table ${table} set (autovacuum_enabled = false)`);
  const now = NOW.toISOString();
  const seller = SELLER;
  await sql`insert into sellers (id, name, tier, enabled, base_url, headers, timeout_ms, max_concurrency, offer_ttl_seconds, quote, order_endpoint, created_at, updated_at)
    values (${seller}, 'seller', 1, true, 'http://127.0.0.1:1', '{}', 1000, 8, 60, '{}', '{}', ${now}, ${now})`;
  const status = `case
      when i < ${WATCH_FROM} then (array['ORDERED','ORDERED','EXPIRED','CANCELED','FAILED'])[1 + i % 5]
      when i < ${FLIGHT_FROM} then (array['QUOTED','OUT_OF_STOCK'])[1 + i % 2]
      when i < ${ORDERING_FROM} then (array['SEARCHING','QUOTED'])[1 + i % 2]
      when i < ${LAPSED_FROM} then 'ORDERING'
      when i < ${PENDING_FROM} then 'SEARCHING'
      else 'PENDING' end`;
  // Requests in flight were due earliest (claimed a while ago), then the lapsed ones, then the backlog.
  const nextRunAt = `case
      when i < ${WATCH_FROM} then null
      when i < ${FLIGHT_FROM} then $1::timestamptz + interval '1 hour' + (i - ${WATCH_FROM}) * interval '1 ms'
      when i < ${ORDERING_FROM} then $1::timestamptz - interval '100 seconds' + (i - ${FLIGHT_FROM}) * interval '1 ms'
      when i < ${LAPSED_FROM} then null
      when i < ${PENDING_FROM} then $1::timestamptz - interval '90 seconds' + (i - ${LAPSED_FROM}) * interval '1 ms'
      else $1::timestamptz - interval '80 seconds' + (i - ${PENDING_FROM}) * interval '1 ms' end`;
  const leased = `(i >= ${FLIGHT_FROM} and i < ${PENDING_FROM})`;
  const leaseExpiresAt = `case when i >= ${LAPSED_FROM} and i < ${PENDING_FROM} then $1::timestamptz - interval '1 minute' when ${leased} then $1::timestamptz + interval '15 seconds' end`;
  await sql.unsafe(
    `insert into purchase_requests (id, user_id, status, revision, isbn, book_key, conditions, max_total_cents, currency, expires_at,
       shipping_address, payment_token, next_run_at, lease_owner, lease_expires_at, created_at, updated_at)
     overriding system value
     select ${uuidSql}, 'user-' || (i % 500), ${status}, ${REVISION}, '9780141439518', 'book-' || (i % 40), '["new"]', 4500, 'USD',
       case when i < ${WATCH_FROM} then $1::timestamptz - interval '1 day' else $1::timestamptz + interval '1 day' + i * interval '1 second' end,
       '{}', 'tok_visa', ${nextRunAt}, case when ${leased} then '${OWNER}' end, ${leaseExpiresAt},
       $1::timestamptz - interval '2 days' + i * interval '1 second', $1::timestamptz
     from generate_series(1, ${TOTAL}) i`,
    [now],
  );
  await sql.unsafe(`select setval(pg_get_serial_sequence('purchase_requests', 'seq'), ${TOTAL})`);
  await sql.unsafe(
    `insert into idempotency_keys (user_id, key, request_hash, request_id, created_at)
     select 'user-' || (i % 500), 'key-' || i, 'hash', ${uuidSql}, $1::timestamptz from generate_series(1, ${TOTAL}) i`,
    [now],
  );
  await sql.unsafe(
    `insert into request_events (request_id, revision, at, type, status)
     select ${uuidSql}, r, $1::timestamptz, 'CREATED', 'PENDING' from generate_series(1, ${TOTAL}) i, generate_series(1, ${REVISION}) r`,
    [now],
  );
  // A finished attempt per ORDERED or FAILED request, a live one per ORDERING request (leased,
  // checked after its lease), five of those flagged for attention and due (not leased).
  const attempt = `(i < ${WATCH_FROM} and i % 5 in (0, 1, 4)) or (i >= ${ORDERING_FROM} and i < ${LAPSED_FROM})`;
  await sql.unsafe(
    `insert into order_attempts (id, request_id, attempt_no, seller_id, offer, idempotency_key, state, payment_state, next_check_at,
       lease_owner, lease_expires_at, needs_attention, created_at, updated_at)
     select ${attemptUuidSql}, ${uuidSql}, 1, '${seller}', '{}', ${uuidSql} || ':1',
       case when i >= ${ORDERING_FROM} then 'ordering' when i % 5 = 4 then 'failed' else 'succeeded' end,
       case when i >= ${ORDERING_FROM} then 'authorized' when i % 5 = 4 then 'voided' else 'captured' end,
       case when i >= ${ORDERING_FROM + 5} then $1::timestamptz + interval '15 seconds' when i >= ${ORDERING_FROM} then $1::timestamptz - interval '1 minute' end,
       case when i >= ${ORDERING_FROM + 5} then '${OWNER}' end,
       case when i >= ${ORDERING_FROM + 5} then $1::timestamptz + interval '15 seconds' end,
       i >= ${ORDERING_FROM} and i < ${ORDERING_FROM + 5},
       $1::timestamptz - interval '1 day', $1::timestamptz
     from generate_series(1, ${TOTAL}) i where ${attempt}`,
    [now],
  );
  await sql.unsafe(
    `insert into sandbox_payments (key, authorization_id, amount_cents, currency, state, created_at, updated_at)
     select idempotency_key, 'auth_' || attempt_no, 1500, 'USD', case when state = 'succeeded' then 'captured' else 'voided' end, $1::timestamptz, $1::timestamptz
     from order_attempts where state in ('succeeded', 'failed')`,
    [now],
  );
  await sql.unsafe(
    `insert into sandbox_payment_calls (key, operation, amount_cents, result, effective, at)
     select key, op, 1500, state, true, $1::timestamptz from sandbox_payments, unnest(array['authorize', 'capture']) op`,
    [now],
  );
  const endpointOf = (user: string) => `('00000000-0000-4000-a000-' || lpad((${user})::text, 12, '0'))::uuid`;
  await sql.unsafe(
    `insert into webhook_endpoints (id, user_id, url, events, secret, enabled, created_at, updated_at)
     select ${endpointOf('i')}, 'user-' || i, 'https://hooks.example.com/' || i, '["ORDERED","QUOTED","OUT_OF_STOCK","EXPIRED","FAILED","CANCELED"]'::jsonb,
       'whsec_x', true, $1::timestamptz, $1::timestamptz from generate_series(0, 499) i
     union all
     select ('00000000-0000-4000-b000-' || lpad(i::text, 12, '0'))::uuid, 'other-' || i, 'https://hooks.example.com/o' || i, '["ORDERED"]'::jsonb,
       'whsec_x', true, $1::timestamptz, $1::timestamptz from generate_series(1, ${OTHER_ENDPOINTS}) i`,
    [now],
  );
  await sql.unsafe(
    `insert into webhook_deliveries (id, webhook_id, endpoint_id, request_id, revision, attempts, created_at, delivered_at)
     select i, 'msg_' || i, ${endpointOf('i % 500')}, ${uuidSql}, ${REVISION}, 1, $1::timestamptz - interval '1 day', $1::timestamptz - interval '1 day'
     from generate_series(1, ${DELIVERED}) i`,
    [now],
  );
  await sql.unsafe(
    `insert into webhook_outbox (webhook_id, endpoint_id, request_id, revision, payload, state, attempts, next_attempt_at, created_at)
     select 'msg_' || i, ${endpointOf('i % 500')}, ${uuidSql}, ${REVISION}, '{}'::jsonb, 'pending', 0,
       case when i < ${WATCH_FROM + DUE_WEBHOOKS} then $1::timestamptz - interval '1 minute' else $1::timestamptz + interval '1 hour' end,
       $1::timestamptz - interval '1 hour'
     from generate_series(${WATCH_FROM}, ${WATCH_FROM + DUE_WEBHOOKS + LATER_WEBHOOKS - 1}) i
     union all
     select 'msg_b_' || k || '_' || r, ${endpointOf('1')}, ('00000000-0000-4000-8000-' || lpad((1 + 500 * k)::text, 12, '0'))::uuid, 100 + r, '{}'::jsonb,
       'pending', 3, $1::timestamptz + interval '1 hour', $1::timestamptz - interval '2 hours'
     from generate_series(0, ${BACKLOG_REQUESTS - 1}) k, generate_series(1, ${BACKLOG_REVISIONS}) r`,
    [now],
  );
}
