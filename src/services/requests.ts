import { randomUUID } from 'node:crypto';
import type { Db, Executor } from '../db/client.js';
import { batchLoader } from '../db/batch-loader.js';
import { type AttemptWrite, type Transition, type Written, applyTransitions } from '../db/queries/transitions.js';
import type { Delivery, DirectLease } from '../db/queries/webhooks.js';
import { findIdempotentRequest } from '../db/queries/idempotency.js';
import { retryLockRaces } from '../db/errors.js';
import {
  type RequestChanges,
  findRequestsByIds,
  listRequestsForUser,
} from '../db/queries/requests.js';
import type { RequestRow } from '../db/schema.js';
import type { PubSub } from '../infra/pubsub.js';
import { activeTraceId } from '../infra/tracing.js';
import type { Clock } from '../domain/clock.js';
import { type RequestEventType, events } from '../domain/events.js';
import { type RequestSnapshot, toSnapshotMessage } from './snapshot.js';
import { CreateBatcher } from './create-batcher.js';
import { ConflictError, type Outcome, ok, refused, toError, userError } from '../domain/errors.js';
import { INITIAL_STATUS, canTransition, isCancelable, isUpdatable } from '../domain/lifecycle.js';
import type { RequestStatus, Viewer } from '../domain/types.js';
import { WEBHOOK_STATUSES } from '../domain/statuses.js';
import {
  type CreateInputShape,
  type UpdateInputShape,
  type ValidationLimits,
  requestHash,
  validateCreateInput,
  validateUpdateInput,
} from './validation.js';

/** Topic on which every committed change of one request is published, as a SnapshotMessage. */
export const requestTopic = (id: string) => `request:${id}`;

/** What one guarded write does to a request: an optional status change plus column changes. */
export interface Change {
  to?: RequestStatus;
  /** The event appended with this change: one of the catalogue's, built by its constructor in `events`. */
  type: RequestEventType;
  message?: string | null;
  changes?: RequestChanges;
  data?: Record<string, unknown> | null;
  /** An order attempt written with this change, all or nothing (started, or completed). */
  attempt?: AttemptWrite;
}

