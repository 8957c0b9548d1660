import { randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { Role, Viewer } from '../domain/types.js';

/** Verifies and issues the API's bearer tokens (HS256; claims `sub`, `role`, `exp`). */
export class Auth {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
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
    try {
      const { payload } = await jwtVerify(match[1]!, this.key, { algorithms: ['HS256'] });
      const role = payload.role;
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 200) return 'invalid';
      if (role !== 'user' && role !== 'admin') return 'invalid';
      return { id: payload.sub, role };
    } catch {
      return 'invalid';
    }
  }

  async issue(sub: string, role: Role, ttlSeconds = 7 * 86_400): Promise<string> {
    return new SignJWT({ role })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(this.key);
  }
}
