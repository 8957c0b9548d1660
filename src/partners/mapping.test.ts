import { describe, it, expect } from 'vitest';
import {
  checkOrderMapping,
  checkQuoteMapping,
  parseAmount,
  parseOrderResponse,
  parseQuoteResponse,
  readPath,
  type ParsedOffer,
  type QuoteMapping,
} from './mapping.js';

describe('readPath', () => {
  const doc = { a: { b: [{ c: 1 }, { c: null }], 'x y': 'spaced' }, n: 0, list: ['p', 'q'] };

  it('reads nested objects and array indexes', () => {
    expect(readPath(doc, 'a.b.0.c')).toBe(1);
    expect(readPath(doc, 'a.b.1.c')).toBeNull();
    expect(readPath(doc, 'list.1')).toBe('q');
    expect(readPath(doc, 'n')).toBe(0);
    expect(readPath(doc, 'a.x y')).toBe('spaced');
  });

  it('returns undefined for missing paths and never throws', () => {
    expect(readPath(doc, 'a.z.c')).toBeUndefined();
    expect(readPath(doc, 'a.b.5.c')).toBeUndefined();
    expect(readPath(doc, 'n.x')).toBeUndefined();
    expect(readPath(doc, 'list.01')).toBeUndefined();
    expect(readPath(doc, 'list.length')).toBeUndefined();
    expect(readPath(doc, '')).toBeUndefined();
    expect(readPath(null, 'a')).toBeUndefined();
    expect(readPath(undefined, 'a')).toBeUndefined();
    expect(readPath('string', 'length')).toBeUndefined();
    expect(readPath(42, 'a.b')).toBeUndefined();
  });

  it('refuses prototype-pollution segments and inherited properties', () => {
    const hostile = JSON.parse('{"__proto__": {"x": 1}, "constructor": {"prototype": 2}}') as unknown;
    expect(readPath(hostile, '__proto__.x')).toBeUndefined();
    expect(readPath(hostile, 'constructor')).toBeUndefined();
    expect(readPath(hostile, 'constructor.prototype')).toBeUndefined();
    expect(readPath({}, 'toString')).toBeUndefined();
    expect(readPath({}, 'hasOwnProperty')).toBeUndefined();
  });
});

describe('parseAmount', () => {
  it('reads decimals as cents, rounding half-up on the decimal digits', () => {
    expect(parseAmount(12.99)).toBe(1299);
    expect(parseAmount('12.99')).toBe(1299);
    expect(parseAmount(' 12.99 ')).toBe(1299);
    expect(parseAmount(12.345)).toBe(1235);
    expect(parseAmount('12.344999')).toBe(1234);
    expect(parseAmount('19.999')).toBe(2000);
    expect(parseAmount(0.1 + 0.2)).toBe(30);
    expect(parseAmount(1.005)).toBe(101);
    expect(parseAmount(0.005)).toBe(1);
    expect(parseAmount(0.05)).toBe(5);
    expect(parseAmount(5e-7)).toBe(0);
    expect(parseAmount('1.2e1')).toBe(1200);
    expect(parseAmount(12)).toBe(1200);
    expect(parseAmount(0)).toBe(0);
    expect(parseAmount(-0)).toBe(0);
  });

  it('refuses negative, non-finite, huge and non-numeric decimals', () => {
    const bads = [-1, '-1', NaN, Infinity, -Infinity, 1e21, '9'.repeat(30), '1e999', 'abc', '', '12.', '$5', '1,000'];
    for (const bad of [...bads, '0x10', true, null, {}, [12]]) {
      expect(parseAmount(bad), String(bad)).toBeNull();
    }
    expect(parseAmount('90071992547409.91')).toBe(9007199254740991);
    expect(parseAmount('90071992547409.92')).toBeNull();
  });

  it('reads integer cents in cents mode', () => {
    expect(parseAmount(1299, 'cents')).toBe(1299);
    expect(parseAmount('1299', 'cents')).toBe(1299);
    for (const bad of [12.5, '12.50', -1, '-1', NaN, Infinity, 2 ** 60, '99999999999999999999', 'x', null]) {
      expect(parseAmount(bad, 'cents'), String(bad)).toBeNull();
    }
  });
});

