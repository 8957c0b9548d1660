/**
 * The SQLSTATE of a database error, wherever the driver put it: drizzle wraps the driver's
 * error (postgres.js or PGlite), which carries the five-character code as `code`.
 */
export function sqlState(e: unknown): string | null {
  for (let cur: unknown = e; cur; cur = (cur as { cause?: unknown }).cause) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code.length === 5) return code;
  }
  return null;
}

/** A unique index refused the write (23505). */
export function isUniqueViolation(e: unknown): boolean {
  return sqlState(e) === '23505';
}

/**
 * Lost a lock race with another writer — a deadlock (40P01) or a serialization failure (40001):
 * nothing was written, and the same statement may simply be run again.
 */
export function isLockRace(e: unknown): boolean {
  const code = sqlState(e);
  return code === '40P01' || code === '40001';
}

/** Runs a statement, again after a lost lock race (a few times, then the error stands). */
export async function retryLockRaces<T>(run: () => Promise<T>, tries = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await run();
    } catch (e) {
      if (i >= tries || !isLockRace(e)) throw e;
    }
  }
}
