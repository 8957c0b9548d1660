import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SignJWT } from 'jose';
import { EXIT, CliError } from './outcome.js';

/** The user the demo acts as: the one `npm start` prints a token for. */
export const DEMO_USER = 'demo-user';
/** Minted tokens live this long; a reconnect mints a new one, so a long --wait never outlives it. */
const MINTED_TTL_SECONDS = 15 * 60;

/** Where the bearer token comes from, and how to get a current one (minted ones are renewed). */
export interface TokenSource {
  /** For messages: "--token", "BROKER_TOKEN", "JWT_SECRET", the secret file's path, or null: none found. */
  readonly from: string | null;
  /** The token, or null when there is none (the broker is still asked: unreachable beats unauthenticated). */
  get(): Promise<string | null>;
  /** Why there is no token and how to get one; with `from: null` only. */
  readonly missing?: string;
}

/**
 * The token to send: the one given (--token, BROKER_TOKEN); else one minted for demo-user from
 * the local broker's secret — $JWT_SECRET, else `$DATA_DIR/jwt-secret`, which the embedded
 * server keeps when it generates its own secret. Else none: the broker's UNAUTHENTICATED answer
 * is then explained with how to get a token (and an unreachable broker is reported as such).
 */
export async function resolveToken(
  given: { value: string; from: string } | undefined,
  env: Record<string, string | undefined>,
  cwd: string,
): Promise<TokenSource> {
  if (given) return { from: given.from, get: async () => given.value };
  const fromEnv = env.JWT_SECRET;
  if (fromEnv) return minting(fromEnv, 'JWT_SECRET');
  const file = resolve(cwd, join(env.DATA_DIR || './.data', 'jwt-secret'));
  let secret: string;
  try {
    secret = (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CliError(EXIT.UNAUTHENTICATED, 'NO_TOKEN', `cannot read the broker's secret at ${file}: ${(e as Error).message}`, { cause: e });
    }
    return none(file);
  }
  if (!secret) return none(file);
  return minting(secret, file);
}

function minting(secret: string, from: string): TokenSource {
  return { from, get: () => mintToken(secret, DEMO_USER) };
}

/** A user token with the claims the broker checks (API.md, Authentication): HS256, sub, role, exp. */
export async function mintToken(secret: string, sub: string, ttlSeconds = MINTED_TTL_SECONDS, now = Date.now()): Promise<string> {
  const iat = Math.floor(now / 1000);
  return new SignJWT({ role: 'user' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}

function none(file: string): TokenSource {
  return {
    from: null,
    get: async () => null,
    missing: [
      'no token to call the broker with.',
      '  Pass --token <jwt> or set BROKER_TOKEN: `npm start` prints a user token when it starts.',
      `  Or run this beside the broker you started with \`npm start\`: its secret is kept in ${file}`,
      '  (set DATA_DIR if it uses another directory, or JWT_SECRET if you gave it one).',
    ].join('\n'),
  };
}