describe('parseQuoteResponse', () => {
  const flat: QuoteMapping = { itemPrice: 'price' };

  const offer = (overrides: Partial<ParsedOffer>): ParsedOffer => ({
    offerId: null,
    condition: 'NEW',
    itemCents: 0,
    shippingCents: 0,
    taxCents: 0,
    feesCents: 0,
    totalCents: 0,
    currency: 'USD',
    inventory: null,
    available: true,
    ...overrides,
  });

  it('treats the whole body as one offer when offers is not mapped, with defaults', () => {
    expect(parseQuoteResponse({ price: '12.99' }, flat)).toEqual({
      ok: true,
      offers: [offer({ itemCents: 1299, totalCents: 1299 })],
    });
  });

  it('reads every mapped field relative to each offer', () => {
    const mapping: QuoteMapping = {
      offers: 'data.results',
      itemPrice: 'pricing.item',
      shipping: 'pricing.ship',
      tax: 'pricing.tax',
      fees: 'pricing.fees',
      currency: 'pricing.cur',
      inventory: 'stock',
      available: 'inStock',
      condition: 'cond',
      offerId: 'id',
    };
    const body = {
      data: {
        results: [
          {
            id: 'A-1',
            cond: 'NEW',
            stock: 3,
            inStock: 'true',
            pricing: { item: 10, ship: '3.50', tax: 0.8, fees: 0.25, cur: 'eur' },
          },
          { id: 77, cond: 'Like_New', stock: '0', inStock: 1, pricing: { item: '5' } },
        ],
      },
    };
    expect(parseQuoteResponse(body, mapping)).toEqual({
      ok: true,
      offers: [
        offer({
          offerId: 'A-1',
          condition: 'NEW',
          itemCents: 1000,
          shippingCents: 350,
          taxCents: 80,
          feesCents: 25,
          totalCents: 1455,
          currency: 'EUR',
          inventory: 3,
          available: true,
        }),
        offer({ offerId: '77', condition: 'USED', itemCents: 500, totalCents: 500, inventory: 0, available: true }),
      ],
    });
  });

  it('reads amounts as integer cents when configured', () => {
    const result = parseQuoteResponse({ p: 1299, s: '100' }, { itemPrice: 'p', shipping: 's', amounts: 'cents' });
    expect(result).toEqual({ ok: true, offers: [offer({ itemCents: 1299, shippingCents: 100, totalCents: 1399 })] });
    expect(parseQuoteResponse({ p: 12.99 }, { itemPrice: 'p', amounts: 'cents' }).ok).toBe(false);
  });

  it('derives availability from inventory when available is not mapped', () => {
    const mapping: QuoteMapping = { itemPrice: 'p', inventory: 'inv' };
    const read = (body: unknown) => {
      const r = parseQuoteResponse(body, mapping);
      return r.ok ? r.offers.map((o) => [o.inventory, o.available]) : r.reason;
    };
    expect(read({ p: 1, inv: 0 })).toEqual([[0, false]]);
    expect(read({ p: 1, inv: 2 })).toEqual([[2, true]]);
    expect(read({ p: 1 })).toEqual([[null, true]]);
    expect(read({ p: 1, inv: null })).toEqual([[null, true]]);
  });

  it('reads available as a boolean, overriding inventory', () => {
    const mapping: QuoteMapping = { itemPrice: 'p', inventory: 'inv', available: 'a' };
    const available = (a: unknown) => {
      const r = parseQuoteResponse({ p: 1, inv: 5, a }, mapping);
      return r.ok ? r.offers[0]!.available : 'unreadable';
    };
    expect(available(false)).toBe(false);
    expect(available('FALSE')).toBe(false);
    expect(available(0)).toBe(false);
    expect(available(true)).toBe(true);
    expect(available('true')).toBe(true);
    expect(available(1)).toBe(true);
    expect(available(undefined)).toBe(true);
    expect(available('yes')).toBe('unreadable');
    expect(available(2)).toBe('unreadable');
  });

  it('matches conditions case-insensitively, counting anything but new as used', () => {
    const condition = (c: unknown) => {
      const r = parseQuoteResponse({ p: 1, c }, { itemPrice: 'p', condition: 'c' });
      return r.ok ? r.offers[0]!.condition : 'unreadable';
    };
    expect(condition('new')).toBe('NEW');
    expect(condition(' New ')).toBe('NEW');
    expect(condition(undefined)).toBe('NEW');
    const used = ['used', 'like_new', 'like new', 'very_good', 'good', 'acceptable', 'fair', 'refurbished'];
    for (const c of [...used, 'mint', '']) {
      expect(condition(c), c).toBe('USED');
    }
    expect(condition(1)).toBe('unreadable');
  });

  it('is unreadable when itemPrice is missing or any amount is bad', () => {
    expect(parseQuoteResponse({}, flat)).toEqual({ ok: false, reason: 'itemPrice: missing' });
    expect(parseQuoteResponse({ price: null }, flat).ok).toBe(false);
    expect(parseQuoteResponse({ price: -1 }, flat).ok).toBe(false);
    expect(parseQuoteResponse({ price: 'NaN' }, flat).ok).toBe(false);
    expect(parseQuoteResponse({ price: 'Infinity' }, flat).ok).toBe(false);
    expect(parseQuoteResponse({ price: 1, s: 'free' }, { itemPrice: 'price', shipping: 's' }).ok).toBe(false);
    expect(parseQuoteResponse({ price: 1, t: -0.5 }, { itemPrice: 'price', tax: 't' }).ok).toBe(false);
    expect(parseQuoteResponse({ price: 1, f: {} }, { itemPrice: 'price', fees: 'f' }).ok).toBe(false);
  });

  it('is unreadable when the total overflows safe integers', () => {
    const body = { p: Number.MAX_SAFE_INTEGER, s: 1 };
    expect(parseQuoteResponse(body, { itemPrice: 'p', shipping: 's', amounts: 'cents' })).toEqual({
      ok: false,
      reason: 'total: too large',
    });
  });

  it('is unreadable for bad currency, inventory or offerId values', () => {
    expect(parseQuoteResponse({ p: 1, c: 'dollars' }, { itemPrice: 'p', currency: 'c' }).ok).toBe(false);
    expect(parseQuoteResponse({ p: 1, c: 840 }, { itemPrice: 'p', currency: 'c' }).ok).toBe(false);
    expect(parseQuoteResponse({ p: 1, i: -1 }, { itemPrice: 'p', inventory: 'i' }).ok).toBe(false);
    expect(parseQuoteResponse({ p: 1, i: 1.5 }, { itemPrice: 'p', inventory: 'i' }).ok).toBe(false);
    expect(parseQuoteResponse({ p: 1, i: 'lots' }, { itemPrice: 'p', inventory: 'i' }).ok).toBe(false);
    expect(parseQuoteResponse({ p: 1, id: { x: 1 } }, { itemPrice: 'p', offerId: 'id' }).ok).toBe(false);
    expect(parseQuoteResponse({ p: 1, id: true }, { itemPrice: 'p', offerId: 'id' }).ok).toBe(false);
  });

  it('requires offers to point to an array', () => {
    const mapping: QuoteMapping = { offers: 'items', itemPrice: 'p' };
    for (const body of [{}, { items: {} }, { items: 'x' }, { items: null }, null, 'garbage', [], 42]) {
      expect(parseQuoteResponse(body, mapping).ok, JSON.stringify(body)).toBe(false);
    }
    expect(parseQuoteResponse({ items: [] }, mapping)).toEqual({ ok: true, offers: [] });
  });

  it('fails the whole response when any offer is unreadable', () => {
    const mapping: QuoteMapping = { offers: 'items', itemPrice: 'p' };
    expect(parseQuoteResponse({ items: [{ p: 1 }, { p: 'oops' }, { p: 2 }] }, mapping)).toEqual({
      ok: false,
      reason: 'offers[1].itemPrice: not a decimal amount',
    });
    expect(parseQuoteResponse({ items: [{ p: 1 }, null] }, mapping).ok).toBe(false);
  });

  it('reads unreadable bodies as failures, not offers', () => {
    for (const body of [undefined, null, '', 'not json', 0, true, [], [{ price: 1 }]]) {
      expect(parseQuoteResponse(body, flat).ok, String(body)).toBe(false);
    }
  });

  it('does not follow prototype-pollution paths in partner data', () => {
    const body = JSON.parse('{"__proto__": {"price": 5}}') as unknown;
    expect(parseQuoteResponse(body, { itemPrice: '__proto__.price' }).ok).toBe(false);
    expect(parseQuoteResponse({}, { itemPrice: 'constructor.length' }).ok).toBe(false);
  });
});

