import { describe, it, expect } from 'vitest';
import type { UserError } from '../domain/errors.js';
import {
  SELLER_DEFAULTS,
  isPublicHost,
  validateSellerInput,
  type SellerConfig,
  type SellerInputShape,
} from './seller-config.js';

const valid = (): SellerInputShape => ({
  name: '  Acme Books  ',
  tier: 1,
  baseUrl: 'https://api.acme.example/v1/',
  quote: { method: 'get', path: '/quotes/{{isbn}}', response: { itemPrice: 'price' } },
  order: {
    method: 'POST',
    path: '/orders',
    headers: { 'Idempotency-Key': '{{idempotencyKey}}' },
    body: { isbn: '{{isbn}}', offer: '{{offerId}}', total: '{{totalCents}}', ship: '{{shipping}}' },
    response: { orderId: 'id' },
  },
});

function config(input: SellerInputShape, sellerUrls: 'any' | 'public' = 'any'): SellerConfig {
  const outcome = validateSellerInput(input, { sellerUrls });
  if (!outcome.ok) throw new Error(`expected ok, got ${JSON.stringify(outcome.errors)}`);
  return outcome.value;
}

function errors(input: unknown, sellerUrls: 'any' | 'public' = 'any'): UserError[] {
  const outcome = validateSellerInput(input as SellerInputShape, { sellerUrls });
  if (outcome.ok) throw new Error('expected refusal');
  for (const e of outcome.errors) expect(e.code).toBe('INVALID_SELLER_CONFIG');
  return outcome.errors;
}

const fields = (input: unknown, sellerUrls: 'any' | 'public' = 'any') =>
  errors(input, sellerUrls).map((e) => e.field?.join('.'));

const withField = (patch: Record<string, unknown>) => ({ ...valid(), ...patch });
const withEndpoint = (kind: 'quote' | 'order' | 'orderStatus', patch: Record<string, unknown>) => {
  const base = valid();
  const endpoint = kind === 'orderStatus' ? { method: 'GET', path: '/orders/{{sellerOrderId}}' } : base[kind];
  return { ...base, [kind]: { ...endpoint, ...patch } };
};

describe('validateSellerInput: normalization', () => {
  it('normalizes a minimal valid input and applies defaults', () => {
    expect(config(valid())).toEqual({
      name: 'Acme Books',
      tier: 1,
      enabled: true,
      baseUrl: 'https://api.acme.example/v1',
      headers: undefined,
      timeoutMs: SELLER_DEFAULTS.timeoutMs,
      maxConcurrency: SELLER_DEFAULTS.maxConcurrency,
      maxCallsPerSecond: null,
      offerTtlSeconds: SELLER_DEFAULTS.offerTtlSeconds,
      orderChecksPrice: false,
      callbackSecret: undefined,
      quote: { method: 'GET', path: '/quotes/{{isbn}}', headers: {}, body: null, response: { itemPrice: 'price' } },
      order: {
        method: 'POST',
        path: '/orders',
        headers: { 'Idempotency-Key': '{{idempotencyKey}}' },
        body: { isbn: '{{isbn}}', offer: '{{offerId}}', total: '{{totalCents}}', ship: '{{shipping}}' },
        response: { orderId: 'id' },
      },
      orderStatus: null,
    });
    expect(SELLER_DEFAULTS).toEqual({ timeoutMs: 2000, maxConcurrency: 16, offerTtlSeconds: 60 });
  });

  it('keeps explicitly given settings', () => {
    const c = config({
      ...valid(),
      enabled: false,
      headers: { 'X-Api-Key': 'k-{{requestId}}' },
      timeoutMs: 50,
      maxConcurrency: 1000,
      offerTtlSeconds: 0,
      orderChecksPrice: true,
      callbackSecret: 's'.repeat(16),
      orderStatus: {
        method: 'get',
        path: '/orders/{{sellerOrderId}}',
        headers: { 'X-Key': '{{idempotencyKey}}' },
        response: { orderId: 'order.id', amounts: 'cents' },
      },
    });
    expect(c).toMatchObject({
      enabled: false,
      headers: { 'X-Api-Key': 'k-{{requestId}}' },
      timeoutMs: 50,
      maxConcurrency: 1000,
      offerTtlSeconds: 0,
      orderChecksPrice: true,
      callbackSecret: 'ssssssssssssssss',
      orderStatus: {
        method: 'GET',
        path: '/orders/{{sellerOrderId}}',
        headers: { 'X-Key': '{{idempotencyKey}}' },
        body: null,
        response: { orderId: 'order.id', amounts: 'cents' },
      },
    });
  });

  it('treats null optional fields as not given', () => {
    const c = config({
      ...valid(),
      enabled: null,
      headers: null,
      timeoutMs: null,
      maxConcurrency: null,
      offerTtlSeconds: null,
      orderChecksPrice: null,
      callbackSecret: null,
      orderStatus: null,
    });
    expect(c).toMatchObject({
      enabled: true,
      orderChecksPrice: false,
      headers: undefined,
      timeoutMs: 2000,
      callbackSecret: undefined,
      orderStatus: null,
    });
  });

  it('gives an absent order response an empty mapping and an empty headers object', () => {
    const c = config(withEndpoint('order', { response: undefined, headers: undefined }));
    expect(c.order.response).toEqual({});
    expect(c.order.headers).toEqual({});
  });

  it('accepts an empty seller-wide headers object (distinct from not given)', () => {
    expect(config(withField({ headers: {} })).headers).toEqual({});
  });
});

