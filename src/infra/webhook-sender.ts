import { createHmac } from 'node:crypto';
import { traceHeaders } from './tracing.js';
import { Agent, type Dispatcher, request } from 'undici';
import { guardedConnect, isBlockedLiteral } from './ssrf.js';

/** What one delivery try came to: a status (any, the caller decides), or no answer at all. */
export type SendResult = { kind: 'status'; status: number } | { kind: 'error'; code: string; message: string };

export interface SendOptions {
  url: string;
  secret: string;
  webhookId: string;
  body: string;
  /** The attempt's time: the `webhook-timestamp` header (unix seconds). */
  at: Date;
}

/** undici's ways of saying the receiver took too long: to connect, to answer, or between body chunks. */
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * The `webhook-signature` of a message per the Standard Webhooks specification: `v1,` and the
 * base64 HMAC-SHA256 of "<id>.<unix seconds>.<body>" keyed with the secret's base64 part after
 * `whsec_`. Node's own HMAC: the reference package's pure-JavaScript SHA-256 cost a tenth of a
 * delivery's CPU. Checked against the specification's test vector and the reference package's
 * verifier (webhook-sender.test.ts).
 */
export function signWebhook(secret: string, webhookId: string, at: Date, body: string): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
  return `v1,${createHmac('sha256', key).update(`${webhookId}.${Math.floor(at.getTime() / 1000)}.${body}`).digest('base64')}`;
}

/**
 * Sends webhooks per the Standard Webhooks specification (API.md "Webhooks"): signed with the
 * endpoint's `whsec_` secret (signWebhook), 10 s for a whole answer, redirects never followed
 * (a 3xx is a failed try). Under `public`, every connection's addresses are checked and pinned
 * (src/infra/ssrf.ts).
 */
export class WebhookSender {
  readonly #agent: Agent;
  readonly #urls: 'any' | 'public';
  readonly #timeoutMs: number;

  constructor(o: { urls: 'any' | 'public'; timeoutMs?: number; connectionsPerOrigin?: number; connect?: Agent.Options['connect'] }) {
    this.#urls = o.urls;
    this.#timeoutMs = o.timeoutMs ?? 10_000;
    this.#agent = new Agent({
      // Per receiving host: many users' endpoints may share one, each capped on its own (per endpoint).
      connections: o.connectionsPerOrigin ?? 64,
      connect: o.connect ?? (o.urls === 'public' ? guardedConnect() : undefined),
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
  }

  async send(o: SendOptions, signal?: AbortSignal): Promise<SendResult> {
    const url = new URL(o.url);
    // net.connect does not look literal IPs up, so the lookup guard never sees them: check here.
    if (this.#urls === 'public' && (url.protocol !== 'https:' || isBlockedLiteral(url.hostname))) {
      return { kind: 'error', code: 'EADDRBLOCKED', message: 'the endpoint is not a public https URL' };
    }
    const signature = signWebhook(o.secret, o.webhookId, o.at, o.body);
    const started = performance.now();
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.#agent as Dispatcher,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'book-broker-webhooks/1',
          'webhook-id': o.webhookId,
          'webhook-timestamp': String(Math.floor(o.at.getTime() / 1000)),
          'webhook-signature': signature,
          // The delivery's trace, when traces are exported (not part of what is signed).
          ...traceHeaders(),
        },
        body: o.body,
        // The status must come within the timeout (the agent's headersTimeout): no controller or
        // timer of this try's own until then.
        signal,
      });
      // The answer's body is not read beyond what keeps the connection reusable, nor past the
      // timeout: a receiver dribbling it out cannot hold a slot. Its status already counts.
      const rest = setTimeout(() => res.body.destroy(), Math.max(0, this.#timeoutMs - (performance.now() - started)));
      await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
      clearTimeout(rest);
      return { kind: 'status', status: res.statusCode };
    } catch (e) {
      const err = e as { code?: unknown; cause?: { code?: unknown; message?: string }; message?: string; name?: string };
      // A DOMException's `code` is a legacy number, never a name: skipped.
      const named = [err.cause?.code, err.code].find((c): c is string => typeof c === 'string');
      const code = named !== undefined && TIMEOUTS.has(named) ? 'ETIMEDOUT' : (named ?? 'EUNKNOWN');
      return { kind: 'error', code, message: err.cause?.message ?? err.message ?? String(e) };
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
