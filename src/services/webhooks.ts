import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../db/client.js';
import { deleteWebhookEndpoint, insertWebhookEndpoint, listWebhookEndpoints } from '../db/queries/webhooks.js';
import type { WebhookEndpointRow } from '../db/schema.js';
import type { Clock } from '../domain/clock.js';
import { type Outcome, ok, refused, userError, type UserError } from '../domain/errors.js';
import { WEBHOOK_STATUSES } from '../domain/statuses.js';
import type { RequestStatus, Viewer } from '../domain/types.js';
import { isPublicHost } from '../infra/ssrf.js';
import { isUuid } from './requests.js';

const MAX_URL = 2048;
const MAX_ENDPOINTS_PER_USER = 20;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export interface WebhookEndpointInputShape {
  url: string;
  events?: readonly RequestStatus[] | null;
}

/**
 * Users' own webhook endpoints (API.md "Webhooks"). Each belongs to the user who created it and
 * is seen and deleted by them alone; another user's endpoint is NOT_FOUND, as if it did not exist.
 */
export class WebhookService {
  constructor(private readonly d: { db: Db; clock: Clock; webhookUrls: 'any' | 'public' }) {}

  list(viewer: Viewer): Promise<WebhookEndpointRow[]> {
    return listWebhookEndpoints(this.d.db, viewer.id);
  }

  /** The new endpoint and its signing secret, which is shown this once. */
  async create(viewer: Viewer, input: WebhookEndpointInputShape): Promise<Outcome<{ endpoint: WebhookEndpointRow; secret: string }>> {
    const errors: UserError[] = [];
    const url = checkWebhookUrl(input.url, this.d.webhookUrls, errors);
    const events = checkEvents(input.events, errors);
    if (errors.length > 0) return refused(...errors);
    const existing = await listWebhookEndpoints(this.d.db, viewer.id);
    if (existing.length >= MAX_ENDPOINTS_PER_USER) {
      return refused(userError('INVALID_INPUT', `at most ${MAX_ENDPOINTS_PER_USER} webhook endpoints per user`, ['input']));
    }
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const endpoint = await insertWebhookEndpoint(this.d.db, { id: randomUUID(), userId: viewer.id, url, events, secret, createdAt: this.d.clock.now() });
    return ok({ endpoint, secret });
  }

  async delete(viewer: Viewer, id: string): Promise<Outcome<WebhookEndpointRow>> {
    const row = isUuid(id) ? await deleteWebhookEndpoint(this.d.db, viewer.id, id) : null;
    return row ? ok(row) : refused(userError('NOT_FOUND', 'no such webhook endpoint', ['id']));
  }
}

/**
 * An absolute http(s) URL without credentials; under `public`, https to a host that is not a
 * literal private address or a localhost name (names are checked again, resolved, at every
 * delivery: src/infra/ssrf.ts).
 */
export function checkWebhookUrl(raw: string, urls: 'any' | 'public', errors: UserError[]): string {
  const fail = (message: string) => {
    errors.push(userError('INVALID_URL', message, ['input', 'url']));
    return '';
  };
  if (raw.length > MAX_URL) return fail(`url must be at most ${MAX_URL} characters`);
  if (/\s/.test(raw) || CONTROL.test(raw)) return fail('url must not contain whitespace or control characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail('url must be an absolute https URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && urls === 'any')) {
    return fail(urls === 'any' ? 'url must use http or https' : 'url must use https');
  }
  if (url.username !== '' || url.password !== '') return fail('url must not contain credentials');
  if (url.hash !== '') return fail('url must not have a fragment');
  if (urls === 'public' && !isPublicHost(url.hostname)) return fail('url must point to a public host');
  return url.href;
}

function checkEvents(events: readonly RequestStatus[] | null | undefined, errors: UserError[]): RequestStatus[] {
  if (events === undefined || events === null) return [...WEBHOOK_STATUSES];
  const chosen = [...new Set(events)];
  const unknown = chosen.filter((s) => !WEBHOOK_STATUSES.includes(s));
  if (chosen.length === 0) errors.push(userError('INVALID_INPUT', 'events must name at least one status', ['input', 'events']));
  if (unknown.length > 0) {
    errors.push(userError('INVALID_INPUT', `no webhook is sent for ${unknown.join(', ')}; events may be ${WEBHOOK_STATUSES.join(', ')}`, ['input', 'events']));
  }
  return WEBHOOK_STATUSES.filter((s) => chosen.includes(s));
}
