import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { Auth } from '../http/auth.js';
import { mintToken, resolveToken } from './token.js';

// The server's own verifier, in a test only: the CLI itself never imports the server.
const SECRET = 'cli-test-secret-0123456789abcdef';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'cli-token-'));
  dirs.push(d);
  return d;
};

describe('mintToken', () => {
  it('makes a user token the broker accepts, short-lived', async () => {
    const token = await mintToken(SECRET, 'demo-user');
    expect(await new Auth(SECRET).viewerFrom(`Bearer ${token}`)).toEqual({ id: 'demo-user', role: 'user' });
    const claims = decodeJwt(token);
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(3600);
  });

  it('is refused by a broker with another secret', async () => {
    const token = await mintToken(SECRET, 'demo-user');
    expect(await new Auth(`${SECRET}-other`).viewerFrom(`Bearer ${token}`)).toBe('invalid');
  });

  it('is refused once expired', async () => {
    const token = await mintToken(SECRET, 'demo-user', 60, Date.now() - 3_600_000);
    expect(await new Auth(SECRET).viewerFrom(`Bearer ${token}`)).toBe('invalid');
  });
});

describe('resolveToken', () => {
  it('uses a given token as it is', async () => {
    const source = await resolveToken({ value: 'given', from: '--token' }, { JWT_SECRET: SECRET }, '/');
    expect(source.from).toBe('--token');
    expect(await source.get()).toBe('given');
  });

  it('mints from JWT_SECRET before the secret file', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'jwt-secret'), 'file-secret');
    const source = await resolveToken(undefined, { JWT_SECRET: SECRET, DATA_DIR: dir }, '/');
    expect(source.from).toBe('JWT_SECRET');
    expect(await new Auth(SECRET).viewerFrom(`Bearer ${await source.get()}`)).toEqual({ id: 'demo-user', role: 'user' });
  });

  it('mints from $DATA_DIR/jwt-secret, relative to the working directory', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'jwt-secret'), `${SECRET}\n`);
    const source = await resolveToken(undefined, { DATA_DIR: '.' }, cwd);
    expect(source.from).toBe(join(cwd, 'jwt-secret'));
    expect(await new Auth(SECRET).viewerFrom(`Bearer ${await source.get()}`)).toEqual({ id: 'demo-user', role: 'user' });
  });

  it('has none, and says how to get one, when there is no secret', async () => {
    const cwd = tempDir();
    const source = await resolveToken(undefined, {}, cwd);
    expect(source.from).toBeNull();
    expect(await source.get()).toBeNull();
    expect(source.missing).toContain('--token');
    expect(source.missing).toContain(join(cwd, '.data', 'jwt-secret'));
  });
});