describe('validateSellerInput: scalar fields', () => {
  it('checks name length and control characters', () => {
    expect(fields(withField({ name: '   ' }))).toEqual(['input.name']);
    expect(fields(withField({ name: 'x'.repeat(101) }))).toEqual(['input.name']);
    expect(config(withField({ name: '📚'.repeat(100) })).name).toBe('📚'.repeat(100));
    expect(fields(withField({ name: 'Acme\u0000Books' }))).toEqual(['input.name']);
    expect(fields(withField({ name: 'Acme\nBooks' }))).toEqual(['input.name']);
    expect(fields(withField({ name: 42 }))).toEqual(['input.name']);
    expect(config(withField({ name: `O'Reilly "{{isbn}}" Ünïcødé` })).name).toBe(`O'Reilly "{{isbn}}" Ünïcødé`);
  });

  it('checks tier is an integer from 1 to 10', () => {
    for (const tier of [0, 11, 1.5, NaN, Infinity, -1, '1', null]) {
      expect(fields(withField({ tier })), String(tier)).toEqual(['input.tier']);
    }
    expect(config(withField({ tier: 10 })).tier).toBe(10);
  });

  it('checks enabled is a boolean', () => {
    expect(fields(withField({ enabled: 'yes' }))).toEqual(['input.enabled']);
  });

  it('checks orderChecksPrice is a boolean, and is given only for an order endpoint that sends the total', () => {
    for (const v of ['true', 1, {}]) expect(fields(withField({ orderChecksPrice: v })), String(v)).toEqual(['input.orderChecksPrice']);
    const withoutTotal = { ...withField({ orderChecksPrice: true }), order: { ...valid().order, body: { isbn: '{{isbn}}', offer: '{{offerId}}' } } };
    expect(fields(withoutTotal)).toEqual(['input.orderChecksPrice']);
    expect(config({ ...withoutTotal, orderChecksPrice: false }).orderChecksPrice).toBe(false);
    // In the path or a header as well as in the body.
    expect(config({ ...withoutTotal, order: { ...withoutTotal.order, path: '/orders?total={{ total }}' } }).orderChecksPrice).toBe(true);
    expect(config({ ...withoutTotal, order: { ...withoutTotal.order, headers: { 'X-Total': '{{totalCents}}' } } }).orderChecksPrice).toBe(true);
  });

  it('checks integer settings and their ranges', () => {
    const cases: [string, unknown][] = [
      ['timeoutMs', 49],
      ['timeoutMs', 60_001],
      ['timeoutMs', 100.5],
      ['timeoutMs', Infinity],
      ['maxConcurrency', 0],
      ['maxConcurrency', 1001],
      ['maxConcurrency', NaN],
      ['offerTtlSeconds', -1],
      ['offerTtlSeconds', 86_401],
      ['offerTtlSeconds', '60'],
      ['maxCallsPerSecond', 0],
      ['maxCallsPerSecond', -5],
      ['maxCallsPerSecond', 100_001],
      ['maxCallsPerSecond', 2.5],
      ['maxCallsPerSecond', '5'],
    ];
    for (const [key, value] of cases) {
      expect(fields(withField({ [key]: value })), `${key}=${String(value)}`).toEqual([`input.${key}`]);
    }
    expect(config(withField({ timeoutMs: 60_000, offerTtlSeconds: 86_400, maxCallsPerSecond: 100_000 }))).toMatchObject({
      timeoutMs: 60_000,
      offerTtlSeconds: 86_400,
      maxCallsPerSecond: 100_000,
    });
    // Null (or absent) is no limit at all, not a default.
    expect(config(withField({ maxCallsPerSecond: null })).maxCallsPerSecond).toBeNull();
    expect(config(withField({ maxCallsPerSecond: 1 })).maxCallsPerSecond).toBe(1);
  });

  it('checks callbackSecret length', () => {
    expect(fields(withField({ callbackSecret: 's'.repeat(15) }))).toEqual(['input.callbackSecret']);
    expect(fields(withField({ callbackSecret: 's'.repeat(257) }))).toEqual(['input.callbackSecret']);
    expect(fields(withField({ callbackSecret: 12345678901234567890 }))).toEqual(['input.callbackSecret']);
    expect(config(withField({ callbackSecret: 's'.repeat(256) })).callbackSecret).toHaveLength(256);
  });
});