describe('parseOrderResponse', () => {
  it('reads the mapped fields', () => {
    expect(
      parseOrderResponse(
        { order: { id: 'SO-1', total: '25.50', eta: '2030-05-01T12:00:00Z' } },
        { orderId: 'order.id', total: 'order.total', deliveryEta: 'order.eta' },
      ),
    ).toEqual({ orderId: 'SO-1', totalCents: 2550, deliveryEta: new Date('2030-05-01T12:00:00Z') });
  });

  it('reads numeric ids and cents totals', () => {
    expect(parseOrderResponse({ id: 42, t: 2550 }, { orderId: 'id', total: 't', amounts: 'cents' })).toEqual({
      orderId: '42',
      totalCents: 2550,
      deliveryEta: null,
    });
  });

  it('returns nulls for unmapped, missing or invalid fields', () => {
    expect(parseOrderResponse({ id: 'x' }, {})).toEqual({ orderId: null, totalCents: null, deliveryEta: null });
    const mapping = { orderId: 'id', total: 't', deliveryEta: 'eta' };
    expect(parseOrderResponse('garbage', mapping)).toEqual({ orderId: null, totalCents: null, deliveryEta: null });
    expect(parseOrderResponse({ id: '', t: -5, eta: 'next tuesday' }, mapping)).toEqual({
      orderId: null,
      totalCents: null,
      deliveryEta: null,
    });
    expect(parseOrderResponse({ id: true, t: 'x', eta: 1893456000000 }, mapping)).toEqual({
      orderId: null,
      totalCents: null,
      deliveryEta: null,
    });
  });

  it('accepts ISO dates and refuses impossible ones', () => {
    const eta = (value: string) => parseOrderResponse({ eta: value }, { deliveryEta: 'eta' }).deliveryEta;
    expect(eta('2030-05-01')).toEqual(new Date('2030-05-01T00:00:00Z'));
    expect(eta('2030-05-01T12:00:00.123+02:00')).toEqual(new Date('2030-05-01T10:00:00.123Z'));
    expect(eta('2030-02-30')).toBeNull();
    expect(eta('2030-13-01')).toBeNull();
    expect(eta('2030-05-01T25:00:00Z')).toBeNull();
    expect(eta('May 1, 2030')).toBeNull();
  });
});

