import { randomBytes, webcrypto } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { Role, Viewer } from '../domain/types.js';

/** Tokens whose verification is remembered (the oldest goes first), and for how long at most. */
const VERIFIED_KEPT = 10_000;
const VERIFIED_TTL_MS = 60_000;

/** Verifies and issues the API's bearer tokens (HS256; claims `sub`, `role`, `exp`). */
export class Auth {
  /** Imported once: jose would import raw key bytes again for every token. */
  private readonly key: Promise<webcrypto.CryptoKey>;
  /**
   * A client sends the same token with every request: its signature is checked once, then the
   * viewer is remembered until the token expires (at most a minute). Only valid tokens are kept.
   */
  private readonly verified = new Map<string, { viewer: Viewer; until: number }>();

  constructor(secret: string) {
    this.key = webcrypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
  }

  static generateSecret(): string {
    return randomBytes(32).toString('base64url');
  }

  /**
   * The viewer behind an `Authorization` header value; `null` when there is none, and
   * `'invalid'` when one was given but is malformed, badly signed, expired or lacks claims.
   */
  async viewerFrom(header: unknown): Promise<Viewer | null | 'invalid'> {
    if (header === undefined || header === null || header === '') return null;
    if (typeof header !== 'string') return 'invalid';
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!match) return 'invalid';
    const token = match[1]!;
    const now = Date.now();
    const known = this.verified.get(token);
    if (known && known.until > now) return known.viewer;
    try {
      const { payload } = await jwtVerify(token, await this.key, { algorithms: ['HS256'] });
      const role = payload.role;
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 200) return 'invalid';
      if (role !== 'user' && role !== 'admin') return 'invalid';
      const viewer: Viewer = { id: payload.sub, role };
      const expires = typeof payload.exp === 'number' ? payload.exp * 1000 : Number.POSITIVE_INFINITY;
      this.remember(token, viewer, Math.min(expires, now + VERIFIED_TTL_MS));
      return viewer;
    } catch {
      return 'invalid';
    }
  }

  private remember(token: string, viewer: Viewer, until: number): void {
    this.verified.delete(token);
    if (this.verified.size >= VERIFIED_KEPT) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { viewer, until });
  }

  async issue(sub: string, role: Role, ttlSeconds = 7 * 86_400): Promise<string> {
    return new SignJWT({ role })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(await this.key);
  }
}