describe('validateSellerInput: baseUrl', () => {
  it('normalizes away trailing slashes', () => {
    expect(config(withField({ baseUrl: 'http://Books.Example' })).baseUrl).toBe('http://books.example');
    expect(config(withField({ baseUrl: 'https://books.example:8443/api//' })).baseUrl).toBe(
      'https://books.example:8443/api',
    );
  });

  it('refuses malformed, non-http, credentialed, query and fragment URLs', () => {
    for (const baseUrl of [
      'books.example',
      '/relative',
      '',
      'ftp://books.example',
      'javascript:alert(1)',
      'file:///etc/passwd',
      'https://user:pw@books.example',
      'https://user@books.example',
      'https://:@books.example',
      'https://books.example/?a=1',
      'https://books.example/?',
      'https://books.example/#frag',
      ' https://books.example',
      'https://books.example/a b',
      'https://books.example/\n',
      `https://books.example/${'a'.repeat(2048)}`,
      42,
      null,
    ]) {
      expect(fields(withField({ baseUrl })), String(baseUrl)).toEqual(['input.baseUrl']);
    }
  });

  it('accepts private hosts when any seller URL is allowed', () => {
    expect(config(withField({ baseUrl: 'http://localhost:4001' }), 'any').baseUrl).toBe('http://localhost:4001');
    expect(config(withField({ baseUrl: 'http://127.0.0.1:4001/' }), 'any').baseUrl).toBe('http://127.0.0.1:4001');
  });

  it('refuses local and private hosts when only public seller URLs are allowed', () => {
    for (const host of [
      'localhost',
      'LOCALHOST.',
      'api.localhost',
      '127.0.0.1',
      '127.1.2.3',
      '0x7f.1',
      '2130706433',
      '0.0.0.0',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '224.0.0.1',
      '255.255.255.255',
      '[::1]',
      '[::]',
      '[0:0:0:0:0:0:0:1]',
      '[::ffff:127.0.0.1]',
      '[::ffff:10.0.0.1]',
      '[::ffff:a9fe:a9fe]',
      '[::127.0.0.1]',
      '[64:ff9b::7f00:1]',
      '[2002:c0a8:101::1]',
      '[fc00::1]',
      '[fd12:3456::1]',
      '[fe80::1]',
      '[febf::1]',
      '[ff02::1]',
    ]) {
      expect(fields(withField({ baseUrl: `http://${host}:8080/api` }), 'public'), host).toEqual(['input.baseUrl']);
    }
  });

  it('accepts public hosts and addresses when only public seller URLs are allowed', () => {
    for (const host of [
      'books.example',
      'localhost.example.com',
      '8.8.8.8',
      '172.32.0.1',
      '100.128.0.1',
      '192.169.0.1',
      '[2606:4700::1111]',
      '[::ffff:8.8.8.8]',
      '[2002:808:808::1]',
    ]) {
      expect(config(withField({ baseUrl: `https://${host}` }), 'public').baseUrl, host).toBe(
        new URL(`https://${host}`).href.replace(/\/$/, ''),
      );
    }
  });

  it('classifies hosts directly', () => {
    expect(isPublicHost('[::ffff:7f00:1]')).toBe(false);
    expect(isPublicHost('::ffff:127.0.0.1')).toBe(false);
    expect(isPublicHost('1.1.1.1')).toBe(true);
    expect(isPublicHost('')).toBe(false);
  });
});

