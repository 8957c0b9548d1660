import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../db/client.js';
import { insertDeadLetter } from '../db/queries/dead-letters.js';
import type { SellerRow } from '../db/schema.js';
import type { Clock } from '../domain/clock.js';
import { toError } from '../domain/errors.js';
import { verifySignature } from './signature.js';

/** A partner's asynchronous result (API.md "Asynchronous partners"). */
export type CallbackMessage =
  | { type: 'quote'; quoteRef: string; body: unknown }
  | { type: 'order'; idempotencyKey: string; status: number; body: unknown };

export interface CallbackHandlers {
  quote(seller: SellerRow, quoteRef: string, body: unknown): Promise<'applied' | 'ignored'>;
  order(seller: SellerRow, idempotencyKey: string, status: number, body: unknown): Promise<'applied' | 'ignored'>;
}

export interface CallbackReply {
  status: number;
  body: Record<string, unknown>;
}

/**
 * `POST /partners/{sellerId}/callbacks`: verifies the seller's HMAC signature and timestamp
 * window, then hands the result to the engine. Duplicates and late arrivals are answered 200
 * and change nothing they should not (the handlers are idempotent). A result that cannot be
 * processed is kept as a dead letter for an operator to re-drive, and the partner is told it was
 * accepted, so it does not need to resend.
 */
export class CallbackReceiver {
  constructor(
    private readonly d: {
      db: Db;
      clock: Clock;
      log: Logger;
      findSeller: (id: string) => Promise<SellerRow | null>;
      handlers: () => CallbackHandlers | null;
    },
  ) {}

  async receive(sellerId: string, signature: string | undefined, rawBody: string): Promise<CallbackReply> {
    const seller = await this.d.findSeller(sellerId);
    if (!seller) return { status: 404, body: { error: 'unknown seller' } };
    if (!seller.callbackSecret) return { status: 401, body: { error: 'this seller has no callback secret configured' } };
    const verdict = verifySignature(signature, rawBody, seller.callbackSecret, this.d.clock.now().getTime() / 1000);
    if (!verdict.ok) {
      this.d.log.warn({ sellerId, reason: verdict.reason }, 'refused a partner callback');
      return { status: 401, body: { error: 'invalid signature' } };
    }
    const message = parseCallback(rawBody);
    if (!message) return { status: 400, body: { error: 'body is not a quote or order callback' } };
    try {
      const result = await this.process(seller, message);
      return { status: 200, body: { result } };
    } catch (e) {
      const err = toError(e);
      this.d.log.error({ err, sellerId, type: message.type }, 'partner callback failed; kept as a dead letter');
      await insertDeadLetter(this.d.db, {
        id: randomUUID(),
        kind: 'callback',
        ref: seller.id,
        payload: message as unknown as Record<string, unknown>,
        lastError: err.message,
        createdAt: this.d.clock.now(),
      });
      return { status: 202, body: { result: 'queued' } };
    }
  }

  /** Processes a stored callback again (dead-letter re-drive); throws when it still fails. */
  async process(seller: SellerRow, message: CallbackMessage): Promise<'applied' | 'ignored'> {
    const handlers = this.d.handlers();
    if (!handlers) throw new Error('the engine is not running on this instance');
    return message.type === 'quote'
      ? handlers.quote(seller, message.quoteRef, message.body)
      : handlers.order(seller, message.idempotencyKey, message.status, message.body);
  }
}

export function parseCallback(raw: string): CallbackMessage | null {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const m = v as Record<string, unknown>;
  if (m.type === 'quote' && typeof m.quoteRef === 'string' && m.quoteRef.length <= 1000 && 'body' in m) {
    return { type: 'quote', quoteRef: m.quoteRef, body: m.body };
  }
  if (
    m.type === 'order' &&
    typeof m.idempotencyKey === 'string' &&
    m.idempotencyKey.length <= 200 &&
    Number.isInteger(m.status) &&
    (m.status as number) >= 100 &&
    (m.status as number) <= 599
  ) {
    return { type: 'order', idempotencyKey: m.idempotencyKey, status: m.status as number, body: m.body };
  }
  return null;
}
