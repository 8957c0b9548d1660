import { describe, it, expect } from 'vitest';
import {
  ALLOWED_PLACEHOLDERS,
  TemplateError,
  checkTemplate,
  literalText,
  placeholdersIn,
  renderBody,
  renderPath,
  renderText,
} from './template.js';

describe('ALLOWED_PLACEHOLDERS', () => {
  it('shares only the book and request placeholders across all endpoints', () => {
    expect([...ALLOWED_PLACEHOLDERS.shared].sort()).toEqual(['author', 'isbn', 'requestId', 'title']);
    for (const kind of ['quote', 'order', 'orderStatus'] as const) {
      for (const name of ALLOWED_PLACEHOLDERS.shared) expect(ALLOWED_PLACEHOLDERS[kind].has(name)).toBe(true);
    }
  });

  it('scopes endpoint-specific placeholders to their endpoint', () => {
    expect([...ALLOWED_PLACEHOLDERS.quote]).toEqual(
      expect.arrayContaining(['condition', 'quoteRef', 'callbackUrl']),
    );
    expect(ALLOWED_PLACEHOLDERS.quote.has('offerId')).toBe(false);
    expect([...ALLOWED_PLACEHOLDERS.order]).toEqual(
      expect.arrayContaining([
        'idempotencyKey',
        'offerId',
        'totalCents',
        'total',
        'currency',
        'shipping',
        'shipping.name',
        'shipping.line1',
        'shipping.line2',
        'shipping.city',
        'shipping.region',
        'shipping.postalCode',
        'shipping.country',
      ]),
    );
    expect(ALLOWED_PLACEHOLDERS.order.has('condition')).toBe(false);
    expect(ALLOWED_PLACEHOLDERS.order.has('sellerOrderId')).toBe(false);
    expect(ALLOWED_PLACEHOLDERS.orderStatus.has('sellerOrderId')).toBe(true);
    expect(ALLOWED_PLACEHOLDERS.orderStatus.has('idempotencyKey')).toBe(true);
    expect(ALLOWED_PLACEHOLDERS.orderStatus.has('offerId')).toBe(false);
    expect(ALLOWED_PLACEHOLDERS.shared.has('idempotencyKey')).toBe(false);
  });
});

describe('placeholdersIn', () => {
  it('finds names with optional inner whitespace, once each', () => {
    expect(placeholdersIn('/books/{{isbn}}?t={{ title }}&again={{isbn}}&s={{\tshipping.city\n}}')).toEqual({
      names: ['isbn', 'title', 'shipping.city'],
      malformed: [],
    });
  });

  it('returns nothing for plain text and lone braces', () => {
    expect(placeholdersIn('{"a": {b}} } { }}')).toEqual({ names: [], malformed: [] });
    expect(placeholdersIn('')).toEqual({ names: [], malformed: [] });
  });

  it('reports unclosed, empty and badly named placeholders as malformed', () => {
    expect(placeholdersIn('x{{isbn').malformed).toEqual(['{{isbn']);
    expect(placeholdersIn('{{}}').malformed).toEqual(['{{}}']);
    expect(placeholdersIn('{{  }}').malformed).toEqual(['{{  }}']);
    expect(placeholdersIn('{{1abc}}').malformed).toEqual(['{{1abc}}']);
    expect(placeholdersIn('{{a b}}').malformed).toEqual(['{{a b}}']);
    expect(placeholdersIn('{{a-b}}').malformed).toEqual(['{{a-b}}']);
    expect(placeholdersIn('{{ {{isbn}}').malformed).toEqual(['{{ {{isbn}}']);
    expect(placeholdersIn('{{{isbn}}}')).toEqual({ names: [], malformed: ['{{{isbn}}'] });
  });

  it('keeps scanning after a malformed placeholder that is closed', () => {
    expect(placeholdersIn('{{bad name}}/{{isbn}}')).toEqual({ names: ['isbn'], malformed: ['{{bad name}}'] });
  });
});

describe('literalText', () => {
  it('drops valid placeholders and keeps literal and malformed text', () => {
    expect(literalText('/a/{{ isbn }}/b?x={{title}}')).toBe('/a//b?x=');
    expect(literalText('/a {{bad name}}')).toBe('/a {{bad name}}');
    expect(literalText('/a/{{isbn')).toBe('/a/{{isbn');
  });
});