describe('validateSellerInput: headers', () => {
  it('refuses non-object headers without crashing', () => {
    for (const headers of [['X-Key', 'v'], 42, 'X-Key: v', true]) {
      expect(fields(withField({ headers })), JSON.stringify(headers)).toEqual(['input.headers']);
      expect(fields(withEndpoint('quote', { headers })), JSON.stringify(headers)).toEqual(['input.quote.headers']);
    }
  });

  it('refuses more than 50 headers', () => {
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`X-H${i}`, 'v']));
    expect(fields(withField({ headers: many }))).toEqual(['input.headers']);
    const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`X-H${i}`, 'v']));
    expect(Object.keys(config(withField({ headers: fifty })).headers!)).toHaveLength(50);
  });

  it('refuses invalid header names', () => {
    for (const name of ['', 'X Key', 'X-Key:', 'X-Ké', 'X\r\nInjected', '{{isbn}}', 'X"Key']) {
      expect(fields(withField({ headers: { [name]: 'v' } })), name).toEqual([`input.headers.${name}`]);
    }
  });

  it('refuses hop-by-hop and connector-managed headers in any case', () => {
    const names = ['Host', 'content-length', 'Connection', 'Transfer-Encoding', 'Upgrade', 'Keep-Alive', 'TE'];
    for (const name of [...names, 'Trailer']) {
      const input = withEndpoint('order', { headers: { [name]: 'v' } });
      expect(fields(input), name).toEqual([`input.order.headers.${name}`]);
    }
  });

  it('refuses the same header twice in different cases', () => {
    expect(fields(withField({ headers: { 'X-Key': 'a', 'x-key': 'b' } }))).toEqual(['input.headers.x-key']);
  });

  it('refuses bad header values', () => {
    for (const value of ['a\r\nX-Evil: 1', 'a\nb', 'a\u0000b', 'x'.repeat(4097), 42, null, { a: 1 }]) {
      const input = withField({ headers: { 'X-Key': value } });
      expect(fields(input), JSON.stringify(value)).toEqual(['input.headers.X-Key']);
    }
    expect(config(withField({ headers: { 'X-Key': 'x'.repeat(4096) } })).headers!['X-Key']).toHaveLength(4096);
  });

  it('keeps a "__proto__" header name as data', () => {
    const headers = JSON.parse('{"__proto__": "v"}') as unknown;
    const c = config(withField({ headers }));
    expect(Object.hasOwn(c.headers!, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(c.headers)).toBe(Object.prototype);
  });

  it('allows only shared placeholders in seller-wide headers', () => {
    expect(config(withField({ headers: { 'X-Req': '{{requestId}}-{{isbn}}' } })).headers).toEqual({
      'X-Req': '{{requestId}}-{{isbn}}',
    });
    expect(fields(withField({ headers: { 'X-Key': '{{idempotencyKey}}' } }))).toEqual(['input.headers.X-Key']);
    expect(fields(withField({ headers: { 'X-Key': '{{isbn' } }))).toEqual(['input.headers.X-Key']);
  });

  it("allows an endpoint's own placeholders in its headers", () => {
    expect(fields(withEndpoint('quote', { headers: { 'X-Id': '{{idempotencyKey}}' } }))).toEqual([
      'input.quote.headers.X-Id',
    ]);
    const c = config(withEndpoint('orderStatus', { headers: { 'X-Id': '{{sellerOrderId}}' } }));
    expect(c.orderStatus!.headers).toEqual({ 'X-Id': '{{sellerOrderId}}' });
  });
});

