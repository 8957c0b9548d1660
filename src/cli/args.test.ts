import { describe, expect, it } from 'vitest';
import { DEMO_ADDRESS, parseCommand, parseDeadline, parseEndpoint, parseMoney, UsageError } from './args.js';

const NOW = new Date('2026-11-30T10:00:00.000Z');
const ctx = (env: Record<string, string> = {}) => ({ env, now: NOW, newKey: () => 'fresh-key' });

describe('parseMoney', () => {
  it.each([
    ['45', 4500],
    ['45.00', 4500],
    ['45.5', 4550],
    ['0.07', 7],
    ['$12.34', 1234],
    ['1,299.99', 129999],
    [' 19.99 ', 1999],
  ])('reads %s as %i cents, on the digits', (text, cents) => {
    expect(parseMoney(text)).toBe(cents);
  });

  it.each(['', 'abc', '45.001', '-5', '4.5.6', '1e3', '12,34', '0x10'])('refuses %j', (text) => {
    expect(() => parseMoney(text)).toThrow(UsageError);
  });

  it('refuses amounts beyond what the API can carry', () => {
    expect(() => parseMoney('21474836.48')).toThrow(/too large/);
    expect(parseMoney('21474836.47')).toBe(2 ** 31 - 1);
  });
});

describe('parseDeadline', () => {
  const after = (text: string) => parseDeadline(text, NOW).getTime() - NOW.getTime();

  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['2H', 7_200_000],
  ])('reads the duration %s', (text, ms) => {
    expect(after(text)).toBe(ms);
  });

  it('reads an ISO time with an offset', () => {
    expect(parseDeadline('2026-12-01T18:00:00Z', NOW).toISOString()).toBe('2026-12-01T18:00:00.000Z');
    expect(parseDeadline('2026-12-01T18:00:00+02:00', NOW).toISOString()).toBe('2026-12-01T16:00:00.000Z');
  });

  it.each(['', '0m', 'soon', '30', '2026-12-01T18:00:00', '2026-12-01', 'h', '-5m'])('refuses %j', (text) => {
    expect(() => parseDeadline(text, NOW)).toThrow(UsageError);
  });
});

describe('parseEndpoint', () => {
  it('points a bare address at /graphql over HTTP and WebSocket', () => {
    expect(parseEndpoint('http://127.0.0.1:4000')).toEqual({ http: 'http://127.0.0.1:4000/graphql', ws: 'ws://127.0.0.1:4000/graphql' });
    expect(parseEndpoint('https://broker.example/')).toEqual({ http: 'https://broker.example/graphql', ws: 'wss://broker.example/graphql' });
  });

  it('keeps a path that is given', () => {
    expect(parseEndpoint('http://host:1234/api/graphql').ws).toBe('ws://host:1234/api/graphql');
  });

  it.each(['localhost:4000', 'ftp://host', 'not a url'])('refuses %j', (raw) => {
    expect(() => parseEndpoint(raw)).toThrow(UsageError);
  });
});

describe('parseCommand', () => {
  it('builds the create input with demo defaults', () => {
    const c = parseCommand(['--isbn', '978-0-14-143951-8', '--max', '45.00'], ctx());
    expect(c).toMatchObject({
      kind: 'buy',
      endpoint: { http: 'http://127.0.0.1:4000/graphql' },
      token: undefined,
      json: false,
      wait: false,
      input: {
        idempotencyKey: 'fresh-key',
        book: { isbn: '978-0-14-143951-8' },
        maxTotalPrice: { cents: 4500, currency: 'USD' },
        expiresAt: '2026-11-30T11:00:00.000Z',
        shippingAddress: DEMO_ADDRESS,
        paymentToken: 'tok_visa',
      },
    });
    expect(c.kind === 'buy' && 'conditions' in c.input).toBe(false);
  });

  it('takes a title search, the address, conditions, key and payment token from flags', () => {
    const c = parseCommand(
      [
        '--title', 'Dune', '--author', 'Frank Herbert', '--max', '20', '--currency', 'usd', '--condition', 'any',
        '--ship-name', 'Grace Hopper', '--ship-country', 'gb', '--key', 'k-1', '--payment-token', 'tok_declined', '--expires', '2h',
      ],
      ctx(),
    );
    if (c.kind !== 'buy') throw new Error('expected buy');
    expect(c.input.book).toEqual({ title: 'Dune', author: 'Frank Herbert' });
    expect(c.input.maxTotalPrice).toEqual({ cents: 2000, currency: 'USD' });
    expect(c.input.conditions).toEqual(['NEW', 'USED']);
    expect(c.input.shippingAddress).toMatchObject({ name: 'Grace Hopper', country: 'GB', city: DEMO_ADDRESS.city });
    expect(c.input.idempotencyKey).toBe('k-1');
    expect(c.input.paymentToken).toBe('tok_declined');
    expect(c.input.expiresAt).toBe('2026-11-30T12:00:00.000Z');
  });

  it('reads the broker and token from the environment, flags first', () => {
    const env = { BROKER_URL: 'http://10.0.0.5:4000', BROKER_TOKEN: 'env-token' };
    expect(parseCommand(['--isbn', '1', '--max', '1'], ctx(env))).toMatchObject({
      endpoint: { http: 'http://10.0.0.5:4000/graphql' },
      token: { value: 'env-token', from: 'BROKER_TOKEN' },
    });
    expect(parseCommand(['--isbn', '1', '--max', '1', '--token', 'Bearer flag-token', '--url', 'http://h:1'], ctx(env))).toMatchObject({
      endpoint: { http: 'http://h:1/graphql' },
      token: { value: 'flag-token', from: '--token' },
    });
  });

  it('follows an existing request with --watch', () => {
    expect(parseCommand(['--watch', 'abc', '--wait', '--json'], ctx())).toMatchObject({ kind: 'watch', id: 'abc', wait: true, json: true });
    expect(() => parseCommand(['--watch', 'abc', '--isbn', '1'], ctx())).toThrow(/--watch .* no --isbn/);
  });

  it('asks for help', () => {
    expect(parseCommand(['--help'], ctx())).toEqual({ kind: 'help' });
    expect(parseCommand(['--isbn', '1', '-h'], ctx())).toEqual({ kind: 'help' });
  });

  it.each([
    [[], /which book/],
    [['--isbn', '1'], /--max/],
    [['--isbn', '1', '--max', '1', '--currency', 'dollars'], /--currency/],
    [['--isbn', '1', '--max', '1', '--condition', 'mint'], /--condition/],
    [['--isbn', '1', '--max', '1', '--expires', 'later'], /--expires/],
    [['--isbn', '1', '--max', '1', '--nope'], /Unknown option '--nope'/],
    [['9780141439518', '--max', '1'], /positional/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseCommand(argv, ctx())).toThrow(message);
  });
});