describe('checkTemplate', () => {
  const quote = ALLOWED_PLACEHOLDERS.quote;

  it('accepts allowed placeholders anywhere in nested values', () => {
    expect(
      checkTemplate({ a: ['{{isbn}}', { b: 'x {{ condition }} y' }], n: 1, t: true, z: null }, quote, ['body']),
    ).toEqual([]);
  });

  it('reports unknown placeholders with the path to the string', () => {
    expect(checkTemplate({ items: ['ok', '{{offerId}}'] }, quote, ['input', 'quote', 'body'])).toEqual([
      {
        code: 'INVALID_SELLER_CONFIG',
        field: ['input', 'quote', 'body', 'items', '1'],
        message: 'Unknown placeholder {{offerId}}',
      },
    ]);
  });

  it('reports malformed placeholders', () => {
    const errors = checkTemplate('/x/{{isbn', quote, ['path']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'INVALID_SELLER_CONFIG', field: ['path'] });
    expect(errors[0]!.message).toMatch(/Malformed/);
  });

  it('treats object keys as literal text', () => {
    expect(checkTemplate({ '{{nope}}': 'v', '{{': 'w' }, quote, ['body'])).toEqual([]);
  });

  it('does not accept names from prototype chains or shared-only sets', () => {
    expect(checkTemplate('{{constructor}}', quote, ['p'])).toHaveLength(1);
    expect(checkTemplate('{{condition}}', ALLOWED_PLACEHOLDERS.shared, ['h'])).toHaveLength(1);
  });
});

describe('renderPath', () => {
  it('URL-encodes every value', () => {
    expect(renderPath('/books/{{isbn}}/{{ title }}', { isbn: '978-0', title: 'a/b?c=d&e#f é' })).toBe(
      '/books/978-0/a%2Fb%3Fc%3Dd%26e%23f%20%C3%A9',
    );
  });

  it('renders null and undefined values as empty strings', () => {
    expect(renderPath('/a/{{x}}/{{y}}', { x: null, y: undefined })).toBe('/a//');
  });

  it('throws for unknown placeholders instead of rendering an empty string', () => {
    expect(() => renderPath('/a/{{missing}}', {})).toThrow(TemplateError);
  });
});

describe('renderText', () => {
  it('interpolates strings, numbers, booleans and objects', () => {
    expect(
      renderText('{{a}}|{{b}}|{{c}}|{{d}}|{{e}}', { a: 'x', b: 12, c: false, d: { k: [1, 'two'] }, e: null }),
    ).toBe('x|12|false|{"k":[1,"two"]}|');
  });

  it('inserts hostile values literally and never re-expands them', () => {
    const values = { isbn: '{{title}}', title: 'SECRET', quote: `"'\\\n`, uni: '𝔘ñí\u0000' };
    expect(renderText('{{isbn}}-{{quote}}-{{uni}}', values)).toBe(`{{title}}-"'\\\n-𝔘ñí\u0000`);
    expect(renderPath('/{{isbn}}', values)).toBe('/%7B%7Btitle%7D%7D');
  });

  it('renders huge and tiny numbers the way JavaScript prints them', () => {
    expect(renderText('{{a}} {{b}} {{c}}', { a: 1e21, b: Number.MAX_SAFE_INTEGER, c: 5e-7 })).toBe(
      '1e+21 9007199254740991 5e-7',
    );
  });

  it('looks dotted names up as flat keys first, then as paths', () => {
    const values = { 'shipping.city': 'Flat', shipping: { city: 'Nested', line2: null } };
    expect(renderText('{{shipping.city}}', values)).toBe('Flat');
    expect(renderText('{{shipping.line2}}', values)).toBe('');
    expect(renderText('{{ shipping.line2 }}x', { shipping: { line2: undefined } })).toBe('x');
  });

  it('distinguishes an absent key from a null value', () => {
    expect(() => renderText('{{shipping.line2}}', { shipping: { city: 'X' } })).toThrow(TemplateError);
    expect(() => renderText('{{shipping.city}}', { shipping: null })).toThrow(TemplateError);
    expect(() => renderText('{{shipping.city.x}}', { shipping: { city: 'X' } })).toThrow(TemplateError);
  });

  it('never resolves names through the prototype chain', () => {
    expect(() => renderText('{{toString}}', {})).toThrow(TemplateError);
    expect(() => renderText('{{shipping.constructor}}', { shipping: {} })).toThrow(TemplateError);
    expect(() => renderText('{{a.__proto__}}', { a: {} })).toThrow(TemplateError);
  });

  it('throws on malformed placeholders', () => {
    expect(() => renderText('{{isbn', { isbn: 'x' })).toThrow(TemplateError);
  });

  it('renders each template again from the values of each call, however many templates it has seen', () => {
    expect(renderText('/books/{{isbn}}?ref={{requestId}}', { isbn: '111', requestId: 'a' })).toBe('/books/111?ref=a');
    // More templates than the renderer keeps tokenized: the first is forgotten and read again.
    for (let i = 0; i < 1_100; i++) expect(renderText(`t${i}-{{isbn}}`, { isbn: String(i) })).toBe(`t${i}-${i}`);
    expect(renderText('/books/{{isbn}}?ref={{requestId}}', { isbn: '222', requestId: 'b' })).toBe('/books/222?ref=b');
    expect(() => renderText('/books/{{isbn}}?ref={{requestId}}', { isbn: '333' })).toThrow(TemplateError);
  });
});

