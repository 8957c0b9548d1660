import { constants, accessSync, chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * What the embedded default keeps in DATA_DIR besides its database: a check that the folder is
 * usable (a readable message instead of a stack from deep inside PGlite), and the JWT secret it
 * generated on its first start, so the tokens it prints survive restarts.
 */

/** The generated secret's file, `<DATA_DIR>/jwt-secret`: the raw secret, no newline, mode 0600 (`npm run buy` reads it too). */
export const JWT_SECRET_FILE = 'jwt-secret';

export class DataDirError extends Error {
  override name = 'DataDirError';
}

/** The embedded database lives in a folder: not with DATABASE_URL, nor with an in-memory `memory://` DATA_DIR. */
export function usesDataDir(c: { databaseUrl: string | undefined; dataDir: string }): boolean {
  return !c.databaseUrl && !c.dataDir.includes('://');
}

export function jwtSecretPath(dataDir: string): string {
  return join(resolve(dataDir), JWT_SECRET_FILE);
}

/**
 * Makes sure `dataDir` is a folder this process can write, creating it when missing. Throws a
 * DataDirError saying what is wrong and what to do otherwise.
 */
export function prepareDataDir(dataDir: string): void {
  const dir = resolve(dataDir);
  const named = `DATA_DIR=${dataDir}${dir === dataDir ? '' : ` (${dir})`}`;
  const fix = 'point DATA_DIR at a folder this user can write (it is created when missing), e.g. DATA_DIR=./.data';
  let isDirectory: boolean | null = null;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw new DataDirError(`cannot use ${named}: ${reason(e)}; ${fix}`, { cause: e });
  }
  if (isDirectory === false) throw new DataDirError(`${named} is a file, not a folder; ${fix}`);
  if (isDirectory === null) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new DataDirError(`cannot create ${named}: ${reason(e)}; ${fix}`, { cause: e });
    }
  }
  try {
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new DataDirError(`${named} is not writable by this user; ${fix}`, { cause: e });
  }
}

/** The secret a previous start saved in `dataDir`, or null when there is none (or it is empty). */
export function readJwtSecret(dataDir: string): string | null {
  let text: string;
  try {
    text = readFileSync(jwtSecretPath(dataDir), 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') return null;
    throw new DataDirError(`cannot read the saved JWT secret ${jwtSecretPath(dataDir)}: ${reason(e)}`, { cause: e });
  }
  const secret = text.trim();
  return secret === '' ? null : secret;
}

/**
 * Saves `secret` for the next start, readable by this user only. Called once the database has
 * initialised the folder: PGlite only sets up a folder that is empty. Never replaces a file
 * that is there already.
 */
export function saveJwtSecret(dataDir: string, secret: string): void {
  const path = jwtSecretPath(dataDir);
  const failed = (e: unknown) => new DataDirError(`cannot save the JWT secret in ${path}: ${reason(e)}`, { cause: e });
  try {
    writeFileSync(path, secret, { mode: 0o600, flag: 'wx' });
    return;
  } catch (e) {
    if (errno(e) !== 'EEXIST') throw failed(e);
  }
  // There already: kept, unless it is empty (a start cut off mid-write) and so holds no secret.
  if (readJwtSecret(dataDir) !== null) return;
  try {
    writeFileSync(path, secret);
    chmodSync(path, 0o600);
  } catch (e) {
    throw failed(e);
  }
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'part of the path is a file, not a folder',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the path is too long',
};

function reason(e: unknown): string {
  const code = errno(e);
  return (code && REASONS[code]) ?? (e instanceof Error ? e.message : String(e));
}