describe('validateSellerInput: endpoints', () => {
  it('refuses missing or non-object endpoints without crashing', () => {
    expect(fields(withField({ quote: undefined }))).toEqual(['input.quote']);
    expect(fields(withField({ order: [] }))).toEqual(['input.order']);
    expect(fields(withField({ orderStatus: 'GET /status' }))).toEqual(['input.orderStatus']);
  });

  it('uppercases methods and refuses unknown ones', () => {
    expect(config(withEndpoint('order', { method: 'patch' })).order.method).toBe('PATCH');
    expect(config(withEndpoint('order', { method: 'Delete' })).order.method).toBe('DELETE');
    for (const method of ['HEAD', 'OPTIONS', 'CONNECT', 'TRACE', ' POST', '', 7]) {
      expect(fields(withEndpoint('order', { method })), String(method)).toEqual(['input.order.method']);
    }
  });

  it('checks paths', () => {
    const paths = ['orders', '', '//evil.example/x', '/a b', '/a\r\nHost: x', '/a\tb', '/{{ isbn }} x'];
    for (const path of [...paths, `/${'a'.repeat(2048)}`, 7, null]) {
      expect(fields(withEndpoint('order', { path })), JSON.stringify(path)).toEqual(['input.order.path']);
    }
    expect(config(withEndpoint('order', { path: `/${'a'.repeat(2047)}` })).order.path).toHaveLength(2048);
    expect(config(withEndpoint('quote', { path: '/q?isbn={{isbn}}&c={{ condition }}' })).quote.path).toBe(
      '/q?isbn={{isbn}}&c={{ condition }}',
    );
  });

  it('checks path placeholders against the endpoint', () => {
    expect(fields(withEndpoint('quote', { path: '/q/{{offerId}}' }))).toEqual(['input.quote.path']);
    expect(fields(withEndpoint('order', { path: '/o/{{sellerOrderId}}' }))).toEqual(['input.order.path']);
    expect(fields(withEndpoint('orderStatus', { path: '/o/{{offerId}}' }))).toEqual(['input.orderStatus.path']);
    expect(fields(withEndpoint('quote', { path: '/q/{{isbn' }))).toEqual(['input.quote.path']);
    expect(fields(withEndpoint('quote', { path: '/q/{{}}' }))).toEqual(['input.quote.path']);
  });

  it('refuses a body on GET endpoints', () => {
    expect(fields(withEndpoint('quote', { body: { isbn: '{{isbn}}' } }))).toEqual(['input.quote.body']);
    expect(fields(withEndpoint('quote', { method: 'GET', body: 'x' }))).toEqual(['input.quote.body']);
    expect(config(withEndpoint('quote', { body: null })).quote.body).toBeNull();
    expect(config(withEndpoint('quote', { method: 'POST', body: '{{isbn}}' })).quote.body).toBe('{{isbn}}');
  });

  it('accepts any JSON body and checks its placeholders with field paths', () => {
    const body = { items: [{ isbn: '{{isbn}}', qty: 1, note: `"quoted" \\ ünï` }], flag: false, n: null, big: 1e300 };
    expect(config(withEndpoint('order', { body })).order.body).toEqual(body);
    expect(fields(withEndpoint('order', { body: { items: ['ok', { key: '{{quoteRef}}' }] } }))).toEqual([
      'input.order.body.items.1.key',
    ]);
    expect(fields(withEndpoint('order', { body: ['{{shipping.zip}}'] }))).toEqual(['input.order.body.0']);
  });

  it('refuses bodies over 64 KiB', () => {
    expect(fields(withEndpoint('order', { body: { pad: 'x'.repeat(64 * 1024) } }))).toEqual(['input.order.body']);
    expect(fields(withEndpoint('order', { body: { pad: 'é'.repeat(33_000) } }))).toEqual(['input.order.body']);
    expect(config(withEndpoint('order', { body: 'x'.repeat(64 * 1024 - 2) })).order.body).toHaveLength(65_534);
  });

  it('refuses non-JSON and overly deep bodies without crashing', () => {
    expect(fields(withEndpoint('order', { body: { a: NaN } }))).toEqual(['input.order.body.a']);
    expect(fields(withEndpoint('order', { body: { a: [Infinity] } }))).toEqual(['input.order.body.a.0']);
    expect(fields(withEndpoint('order', { body: { a: 10n } }))).toEqual(['input.order.body.a']);
    expect(fields(withEndpoint('order', { body: { a: new Date(0) } }))).toEqual(['input.order.body.a']);
    expect(fields(withEndpoint('order', { body: { a: () => 1 } }))).toEqual(['input.order.body.a']);
    let deep: unknown = 'x';
    for (let i = 0; i < 100; i += 1) deep = [deep];
    expect(errors(withEndpoint('order', { body: deep }))).toHaveLength(1);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(errors(withEndpoint('order', { body: cyclic }))).toHaveLength(1);
  });

  it('validates response mappings per endpoint kind', () => {
    expect(fields(withEndpoint('quote', { response: undefined }))).toEqual(['input.quote.response']);
    expect(fields(withEndpoint('quote', { response: {} }))).toEqual(['input.quote.response.itemPrice']);
    expect(fields(withEndpoint('quote', { response: { itemPrice: 'p', amounts: 'euros' } }))).toEqual([
      'input.quote.response.amounts',
    ]);
    expect(fields(withEndpoint('order', { response: { orderId: 'id', itemPrice: 'p' } }))).toEqual([
      'input.order.response.itemPrice',
    ]);
    expect(fields(withEndpoint('orderStatus', { response: 'id' }))).toEqual(['input.orderStatus.response']);
    expect(fields(withEndpoint('order', { response: { orderId: 'a.__proto__.b' } }))).toEqual([
      'input.order.response.orderId',
    ]);
  });
});

