import { asc, eq, sql } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { orderAttempts, type PaymentCallRow, sandboxPaymentCalls } from '../schema.js';

/**
 * Every sandbox payment call for a request's attempts, by the attempts' keys (`<requestId>:<n>`):
 * two index lookups. A LIKE on the key prefix would read the whole call log (a btree index serves
 * LIKE only under the C collation), and so may a join, on a database never analysed: the keys are
 * read first, as an array, and looked up in the call log's index.
 */
export async function paymentCallsForRequest(ex: Executor, requestId: string): Promise<PaymentCallRow[]> {
  const keys = ex.select({ key: orderAttempts.idempotencyKey }).from(orderAttempts).where(eq(orderAttempts.requestId, requestId));
  return ex
    .select()
    .from(sandboxPaymentCalls)
    .where(sql`${sandboxPaymentCalls.key} = any(array(${keys}))`)
    .orderBy(asc(sandboxPaymentCalls.id));
}
