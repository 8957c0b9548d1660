import { type Column, getTableColumns, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { rowsOf } from '../client.js';
import { putChanges, rowMapper } from './rows.js';
import { orderAttempts, type AttemptRow } from '../schema.js';
import type { AttemptState } from '../../domain/types.js';
import type { AttemptChanges } from './attempts.js';

/** One attempt's move: applied only if the attempt is still in `from`. */
export interface AttemptStep {
  id: string;
  from: AttemptState;
  changes: AttemptChanges & { updatedAt: Date };
}

const COLUMNS = getTableColumns(orderAttempts) as Record<keyof AttemptRow, Column>;

/**
 * Many attempts' moves in one statement — the batch form of `advanceAttempt`: each applies only
 * if its attempt is still in the state it was seen in. Returns the rows written, by id; an attempt
 * another driver had moved first is absent. At most one step per attempt in a batch.
 */
export async function advanceAttempts(ex: Executor, batch: readonly AttemptStep[]): Promise<Map<string, AttemptRow>> {
  if (batch.length === 0) return new Map();
  // The columns this batch sets, each with its SQL type; a step sets only those it names.
  const named = [...new Set(batch.flatMap((s) => Object.keys(s.changes)))] as (keyof AttemptRow)[];
  const input = batch.map((s) => {
    const row: Record<string, unknown> = { id: s.id, from_state: s.from };
    putChanges(row, s.changes, named);
    return row;
  });
  const recordType = sql.raw(
    ['id uuid', 'from_state text', ...named.flatMap((k) => [`"set_${k}" boolean`, `"v_${k}" ${COLUMNS[k].getSQLType()}`])].join(', '),
  );
  const assignments = sql.raw(
    named
      .map((k) => {
        const col = COLUMNS[k].name;
        const value = COLUMNS[k].getSQLType() === 'jsonb' ? `nullif(x."v_${k}", 'null'::jsonb)` : `x."v_${k}"`;
        return `"${col}" = case when coalesce(x."set_${k}", false) then ${value} else a."${col}" end`;
      })
      .join(', '),
  );
  const result = await ex.execute(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb) as x(${recordType})
    ),
    -- Locked in id order first, so batches touching the same attempts never deadlock.
    locked as (
      select a.id from order_attempts a where a.id = any(array(select id from input)) order by a.id for update of a
    )
    update order_attempts a set ${assignments}
    from input x
    where a.id = x.id and a.state = x.from_state and a.id = any(array(select id from locked))
    returning a.*`);
  const rows = new Map<string, AttemptRow>();
  for (const raw of rowsOf<Record<string, unknown>>(result)) {
    const row = toAttemptRow(raw);
    rows.set(row.id, row);
  }
  return rows;
}

const toAttemptRow = rowMapper<AttemptRow>(orderAttempts);