describe('validateSellerInput: collects every error', () => {
  it('reports all problems at once', () => {
    const input = {
      name: '',
      tier: 0,
      baseUrl: 'http://127.0.0.1',
      headers: { Host: 'x' },
      timeoutMs: 1,
      maxConcurrency: 0,
      offerTtlSeconds: -1,
      callbackSecret: 'short',
      quote: { method: 'FETCH', path: 'q', response: {} },
      order: { method: 'GET', path: '/o', body: { a: 1 }, response: { bogus: 'x' } },
      orderStatus: { method: 'GET', path: '/s/{{offerId}}' },
    };
    expect(fields(input, 'public').sort()).toEqual(
      [
        'input.name',
        'input.tier',
        'input.baseUrl',
        'input.headers.Host',
        'input.timeoutMs',
        'input.maxConcurrency',
        'input.offerTtlSeconds',
        'input.callbackSecret',
        'input.quote.method',
        'input.quote.path',
        'input.quote.response.itemPrice',
        'input.order.body',
        'input.order.response.bogus',
        'input.orderStatus.path',
      ].sort(),
    );
  });

  it('refuses a non-object input', () => {
    for (const input of [null, undefined, 'seller', 42, []]) {
      expect(fields(input), String(input)).toEqual(['input']);
    }
  });

  it('survives an input of entirely wrong types', () => {
    const input = { name: {}, tier: 'one', baseUrl: [], headers: 5, quote: 1, order: null, orderStatus: false };
    expect(fields(input).sort()).toEqual(
      ['name', 'tier', 'baseUrl', 'headers', 'quote', 'order', 'orderStatus'].map((k) => `input.${k}`).sort(),
    );
  });
});
