import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirError, jwtSecretPath, prepareDataDir, readJwtSecret, saveJwtSecret, usesDataDir } from './data-dir.js';

const dirs: string[] = [];
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'data-dir-test-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('usesDataDir', () => {
  it('only the embedded database in a folder has one', () => {
    expect(usesDataDir({ databaseUrl: undefined, dataDir: './.data' })).toBe(true);
    expect(usesDataDir({ databaseUrl: 'postgres://db/broker', dataDir: './.data' })).toBe(false);
    expect(usesDataDir({ databaseUrl: undefined, dataDir: 'memory://' })).toBe(false);
  });
});

describe('prepareDataDir', () => {
  it('creates a missing folder, parents included', () => {
    const dir = join(temp(), 'a', 'b');
    prepareDataDir(dir);
    expect(statSync(dir).isDirectory()).toBe(true);
  });

  it('accepts a folder that is there', () => {
    const dir = temp();
    expect(() => prepareDataDir(dir)).not.toThrow();
  });

  it('refuses a file, saying so', () => {
    const file = join(temp(), 'file');
    writeFileSync(file, 'x');
    expect(() => prepareDataDir(file)).toThrow(DataDirError);
    expect(() => prepareDataDir(file)).toThrow(`DATA_DIR=${file} is a file, not a folder; point DATA_DIR at a folder`);
  });

  it('refuses a path through a file', () => {
    const file = join(temp(), 'file');
    writeFileSync(file, 'x');
    expect(() => prepareDataDir(join(file, 'data'))).toThrow(`cannot use DATA_DIR=${join(file, 'data')}: part of the path is a file, not a folder`);
  });
});

describe('the saved JWT secret', () => {
  it('is absent at first, then saved raw (no newline) for this user only, and read back', () => {
    const dir = temp();
    expect(readJwtSecret(dir)).toBeNull();
    saveJwtSecret(dir, 'secret-1');
    expect(readFileSync(join(dir, 'jwt-secret'), 'utf8')).toBe('secret-1');
    expect(statSync(jwtSecretPath(dir)).mode & 0o777).toBe(0o600);
    expect(readJwtSecret(dir)).toBe('secret-1');
  });

  it('is never replaced once saved', () => {
    const dir = temp();
    saveJwtSecret(dir, 'first');
    saveJwtSecret(dir, 'second');
    expect(readJwtSecret(dir)).toBe('first');
  });

  it('tolerates a hand-written file with a trailing newline, and replaces an empty one', () => {
    const dir = temp();
    writeFileSync(jwtSecretPath(dir), 'mine\n');
    expect(readJwtSecret(dir)).toBe('mine');
    writeFileSync(jwtSecretPath(dir), '');
    expect(readJwtSecret(dir)).toBeNull();
    saveJwtSecret(dir, 'fresh');
    expect(readJwtSecret(dir)).toBe('fresh');
  });

  it('a folder it cannot read is a DataDirError', () => {
    const dir = temp();
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    expect(() => readJwtSecret(file)).toThrow(DataDirError);
  });
});
