import { asc } from 'drizzle-orm';
import type { Executor } from '../client.js';
import { isAnyOf } from './ids.js';
import { requestEvents, type EventRow } from '../schema.js';

/** Events of several requests at once (one query per DataLoader batch), oldest first. */
export async function eventsForRequests(ex: Executor, requestIds: readonly string[]): Promise<EventRow[]> {
  if (requestIds.length === 0) return [];
  return ex
    .select()
    .from(requestEvents)
    .where(isAnyOf(requestEvents.requestId, requestIds))
    .orderBy(asc(requestEvents.requestId), asc(requestEvents.revision));
}
