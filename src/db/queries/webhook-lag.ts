import { sql } from 'drizzle-orm';
import { type Executor, rowsOf } from '../client.js';

/**
 * The outbox lag, in seconds: how long the oldest delivery that any instance could claim now has
 * been due — pending, due, not leased, its endpoint enabled and not paused, no earlier revision of
 * its request pending before it (the claim's own conditions). 0 when there is none. A receiver
 * that fails or is paused shows in the delivery outcomes, not here: this measures the relay.
 */
export async function webhookOutboxLagSeconds(ex: Executor, now: Date): Promise<number> {
  const at = sql`${now.toISOString()}::timestamptz`;
  const result = await ex.execute(sql`
    select coalesce(extract(epoch from (${at} - min(o.next_attempt_at))), 0)::float8 as lag
    from webhook_outbox o
    join webhook_endpoints e on e.id = o.endpoint_id
    where o.state = 'pending' and o.next_attempt_at <= ${at}
      and (o.lease_expires_at is null or o.lease_expires_at < ${at})
      and e.enabled and (e.paused_until is null or e.paused_until <= ${at})
      and not exists (
        select 1 from webhook_outbox p
        where p.endpoint_id = o.endpoint_id and p.request_id = o.request_id
          and p.revision < o.revision and p.state = 'pending'
      )`);
  return Math.max(0, Number(rowsOf<{ lag: unknown }>(result)[0]?.lag ?? 0));
}
