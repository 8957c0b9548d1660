import { describe, expect, it } from 'vitest';
import type { EventRow } from '../db/schema.js';
import type { RequestSnapshot } from '../services/snapshot.js';
import type { Context } from './context.js';
import { requestResolvers } from './requests.js';

describe('PurchaseRequest.events', () => {
  it('shows the history up to the state it belongs to, not events committed after that state was read', async () => {
    const events = [1, 2, 3].map((revision) => ({ id: revision, requestId: 'r1', revision, type: 'STATUS_CHANGED' }) as unknown as EventRow);
    const ctx = { loaders: { events: { load: async () => events } } } as unknown as Context;
    const resolve = (requestResolvers.PurchaseRequest as { events: (r: RequestSnapshot, a: unknown, c: Context) => Promise<EventRow[]> }).events;
    const shown = await resolve({ id: 'r1', revision: 2 } as RequestSnapshot, {}, ctx);
    expect(shown.map((e) => e.revision)).toEqual([1, 2]);
  });
});