describe('checkQuoteMapping', () => {
  const field = ['input', 'quote', 'response'];

  it('accepts a complete mapping', () => {
    expect(
      checkQuoteMapping(
        {
          offers: 'data.offers',
          itemPrice: 'price',
          shipping: 'ship',
          tax: 'tax',
          fees: 'fees',
          currency: 'cur',
          inventory: 'stock.count',
          available: 'ok',
          condition: 'cond',
          offerId: 'id',
          amounts: 'cents',
        },
        field,
      ),
    ).toEqual([]);
  });

  it('requires an object with itemPrice', () => {
    for (const bad of [undefined, null, 'price', 12, ['price']]) {
      expect(checkQuoteMapping(bad, field)).toEqual([
        expect.objectContaining({ code: 'INVALID_SELLER_CONFIG', field }),
      ]);
    }
    expect(checkQuoteMapping({}, field)).toEqual([
      expect.objectContaining({ code: 'INVALID_SELLER_CONFIG', field: [...field, 'itemPrice'] }),
    ]);
  });

  it('reports unknown keys, bad paths and bad amounts, all at once', () => {
    const response = JSON.parse(
      `{"itemPrice": "", "shipping": 3, "tax": "a..b", "fees": "x.__proto__", "currency": "${'a'.repeat(201)}",
        "amounts": "dollars", "bogus": "x", "__proto__": "y"}`,
    ) as unknown;
    const fields = checkQuoteMapping(response, field).map((e) => e.field);
    expect(fields).toEqual(
      expect.arrayContaining(
        ['itemPrice', 'shipping', 'tax', 'fees', 'currency', 'amounts', 'bogus', '__proto__'].map((k) => [...field, k]),
      ),
    );
    expect(fields).toHaveLength(8);
  });

  it('accepts a 200-character path', () => {
    expect(checkQuoteMapping({ itemPrice: 'a'.repeat(200) }, field)).toEqual([]);
  });
});

describe('checkOrderMapping', () => {
  const field = ['input', 'order', 'response'];

  it('accepts absent and valid mappings', () => {
    expect(checkOrderMapping(undefined, field)).toEqual([]);
    expect(checkOrderMapping(null, field)).toEqual([]);
    expect(checkOrderMapping({}, field)).toEqual([]);
    expect(checkOrderMapping({ orderId: 'id', total: 'a.b', deliveryEta: 'eta', amounts: 'decimal' }, field)).toEqual(
      [],
    );
  });

  it('refuses non-objects, unknown keys and quote-only keys', () => {
    expect(checkOrderMapping('id', field)).toEqual([expect.objectContaining({ code: 'INVALID_SELLER_CONFIG', field })]);
    expect(checkOrderMapping({ orderId: 'id', itemPrice: 'p' }, field)).toEqual([
      expect.objectContaining({ code: 'INVALID_SELLER_CONFIG', field: [...field, 'itemPrice'] }),
    ]);
    expect(checkOrderMapping({ orderId: ['id'] }, field)).toEqual([
      expect.objectContaining({ code: 'INVALID_SELLER_CONFIG', field: [...field, 'orderId'] }),
    ]);
  });
});
