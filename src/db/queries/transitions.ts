import { type Column, getTableColumns, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { rowsOf } from '../client.js';
import { rowMapper } from './rows.js';
import { purchaseRequests, type RequestRow } from '../schema.js';
import type { RequestChanges } from './requests.js';

/** One guarded write of a batch: the change to apply if the row is still at `expectedRevision`, and its event. */
export interface Transition {
  id: string;
  expectedRevision: number;
  changes: RequestChanges & { updatedAt: Date };
  event: { type: string; message: string | null; data: Record<string, unknown> | null };
}

/**
 * Columns a transition may set, by property, with the SQL type they are read as from the batch's
 * JSON. Each is written only when the transition names it (a `set_<column>` flag), so one
 * statement serves transitions that change different columns.
 */
const SETTABLE = {
  status: 'text',
  bestOffer: 'jsonb',
  orderDetails: 'jsonb',
  failureReason: 'text',
  nextRunAt: 'timestamptz',
  leaseOwner: 'text',
  leaseExpiresAt: 'timestamptz',
  watchCount: 'int',
  maxTotalCents: 'int',
  expiresAt: 'timestamptz',
  updatedAt: 'timestamptz',
} as const satisfies Partial<Record<keyof RequestRow, string>>;
type Settable = keyof typeof SETTABLE;

const COLUMNS = getTableColumns(purchaseRequests) as Record<keyof RequestRow, Column>;

/**
 * The guarded write for many requests in one statement (group commit): each transition applies
 * only if its row is still at the expected revision, bumping the revision by one, and its event
 * is appended with the revision it produced — all or nothing, as one statement is. Returns the
 * rows written, by id; a transition whose row had moved on is simply absent (the caller reloads
 * and decides again). At most one transition per request in a batch.
 */
export async function applyTransitions(ex: Executor, batch: readonly Transition[]): Promise<Map<string, RequestRow>> {
  if (batch.length === 0) return new Map();
  const keys = Object.keys(SETTABLE) as Settable[];
  const input = batch.map((t) => {
    const row: Record<string, unknown> = { id: t.id, rev: t.expectedRevision, type: t.event.type, message: t.event.message, data: t.event.data };
    for (const k of keys) {
      if (!(k in t.changes)) continue;
      const v = (t.changes as Record<string, unknown>)[k];
      row[`set_${k}`] = true;
      row[`v_${k}`] = v instanceof Date ? v.toISOString() : v === undefined ? null : v;
    }
    return row;
  });
  const recordType = sql.raw(
    [
      'id uuid',
      'rev int',
      'type text',
      'message text',
      'data jsonb',
      ...keys.flatMap((k) => [`"set_${k}" boolean`, `"v_${k}" ${SETTABLE[k]}`]),
    ].join(', '),
  );
  const assignments = sql.raw(
    keys
      .map((k) => {
        const col = COLUMNS[k].name;
        // A JSON null read into a jsonb field is the JSON value null: store SQL NULL instead.
        const value = SETTABLE[k] === 'jsonb' ? `nullif(x."v_${k}", 'null'::jsonb)` : `x."v_${k}"`;
        return `"${col}" = case when coalesce(x."set_${k}", false) then ${value} else p."${col}" end`;
      })
      .join(',\n      '),
  );
  const result = await ex.execute(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb) as x(${recordType})
    ),
    written as (
      update purchase_requests p set
      ${assignments},
      revision = p.revision + 1
      from input x
      where p.id = x.id and p.revision = x.rev
      returning p.*
    ),
    logged as (
      insert into request_events (request_id, revision, at, type, status, message, data)
      select w.id, w.revision, w.updated_at, x.type, w.status, x.message, nullif(x.data, 'null'::jsonb)
      from written w join input x on x.id = w.id
    )
    select * from written`);
  const rows = new Map<string, RequestRow>();
  for (const raw of rowsOf<Record<string, unknown>>(result)) {
    const row = toRequestRow(raw);
    rows.set(row.id, row);
  }
  return rows;
}

const toRequestRow = rowMapper<RequestRow>(purchaseRequests);
