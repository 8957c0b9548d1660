import { asc, inArray } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { requestEvents, type EventRow } from '../schema.js';

/** Events of several requests at once (one query per DataLoader batch), oldest first. */
export async function eventsForRequests(ex: Executor, requestIds: readonly string[]): Promise<EventRow[]> {
  if (requestIds.length === 0) return [];
  return ex
    .select()
    .from(requestEvents)
    .where(inArray(requestEvents.requestId, [...requestIds]))
    .orderBy(asc(requestEvents.requestId), asc(requestEvents.revision));
}