/** Thrown when code asks for a transition the lifecycle table forbids: a bug, never user input. */
export class IllegalTransitionError extends Error {
  constructor(readonly from: RequestStatus, readonly to: RequestStatus) {
    super(`illegal request transition ${from} → ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export interface RequestServiceDeps {
  db: Db;
  pubsub: PubSub;
  clock: Clock;
  limits: ValidationLimits;
  /** Called after every committed change (engine wake-ups, metrics). Must not throw. */
  onCommitted?: (row: RequestRow, change: Change) => void;
  /** Refuses new requests (throws OVERLOADED) when the backlog is full. */
  admission?: { check(): Promise<void> };
  /** This instance's webhook relay, when it runs one: it sends what a batch of changes reported. */
  webhooks?: WebhookDispatch;
  /** This instance's engine, when it runs one: it takes the requests created here as they are written. */
  work?: NewWork;
}

/** The lease a new request is written with: the instance that will work on it, and until when. */
export interface WorkLease {
  owner: string;
  until: Date;
}

/**
 * Claim-on-create: the engine of the instance that creates a request, while it runs and has
 * room, gets the request leased to it by the very statement that writes it, and starts on it at
 * once — no wake, no claim. Without a lease the request is written unleased and due now, for any
 * instance to claim. `taken` is called once for every lease given, with the row as written, or
 * null when nothing was written (the key was taken, the statement failed).
 */
export interface NewWork {
  lease(): WorkLease | null;
  taken(lease: WorkLease, row: RequestRow | null): void;
}

/**
 * Direct dispatch of webhook events (the relay, src/engine/webhook-relay.ts): before a batch of
 * status changes is written, the terms on which its statement may lease the outbox rows it
 * writes to this instance (null: none); after, what it leased (to send now) and how many rows it
 * left for a claim. `written` is called once for every `lease`, whether the statement committed or not.
 */
export interface WebhookDispatch {
  lease(wanted: number): DirectLease | null;
  written(lease: DirectLease | null, direct: Delivery[], queued: number): void;
}

const MAX_CAS_ATTEMPTS = 8;
/** Most guarded writes (or reads) sent in one statement. */
const WRITE_BATCH = 200;

/**
 * Requests as the user sees them: create, read, update, cancel, and the one guarded write
 * (`commit`) through which every change — the user's or the engine's — goes.
 */
export class RequestService {
  /** Creates of one tick share one INSERT statement (group commit). */
  private readonly creates: CreateBatcher;

  constructor(private readonly deps: RequestServiceDeps) {
    this.creates = new CreateBatcher(deps.db);
  }

  async create(viewer: Viewer, input: CreateInputShape): Promise<Outcome<RequestRow>> {
    const { db, clock } = this.deps;
    const now = clock.now();
    const valid = validateCreateInput(input, now, this.deps.limits);
    if (!valid.ok) return valid;
    const req = valid.value;
    const hash = requestHash(req);

    // A replay is found by the create itself (the key comes back taken), so a new request costs
    // no read first; only a refusal looks for one: a client retrying a request it already made
    // is never refused.
    try {
      await this.deps.admission?.check();
    } catch (e) {
      const replay = await this.replayIdempotent(db, viewer.id, req.idempotencyKey, hash);
      if (replay) return replay;
      throw e;
    }

    const created = events.created();
    const work = this.deps.work;
    const lease = work?.lease() ?? null;
    const result = await this.creates.create({
      request: {
        id: randomUUID(),
        userId: viewer.id,
        status: INITIAL_STATUS,
        revision: 1,
        isbn: req.book.isbn,
        title: req.book.title,
        author: req.book.author,
        bookKey: req.bookKey,
        conditions: req.conditions,
        maxTotalCents: req.maxTotalCents,
        currency: req.currency,
        expiresAt: req.expiresAt,
        shippingAddress: req.shippingAddress,
        paymentToken: req.paymentToken,
        nextRunAt: now,
        leaseOwner: lease?.owner ?? null,
        leaseExpiresAt: lease?.until ?? null,
        createdAt: now,
        updatedAt: now,
      },
      idempotencyKey: req.idempotencyKey,
      requestHash: hash,
      event: { ...created, data: traced(created.data ?? null) },
    }).catch((e: unknown) => {
      if (lease) work!.taken(lease, null);
      throw e;
    });
    if (lease) work!.taken(lease, result.kind === 'created' ? result.row : null);
    if (result.kind === 'created') {
      this.deps.onCommitted?.(result.row, created);
      return ok(result.row);
    }
    // The key was taken: by this user's earlier create (a replay, or a reuse with another input),
    // concurrently, or earlier in the same batch. Answer as that request's replay.
    const again = await this.replayIdempotent(db, viewer.id, req.idempotencyKey, hash);
    if (again) return again;
    throw new Error(`idempotency key ${req.idempotencyKey} of ${viewer.id} taken but not found`);
  }

  private async replayIdempotent(
    ex: Executor,
    userId: string,
    key: string,
    hash: string,
  ): Promise<Outcome<RequestRow> | null> {
    const existing = await findIdempotentRequest(ex, userId, key);
    if (!existing) return null;
    if (existing.requestHash !== hash) {
      return refused(
        userError('IDEMPOTENCY_KEY_REUSED', 'this idempotency key was already used with a different input', [
          'input',
          'idempotencyKey',
        ]),
      );
    }
    return ok(existing.request);
  }

  /** The request if the viewer may see it: its owner, or an admin. */
  async get(viewer: Viewer, id: string): Promise<RequestRow | null> {
    if (!isUuid(id)) return null;
    // Shared with every other read of this turn: each new subscription starts with one.
    const row = await this.reads.load(id);
    return row && canSee(viewer, row) ? row : null;
  }

  async list(
    viewer: Viewer,
    q: { statuses: readonly RequestStatus[] | null; beforeSeq: number | null; limit: number },
  ): Promise<RequestRow[]> {
    return listRequestsForUser(this.deps.db, { userId: viewer.id, ...q });
  }

  async update(viewer: Viewer, id: string, input: UpdateInputShape): Promise<Outcome<RequestRow>> {
    const valid = validateUpdateInput(input, this.deps.clock.now(), this.deps.limits);
    if (!valid.ok) return valid;
    const patch = valid.value;
    return this.userChange(viewer, id, (row) => {
      if (!isUpdatable(row.status)) {
        return refused(userError('NOT_UPDATABLE', `${withArticle(row.status)} request can no longer be changed`, ['id']));
      }
      return ok<Change>({
        ...events.updated({
          maxTotalCents: patch.maxTotalCents !== undefined ? { from: row.maxTotalCents, to: patch.maxTotalCents } : undefined,
          expiresAt: patch.expiresAt !== undefined ? { from: row.expiresAt, to: patch.expiresAt } : undefined,
        }),
        // Due at once so the engine re-evaluates against the new budget or deadline.
        changes: { ...patch, nextRunAt: this.deps.clock.now() },
      });
    });
  }

  async cancel(viewer: Viewer, id: string): Promise<Outcome<RequestRow>> {
    return this.userChange(viewer, id, (row) => {
      if (!isCancelable(row.status)) {
        return refused(userError('NOT_CANCELABLE', `${withArticle(row.status)} request can no longer be canceled`, ['id']));
      }
      return ok<Change>({ to: 'CANCELED', ...events.canceled(), changes: { nextRunAt: null } });
    });
  }

  /** A change on the user's behalf: only the owner may make it; refusals come back as userErrors. */
  private async userChange(
    viewer: Viewer,
    id: string,
    decide: (row: RequestRow) => Outcome<Change>,
  ): Promise<Outcome<RequestRow>> {
    const notFound = () => refused<RequestRow>(userError('NOT_FOUND', 'no such purchase request', ['id']));
    if (!isUuid(id)) return notFound();
    let refusal: Outcome<RequestRow> | null = null;
    const row = await this.commit(id, (current) => {
      if (current.userId !== viewer.id) {
        refusal = notFound();
        return null;
      }
      const decision = decide(current);
      if (!decision.ok) {
        refusal = decision;
        return null;
      }
      return decision.value;
    });
    if (refusal) return refusal;
    return row ? ok(row) : notFound();
  }

  /**
   * The guarded write every change goes through: load the row, let `decide` choose a change
   * (or null for none), check the transition against the lifecycle table, then write it with
   * a revision compare-and-swap and append its event in the same transaction. A concurrent
   * writer makes the swap miss: reload and decide again. Publishes after commit.
   * Returns the new row, or null when the request does not exist or `decide` declined.
   * `known`, a row the caller has just read, saves the first read (the swap still checks it).
   */
  async commit(id: string, decide: (row: RequestRow) => Change | null, known?: RequestRow): Promise<RequestRow | null> {
    return (await this.commitWritten(id, decide, known))?.row ?? null;
  }

  /** `commit` for a change that writes an order attempt too: the request's row and the attempt's. */
  commitWithAttempt(id: string, decide: (row: RequestRow) => Change | null, known?: RequestRow): Promise<Written | null> {
    return this.commitWritten(id, decide, known);
  }

  private async commitWritten(id: string, decide: (row: RequestRow) => Change | null, known?: RequestRow): Promise<Written | null> {
    const { clock } = this.deps;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      // A caller that just read the row saves the first read; a missed swap reads afresh.
      const current = attempt === 0 && known ? known : await this.reads.load(id);
      if (!current) return null;
      const change = decide(current);
      if (!change) return null;
      const to = change.to ?? current.status;
      if (to !== current.status && !canTransition(current.status, to)) {
        throw new IllegalTransitionError(current.status, to);
      }
      // Group-committed with whatever other requests change in the same tick.
      const written = await this.writes.load({
        id,
        expectedRevision: current.revision,
        changes: { ...change.changes, status: to, updatedAt: clock.now() },
        event: { type: change.type, message: change.message ?? null, data: traced(change.data ?? null) },
        attempt: change.attempt,
      });
      if (!written) {
        // The row did not move: what stopped the write was the attempt's own guard (another
        // driver moved it first). Deciding again would change nothing.
        if (change.attempt && (await this.reads.load(id))?.revision === current.revision) return null;
        continue;
      }
      await this.deps.pubsub.publish(requestTopic(id), toSnapshotMessage(written.row));
      this.deps.onCommitted?.(written.row, change);
      return written;
    }
    throw new ConflictError(`request ${id} kept changing; gave up after ${MAX_CAS_ATTEMPTS} attempts`);
  }

  /** The request as stored now; reads from many callers in one tick share one query. */
  read(id: string): Promise<RequestRow | null> {
    return this.reads.load(id);
  }

  /**
   * Group commit: the guarded writes of one tick, from every request, in one statement. Each
   * caller learns whether its own write won (its row) or lost its revision race (null). Two
   * writes to one request in a tick go in successive statements, in the order they came.
   */
  private readonly writes = batchLoader<Transition, Written | null>(
    async (batch) => {
      const results = new Map<Transition, Written | null | Error>();
      let rest = [...batch];
      while (rest.length > 0) {
        const ids = new Set<string>();
        const layer: Transition[] = [];
        const later: Transition[] = [];
        for (const t of rest) {
          if (ids.has(t.id)) later.push(t);
          else {
            ids.add(t.id);
            layer.push(t);
          }
        }
        // Room for one outbox row per change reported: rows past it (a user's further endpoints) wait for a claim.
        const wanted = layer.filter((t) => t.changes.status !== undefined && WEBHOOK_STATUSES.includes(t.changes.status)).length;
        const lease = wanted > 0 ? (this.deps.webhooks?.lease(wanted) ?? null) : null;
        try {
          const rows = await retryLockRaces(() => applyTransitions(this.deps.db, layer, lease));
          for (const t of layer) results.set(t, rows.get(t.id) ?? null);
        } catch (e) {
          // One write can refuse the whole statement (a second live attempt for a request):
          // write them one by one, so only its own caller hears of it. Their outbox rows are queued.
          if (layer.length === 1) results.set(layer[0]!, toError(e));
          else {
            for (const t of layer) {
              results.set(t, await retryLockRaces(() => applyTransitions(this.deps.db, [t])).then((rows) => rows.get(t.id) ?? null, toError));
            }
          }
        } finally {
          const done = layer.map((t) => results.get(t)).filter((w): w is Written => w !== null && w !== undefined && !(w instanceof Error));
          const direct = done.flatMap((w) => w.outbox.direct);
          const queued = done.reduce((n, w) => n + w.outbox.queued, 0);
          if (lease || direct.length > 0 || queued > 0) this.deps.webhooks?.written(lease, direct, queued);
        }
        rest = later;
      }
      return batch.map((t) => results.get(t) ?? null);
    },
    { maxBatchSize: WRITE_BATCH },
  );

  /** Reads of one tick (the engine reloads many requests at once), in one query. */
  private readonly reads = batchLoader<string, RequestRow | null>(
    async (ids) => {
      const rows = await findRequestsByIds(this.deps.db, ids);
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id) ?? null);
    },
    { maxBatchSize: WRITE_BATCH },
  );
}

/**
 * An event's data with the trace it was written in, when traces are exported: support goes from
 * a request's events to its trace. Unchanged when not tracing.
 */
function traced(data: Record<string, unknown> | null): Record<string, unknown> | null {
  const traceId = activeTraceId();
  return traceId ? { ...data, traceId } : data;
}

/** "a QUOTED", "an ORDERED": a status as a message reads it. */
function withArticle(status: RequestStatus): string {
  return `${/^[AEIOU]/.test(status) ? 'an' : 'a'} ${status}`;
}

export function canSee(viewer: Viewer, row: RequestSnapshot): boolean {
  return row.userId === viewer.id || viewer.role === 'admin';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Ids are UUIDs; anything else cannot name a request (and must not reach a uuid column). */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}
