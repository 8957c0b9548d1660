import { describe, expect, it } from 'vitest';
import { unixSocket } from './client.js';

describe('unixSocket', () => {
  it('turns libpq’s ?host=/dir into the socket path and leaves the rest of the URL', () => {
    expect(unixSocket('postgres://app@localhost/broker?host=/var/run/postgresql')).toEqual({
      url: 'postgres://app@localhost/broker',
      socket: { path: '/var/run/postgresql/.s.PGSQL.5432' },
    });
    expect(unixSocket('postgres://app@localhost:6432/broker?host=/tmp/&sslmode=disable')).toEqual({
      url: 'postgres://app@localhost:6432/broker?sslmode=disable',
      socket: { path: '/tmp/.s.PGSQL.6432' },
    });
  });

  it('leaves a TCP URL alone', () => {
    for (const url of ['postgres://app@db.internal:5432/broker', 'postgres://app@localhost/broker?host=db.internal', 'not a url']) {
      expect(unixSocket(url)).toEqual({ url, socket: {} });
    }
  });
});
