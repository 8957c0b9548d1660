import { afterEach, describe, expect, it, vi } from 'vitest';
import { Auth } from './auth.js';

const SECRET = 'auth-test-secret-0123456789abcdef0123';

describe('Auth', () => {
  afterEach(() => vi.useRealTimers());

  it('reads the viewer from a token it issued, again and again', async () => {
    const auth = new Auth(SECRET);
    const token = await auth.issue('alice', 'user');
    for (let i = 0; i < 3; i++) expect(await auth.viewerFrom(`Bearer ${token}`)).toEqual({ id: 'alice', role: 'user' });
    expect(await auth.viewerFrom(`Bearer ${await auth.issue('root', 'admin')}`)).toEqual({ id: 'root', role: 'admin' });
  });

  it('refuses a token signed with another secret, a malformed one, and an expired one', async () => {
    const auth = new Auth(SECRET);
    const forged = await new Auth('another-secret-0123456789abcdef01234567').issue('alice', 'user');
    expect(await auth.viewerFrom(`Bearer ${forged}`)).toBe('invalid');
    expect(await auth.viewerFrom('Bearer not-a-token')).toBe('invalid');
    expect(await auth.viewerFrom('Basic abc')).toBe('invalid');
    expect(await auth.viewerFrom(`Bearer ${await auth.issue('alice', 'user', -60)}`)).toBe('invalid');
    expect(await auth.viewerFrom(undefined)).toBeNull();
  });

  it('a token accepted once is refused after it expires', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-30T12:00:00Z'));
    const auth = new Auth(SECRET);
    const token = await auth.issue('alice', 'user', 30);
    expect(await auth.viewerFrom(`Bearer ${token}`)).toEqual({ id: 'alice', role: 'user' });
    vi.setSystemTime(new Date('2026-11-30T12:00:29Z'));
    expect(await auth.viewerFrom(`Bearer ${token}`)).toEqual({ id: 'alice', role: 'user' });
    vi.setSystemTime(new Date('2026-11-30T12:00:31Z'));
    expect(await auth.viewerFrom(`Bearer ${token}`)).toBe('invalid');
  });

  it('a token with a changed signature is refused even after the genuine one was accepted', async () => {
    const auth = new Auth(SECRET);
    const token = await auth.issue('alice', 'user');
    expect(await auth.viewerFrom(`Bearer ${token}`)).toEqual({ id: 'alice', role: 'user' });
    const [header, payload] = token.split('.');
    const tampered = `${header}.${payload}.${'A'.repeat(43)}`;
    expect(await auth.viewerFrom(`Bearer ${tampered}`)).toBe('invalid');
  });
});
