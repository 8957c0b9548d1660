import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a callback's timestamp may be from our clock (API.md: 5 minutes). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/**
 * Checks `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` against the
 * seller's callback secret, in constant time, and the timestamp window.
 */
export function verifySignature(
  header: string | undefined,
  rawBody: string,
  secret: string,
  nowSeconds: number,
  toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS,
): { ok: true } | { ok: false; reason: string } {
  if (!header || header.length > 1024) return { ok: false, reason: 'missing signature' };
  let t: string | null = null;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === 't' && v) t = v;
    else if (k === 'v1' && v) candidates.push(v);
  }
  if (t === null || !/^\d{1,12}$/.test(t) || candidates.length === 0) return { ok: false, reason: 'malformed signature' };
  if (Math.abs(nowSeconds - Number(t)) > toleranceSeconds) return { ok: false, reason: 'timestamp outside the allowed window' };
  const expected = Buffer.from(sign(secret, t, rawBody), 'hex');
  for (const c of candidates) {
    if (!/^[0-9a-f]{64}$/i.test(c)) continue;
    const given = Buffer.from(c, 'hex');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true };
  }
  return { ok: false, reason: 'signature mismatch' };
}

export function sign(secret: string, t: string, rawBody: string): string {
  return createHmac('sha256', secret).update(`${t}.${rawBody}`).digest('hex');
}

export function signatureHeader(secret: string, rawBody: string, nowSeconds: number): string {
  const t = String(Math.floor(nowSeconds));
  return `t=${t},v1=${sign(secret, t, rawBody)}`;
}
