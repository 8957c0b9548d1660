import { sql } from 'drizzle-orm';
import type { Executor } from '../client.js';

/** One lease to hand back, as `releaseRequest` takes it. */
export interface Release {
  id: string;
  owner: string;
  seenRevision: number;
  nextRunAt: Date | null;
  watchCount?: number;
  force?: boolean;
}

/**
 * Ends leases on many requests in one statement: each is released only if `owner` still holds
 * it, and its next due time is set — unless the request changed since `seenRevision` (the user
 * updated it: its own due time stands) and the release is not forced. The watch count likewise.
 * The batch form of `releaseRequest`.
 */
export async function releaseRequests(ex: Executor, batch: readonly Release[]): Promise<void> {
  if (batch.length === 0) return;
  const input = batch.map((r) => ({
    id: r.id,
    owner: r.owner,
    rev: r.seenRevision,
    next: r.nextRunAt ? r.nextRunAt.toISOString() : null,
    watch: r.watchCount ?? null,
    force: r.force ?? false,
  }));
  await ex.execute(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb)
        as x(id uuid, owner text, rev int, next timestamptz, watch int, force boolean)
    ),
    -- Locked in id order first, so batches touching the same requests never deadlock.
    locked as (
      select p.id from purchase_requests p where p.id = any(array(select id from input)) order by p.id for update of p
    )
    update purchase_requests p set
      lease_owner = null,
      lease_expires_at = null,
      next_run_at = case when x.force or p.revision = x.rev then x.next else p.next_run_at end,
      watch_count = case
        when x.watch is null then p.watch_count
        when x.force or p.revision = x.rev then x.watch
        else 0 end
    from input x
    where p.id = x.id and p.lease_owner = x.owner and p.id = any(array(select id from locked))`);
}
