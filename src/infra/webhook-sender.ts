import { traceHeaders } from './tracing.js';
import { Webhook } from 'standardwebhooks';
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

/**
 * Sends webhooks per the Standard Webhooks specification (API.md "Webhooks"): signed with the
 * endpoint's `whsec_` secret by the reference `standardwebhooks` package, 10 s for a whole
 * answer, redirects never followed (a 3xx is a failed try). Under `public`, every connection's
 * addresses are checked and pinned (src/infra/ssrf.ts).
 */
export class WebhookSender {
  readonly #agent: Agent;
  readonly #urls: 'any' | 'public';
  readonly #timeoutMs: number;

  constructor(o: { urls: 'any' | 'public'; timeoutMs?: number; connect?: Agent.Options['connect'] }) {
    this.#urls = o.urls;
    this.#timeoutMs = o.timeoutMs ?? 10_000;
    this.#agent = new Agent({
      connections: 16,
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
    const signature = new Webhook(o.secret).sign(o.webhookId, o.at, o.body);
    const timeout = AbortSignal.timeout(this.#timeoutMs);
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
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      // The answer's body is not read beyond what keeps the connection reusable.
      await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
      return { kind: 'status', status: res.statusCode };
    } catch (e) {
      const err = e as { code?: string; cause?: { code?: string; message?: string }; message?: string; name?: string };
      const code = err.cause?.code ?? err.code ?? (err.name === 'TimeoutError' ? 'ETIMEDOUT' : 'EUNKNOWN');
      return { kind: 'error', code, message: err.cause?.message ?? err.message ?? String(e) };
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