describe('renderBody', () => {
  const values = {
    isbn: '9780306406157',
    totalCents: 1299,
    total: '12.99',
    nothing: null,
    shipping: { name: 'Ada "The" Lovelace', line1: '1 Main', line2: null, city: 'Zürich' },
  };

  it('replaces a whole-placeholder string by the value with its JSON type', () => {
    expect(
      renderBody(
        {
          isbn: '{{isbn}}',
          amount: '{{ totalCents }}',
          addr: '{{shipping}}',
          line2: '{{shipping.line2}}',
          none: '{{nothing}}',
        },
        values,
      ),
    ).toEqual({
      isbn: '9780306406157',
      amount: 1299,
      addr: values.shipping,
      line2: null,
      none: null,
    });
  });

  it('interpolates as text when the string has more than the placeholder', () => {
    expect(
      renderBody(['x{{totalCents}}', ' {{totalCents}}', '{{total}} {{isbn}}', 'cents: {{totalCents}}'], values),
    ).toEqual(['x1299', ' 1299', '12.99 9780306406157', 'cents: 1299']);
    expect(renderBody('to {{shipping}}', values)).toBe(`to ${JSON.stringify(values.shipping)}`);
  });

  it('keeps non-string JSON values and keys literal', () => {
    expect(renderBody({ '{{isbn}}': 1, n: null, b: true, nested: [[{ k: 2.5 }]] }, values)).toEqual({
      '{{isbn}}': 1,
      n: null,
      b: true,
      nested: [[{ k: 2.5 }]],
    });
  });

  it('keeps a literal "__proto__" key as data without touching prototypes', () => {
    const body = JSON.parse('{"__proto__": {"polluted": "{{isbn}}"}}') as unknown;
    const out = renderBody(body, values) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":"9780306406157"}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('inserts hostile values literally, producing valid JSON', () => {
    const hostile = { title: '"},{"admin":true,"x":"{{isbn}}\\', isbn: 'ok', big: 2 ** 80 };
    const out = renderBody({ t: '{{title}}', u: 'T: {{title}}', big: '{{big}}' }, hostile);
    expect(out).toEqual({ t: hostile.title, u: `T: ${hostile.title}`, big: 2 ** 80 });
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
  });

  it('does not mutate its input', () => {
    const body = { a: ['{{isbn}}'] };
    renderBody(body, values);
    expect(body).toEqual({ a: ['{{isbn}}'] });
  });

  it('throws for unknown placeholders, even whole-string ones', () => {
    expect(() => renderBody({ a: '{{missing}}' }, values)).toThrow(TemplateError);
    expect(() => renderBody(['{{missing}} x'], values)).toThrow(TemplateError);
  });
});
