import { asc, like } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { type PaymentCallRow, sandboxPaymentCalls } from '../schema.js';

/** Every sandbox payment call for a request's attempts (their keys are `<requestId>:<n>`). */
export async function paymentCallsForRequest(ex: Executor, requestId: string): Promise<PaymentCallRow[]> {
  return ex
    .select()
    .from(sandboxPaymentCalls)
    .where(like(sandboxPaymentCalls.key, `${requestId}:%`))
    .orderBy(asc(sandboxPaymentCalls.id));
}
