import type { RequestStatus } from './types.js';

/** Statuses in which a request waits for (or is in) a round. */
export const SEARCHABLE: readonly RequestStatus[] = ['PENDING', 'SEARCHING', 'QUOTED', 'OUT_OF_STOCK'];

/** Statuses that keep watching for offers after a round: rechecked on a schedule and on changes. */
export const WATCHING: readonly RequestStatus[] = ['QUOTED', 'OUT_OF_STOCK'];

/** The outcomes webhooks report (API.md "Webhooks"), and an endpoint's default event filter. */
export const WEBHOOK_STATUSES: readonly RequestStatus[] = ['ORDERED', 'QUOTED', 'OUT_OF_STOCK', 'EXPIRED', 'FAILED', 'CANCELED'];
