import { describe, expect, it } from 'vitest';
import { AppError } from '../domain/errors.js';
import { isUnavailable, unavailable } from './unavailable.js';

/** A driver error as postgres.js makes it: a plain Error with `code` (and `errno`). */
function clientError(code: string): Error {
  return Object.assign(new Error(`write ${code} 127.0.0.1:5432`), { code, errno: code });
}

/** A server error as postgres.js makes it: name PostgresError, the SQLSTATE as `code`. */
function serverError(code: string, message: string): Error {
  const e = Object.assign(new Error(message), { code, severity: 'FATAL' });
  e.name = 'PostgresError';
  return e;
}

/** How drizzle reports a failed statement: its own error, the driver's as `cause`. */
function failedQuery(cause: Error): Error {
  return new Error('Failed query: select 1\nparams: ', { cause });
}

describe('isUnavailable: Postgres going away or not back yet', () => {
  it.each([
    ['a connection closed under a query', clientError('CONNECTION_CLOSED')],
    ['a pool that was ended', clientError('CONNECTION_ENDED')],
    ['a connection destroyed', clientError('CONNECTION_DESTROYED')],
    ['a connection not opened in time', clientError('CONNECT_TIMEOUT')],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['admin_shutdown (a stop or restart)', serverError('57P01', 'terminating connection due to administrator command')],
    ['crash_shutdown', serverError('57P02', 'terminating connection because of crash of another server process')],
    ['cannot_connect_now (crash recovery)', serverError('57P03', 'the database system is not yet accepting connections')],
    ['a connection_exception', serverError('08006', 'connection failure')],
  ])('%s, as drizzle wraps it', (_, error) => {
    expect(isUnavailable(failedQuery(error))).toBe(true);
    expect(unavailable(failedQuery(error))).toMatchObject({ code: 'UNAVAILABLE', extensions: { retryAfterMs: expect.any(Number) } });
  });

  it.each([
    ['a unique violation', serverError('23505', 'duplicate key value violates unique constraint')],
    ['a query canceled by statement_timeout', serverError('57014', 'canceling statement due to statement timeout')],
    ['a syntax error', serverError('42601', 'syntax error at or near "selec"')],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
  ])('not %s', (_, error) => {
    expect(isUnavailable(failedQuery(error))).toBe(false);
  });

  it('a five-character code on an error that is not the server’s is not read as a SQLSTATE', () => {
    expect(isUnavailable(Object.assign(new Error('odd'), { code: '08001' }))).toBe(false);
  });

  it('an AppError answers for itself', () => {
    expect(isUnavailable(new AppError('UNAVAILABLE', 'down', { retryAfterMs: 1_000 }))).toBe(true);
    expect(isUnavailable(new AppError('OVERLOADED', 'busy', { retryAfterMs: 1_000 }))).toBe(false);
  });
});
