import { describe, expect, it } from 'vitest';
import { signatureHeader, verifySignature } from './signature.js';

const secret = 'a-callback-secret-of-some-length';
const body = '{"type":"quote","quoteRef":"r","body":{}}';

describe('callback signatures', () => {
  it('accepts a signature made with the secret over the exact raw body, within the window', () => {
    expect(verifySignature(signatureHeader(secret, body, 1_000_000), body, secret, 1_000_100)).toEqual({ ok: true });
  });

  it('refuses another secret, a changed body, a stale or future timestamp, and malformed headers', () => {
    const h = signatureHeader(secret, body, 1_000_000);
    expect(verifySignature(h, body, 'another-secret-entirely-here', 1_000_000).ok).toBe(false);
    expect(verifySignature(h, `${body} `, secret, 1_000_000).ok).toBe(false);
    expect(verifySignature(h, body, secret, 1_000_301)).toEqual({ ok: false, reason: 'timestamp outside the allowed window' });
    expect(verifySignature(h, body, secret, 999_699).ok).toBe(false);
    for (const bad of [undefined, '', 't=abc,v1=00', 'v1=' + 'a'.repeat(64), 't=1000000', 'x'.repeat(2000)]) {
      expect(verifySignature(bad, body, secret, 1_000_000).ok).toBe(false);
    }
  });

  it('accepts any one valid v1 among several (secret rotation)', () => {
    const h = signatureHeader(secret, body, 1_000_000);
    const t = h.split(',')[0];
    const v1 = h.split(',')[1];
    expect(verifySignature(`${t},v1=${'0'.repeat(64)},${v1}`, body, secret, 1_000_000)).toEqual({ ok: true });
  });
});
