import { describe, expect, it } from 'vitest';
import type { Outcome, UserError } from '../domain/errors.js';
import {
  MAX_PRICE_CENTS,
  SUPPORTED_CURRENCIES,
  bookKey,
  requestHash,
  validateCreateInput,
  validateUpdateInput,
  type CreateInputShape,
  type NewRequest,
  type UpdateInputShape,
} from './validation.js';

const NOW = new Date('2026-11-22T10:00:00Z');
const DAY = 86_400_000;
const LIMITS = { maxHorizonMs: 30 * DAY };
const IN_A_WEEK = new Date(NOW.getTime() + 7 * DAY);

/** A fresh, fully valid create input; tests mutate their own copy. */
function validInput(): CreateInputShape {
  return {
    idempotencyKey: 'req-2026.11.22:abc_~1',
    book: { isbn: '1449373321', title: '  Designing Data-Intensive Applications ', author: ' Martin Kleppmann  ' },
    maxTotalPrice: { cents: 4_500, currency: ' usd ' },
    expiresAt: IN_A_WEEK,
    shippingAddress: {
      name: '  Ada Lovelace ',
      line1: ' 1 Main St ',
      line2: '   ',
      city: ' Springfield ',
      region: null,
      postalCode: ' 94105 ',
      country: ' us ',
    },
    paymentToken: 'tok_visa',
    conditions: null,
  };
}

function create(mutate?: (i: CreateInputShape) => void): Outcome<NewRequest> {
  const input = validInput();
  mutate?.(input);
  return validateCreateInput(input, NOW, LIMITS);
}

function valueOf<T>(o: Outcome<T>): T {
  if (!o.ok) throw new Error(`expected ok, got ${JSON.stringify(o.errors)}`);
  return o.value;
}

/** The errors of a refused outcome, reduced to code and field. */
function errs<T>(o: Outcome<T>): Array<Pick<UserError, 'code' | 'field'>> {
  if (o.ok) throw new Error(`expected refusal, got ${JSON.stringify(o.value)}`);
  for (const e of o.errors) expect(e.message.length).toBeGreaterThan(0);
  return o.errors.map((e) => ({ code: e.code, field: e.field }));
}

function expectOneError<T>(o: Outcome<T>, code: UserError['code'], field: string[] | null): void {
  expect(errs(o)).toEqual([{ code, field }]);
}

function newRequest(mutate?: (i: CreateInputShape) => void): NewRequest {
  return valueOf(create(mutate));
}

describe('validateCreateInput — valid input', () => {
  it('accepts a fully valid input and normalises it', () => {
    const o = create();
    expect(o.ok).toBe(true);
    expect(valueOf(o)).toEqual({
      idempotencyKey: 'req-2026.11.22:abc_~1',
      book: { isbn: '9781449373320', title: 'Designing Data-Intensive Applications', author: 'Martin Kleppmann' },
      bookKey: 'isbn:9781449373320',
      conditions: ['NEW'],
      maxTotalCents: 4_500,
      currency: 'USD',
      expiresAt: IN_A_WEEK,
      shippingAddress: {
        name: 'Ada Lovelace',
        line1: '1 Main St',
        line2: null,
        city: 'Springfield',
        region: null,
        postalCode: '94105',
        country: 'US',
      },
      paymentToken: 'tok_visa',
    });
  });

  it('returns a copy of expiresAt, not the caller’s Date', () => {
    const v = newRequest();
    expect(v.expiresAt).not.toBe(IN_A_WEEK);
    expect(v.expiresAt.getTime()).toBe(IN_A_WEEK.getTime());
  });

  it('converts ISBN-10 (with X check digit and hyphens) to ISBN-13 and keeps valid ISBN-13', () => {
    expect(newRequest((i) => (i.book.isbn = '080442957X')).book.isbn).toBe('9780804429573');
    expect(newRequest((i) => (i.book.isbn = '0-306-40615-2')).book.isbn).toBe('9780306406157');
    expect(newRequest((i) => (i.book.isbn = '978-1-4493-7332-0')).book.isbn).toBe('9781449373320');
    expect(newRequest((i) => (i.book.isbn = ' 9781449373320 ')).book.isbn).toBe('9781449373320');
  });

  it('accepts an ISBN alone, with no title or author', () => {
    const v = newRequest((i) => (i.book = { isbn: '9781449373320' }));
    expect(v.book).toEqual({ isbn: '9781449373320', title: null, author: null });
    expect(v.bookKey).toBe('isbn:9781449373320');
  });

  it('accepts a title alone and keys the book by folded title and author', () => {
    const v = newRequest((i) => (i.book = { isbn: null, title: ' Dune ', author: null }));
    expect(v.book).toEqual({ isbn: null, title: 'Dune', author: null });
    expect(v.bookKey).toBe('title:dune|');
  });

  it('treats a whitespace-only isbn as absent when a title is given', () => {
    const v = newRequest((i) => (i.book = { isbn: '   ', title: 'Dune', author: '' }));
    expect(v.book).toEqual({ isbn: null, title: 'Dune', author: null });
  });

  it('folds case, accents, punctuation and spacing in the title/author book key', () => {
    const a = newRequest((i) => (i.book = { title: 'Café  Society!', author: 'Émile   ZOLA' }));
    const b = newRequest((i) => (i.book = { title: 'cafe society', author: 'emile zola' }));
    expect(a.bookKey).toBe('title:cafe society|emile zola');
    expect(b.bookKey).toBe(a.bookKey);
    // the stored title itself is only trimmed, not folded
    expect(a.book.title).toBe('Café  Society!');
  });

  it('keys by ISBN when both ISBN and title are given', () => {
    const v = newRequest((i) => (i.book = { isbn: '1449373321', title: 'Something', author: 'Someone' }));
    expect(v.bookKey).toBe('isbn:9781449373320');
  });

  it('defaults conditions to [NEW] when null or omitted', () => {
    expect(newRequest((i) => (i.conditions = null)).conditions).toEqual(['NEW']);
    expect(newRequest((i) => delete i.conditions).conditions).toEqual(['NEW']);
  });

  it('de-duplicates conditions and orders them NEW, USED', () => {
    expect(newRequest((i) => (i.conditions = ['USED'])).conditions).toEqual(['USED']);
    expect(newRequest((i) => (i.conditions = ['USED', 'NEW'])).conditions).toEqual(['NEW', 'USED']);
    expect(newRequest((i) => (i.conditions = ['USED', 'USED', 'NEW', 'NEW'])).conditions).toEqual(['NEW', 'USED']);
    expect(newRequest((i) => (i.conditions = ['NEW', 'NEW'])).conditions).toEqual(['NEW']);
  });

  it('keeps optional address fields when given and trims them', () => {
    const v = newRequest((i) => {
      i.shippingAddress.line2 = ' Apt 4 ';
      i.shippingAddress.region = ' CA ';
      i.shippingAddress.postalCode = 'SW1A 1AA';
      i.shippingAddress.country = 'gb';
    });
    expect(v.shippingAddress).toMatchObject({ line2: 'Apt 4', region: 'CA', postalCode: 'SW1A 1AA', country: 'GB' });
  });

  it('accepts the boundary values: 1 cent, MAX_PRICE_CENTS, expiry 1 ms after now and exactly at the horizon', () => {
    expect(newRequest((i) => (i.maxTotalPrice.cents = 1)).maxTotalCents).toBe(1);
    expect(newRequest((i) => (i.maxTotalPrice.cents = MAX_PRICE_CENTS)).maxTotalCents).toBe(MAX_PRICE_CENTS);
    const soon = new Date(NOW.getTime() + 1);
    expect(newRequest((i) => (i.expiresAt = soon)).expiresAt.getTime()).toBe(soon.getTime());
    const horizon = new Date(NOW.getTime() + LIMITS.maxHorizonMs);
    expect(newRequest((i) => (i.expiresAt = horizon)).expiresAt.getTime()).toBe(horizon.getTime());
  });

  it('accepts length caps exactly at their maximum', () => {
    const o = create((i) => {
      i.idempotencyKey = 'k'.repeat(128);
      i.book.title = 't'.repeat(500);
      i.book.author = 'a'.repeat(300);
      i.shippingAddress.name = 'n'.repeat(200);
      i.shippingAddress.line1 = 'l'.repeat(200);
      i.shippingAddress.line2 = 'l'.repeat(200);
      i.shippingAddress.city = 'c'.repeat(100);
      i.shippingAddress.region = 'r'.repeat(100);
      i.shippingAddress.postalCode = '1'.repeat(16);
      i.paymentToken = 'tok_' + 'x'.repeat(252);
    });
    expect(o.ok).toBe(true);
  });

  it('accepts every character of the idempotency key alphabet', () => {
    expect(create((i) => (i.idempotencyKey = 'AZaz09._:~-')).ok).toBe(true);
  });

  it('only supports USD', () => {
    expect([...SUPPORTED_CURRENCIES]).toEqual(['USD']);
  });
});

describe('validateCreateInput — BOOK_REQUIRED', () => {
  it('refuses a book with neither isbn nor title', () => {
    expectOneError(create((i) => (i.book = {})), 'BOOK_REQUIRED', ['input', 'book']);
    expectOneError(create((i) => (i.book = { isbn: null, title: null, author: null })), 'BOOK_REQUIRED', ['input', 'book']);
  });

  it('refuses an author alone', () => {
    expectOneError(create((i) => (i.book = { author: 'Frank Herbert' })), 'BOOK_REQUIRED', ['input', 'book']);
  });

  it('refuses whitespace-only isbn and title', () => {
    expectOneError(create((i) => (i.book = { isbn: '   ', title: '\t \n', author: 'X' })), 'BOOK_REQUIRED', ['input', 'book']);
    expectOneError(create((i) => (i.book = { isbn: '', title: '' })), 'BOOK_REQUIRED', ['input', 'book']);
  });
});

describe('validateCreateInput — INVALID_ISBN', () => {
  const isbnField = ['input', 'book', 'isbn'];

  it.each([
    ['bad ISBN-13 checksum', '9781449373321'],
    ['bad ISBN-10 checksum', '1449373322'],
    ['too many digits', '97814493733200'],
    ['too few digits', '97814493733'],
    ['wrong ISBN-13 prefix', '9771449373320'],
    ['garbage', 'not-an-isbn'],
    ['X not in last place', 'X449373321'],
    ['letter O for zero', '978144937332O'],
  ])('refuses %s (%s)', (_label, isbn) => {
    expectOneError(create((i) => (i.book.isbn = isbn)), 'INVALID_ISBN', isbnField);
  });

  it('refuses an otherwise valid ISBN longer than 32 characters with separators', () => {
    const long = '9--7--8--1--4--4--9--3--7--3--3--2--0';
    expect(long.length).toBeGreaterThan(32);
    expectOneError(create((i) => (i.book.isbn = long)), 'INVALID_ISBN', isbnField);
  });

  it('refuses a very long string', () => {
    expectOneError(create((i) => (i.book.isbn = '9'.repeat(10_000))), 'INVALID_ISBN', isbnField);
  });

  it('reports INVALID_ISBN (not BOOK_REQUIRED) when a bad isbn is the only identifier', () => {
    expectOneError(create((i) => (i.book = { isbn: 'garbage' })), 'INVALID_ISBN', isbnField);
  });
});

describe('validateCreateInput — INVALID_PRICE', () => {
  const centsField = ['input', 'maxTotalPrice', 'cents'];

  it.each([
    ['zero', 0],
    ['negative zero', -0],
    ['negative', -1],
    ['above MAX_PRICE_CENTS', MAX_PRICE_CENTS + 1],
    ['non-integer', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['unsafe integer', Number.MAX_SAFE_INTEGER + 1],
  ])('refuses %s', (_label, cents) => {
    expectOneError(create((i) => (i.maxTotalPrice.cents = cents)), 'INVALID_PRICE', centsField);
  });
});

describe('validateCreateInput — UNSUPPORTED_CURRENCY', () => {
  const currencyField = ['input', 'maxTotalPrice', 'currency'];

  it.each(['EUR', '', '   ', 'US', 'USDD', 'U S D'])('refuses %j', (currency) => {
    expectOneError(create((i) => (i.maxTotalPrice.currency = currency)), 'UNSUPPORTED_CURRENCY', currencyField);
  });

  it.each(['usd', 'USD', 'Usd', ' usd '])('accepts %j as USD', (currency) => {
    expect(newRequest((i) => (i.maxTotalPrice.currency = currency)).currency).toBe('USD');
  });

  it('reports both price and currency when both are wrong', () => {
    const o = create((i) => (i.maxTotalPrice = { cents: 0, currency: 'EUR' }));
    expect(errs(o)).toEqual([
      { code: 'INVALID_PRICE', field: ['input', 'maxTotalPrice', 'cents'] },
      { code: 'UNSUPPORTED_CURRENCY', field: ['input', 'maxTotalPrice', 'currency'] },
    ]);
  });
});

describe('validateCreateInput — INVALID_EXPIRY', () => {
  const expiryField = ['input', 'expiresAt'];

  it.each([
    ['in the past', new Date(NOW.getTime() - DAY)],
    ['1 ms in the past', new Date(NOW.getTime() - 1)],
    ['equal to now', new Date(NOW.getTime())],
    ['1 ms beyond the horizon', new Date(NOW.getTime() + LIMITS.maxHorizonMs + 1)],
    ['a year away', new Date(NOW.getTime() + 365 * DAY)],
    ['an Invalid Date', new Date('not a date')],
  ])('refuses an expiry %s', (_label, expiresAt) => {
    expectOneError(create((i) => (i.expiresAt = expiresAt)), 'INVALID_EXPIRY', expiryField);
  });

  it('honours the configured horizon', () => {
    const tenDays = new Date(NOW.getTime() + 10 * DAY);
    const input = validInput();
    input.expiresAt = tenDays;
    expect(validateCreateInput(input, NOW, { maxHorizonMs: 30 * DAY }).ok).toBe(true);
    expectOneError(validateCreateInput(input, NOW, { maxHorizonMs: 5 * DAY }), 'INVALID_EXPIRY', expiryField);
  });
});

describe('validateCreateInput — INVALID_ADDRESS', () => {
  const addr = (f: string) => ['input', 'shippingAddress', f];
  type AddressField = keyof CreateInputShape['shippingAddress'];

  it.each<AddressField>(['name', 'line1', 'city', 'postalCode', 'country'])('refuses a blank required %s', (f) => {
    expectOneError(create((i) => ((i.shippingAddress[f] as string) = '')), 'INVALID_ADDRESS', addr(f));
    expectOneError(create((i) => ((i.shippingAddress[f] as string) = '   ')), 'INVALID_ADDRESS', addr(f));
  });

  it('accepts blank or missing optional line2 and region as null', () => {
    const v = newRequest((i) => {
      i.shippingAddress.line2 = '';
      delete i.shippingAddress.region;
    });
    expect(v.shippingAddress.line2).toBeNull();
    expect(v.shippingAddress.region).toBeNull();
  });

  it.each<[AddressField, number]>([
    ['name', 200],
    ['line1', 200],
    ['line2', 200],
    ['city', 100],
    ['region', 100],
    ['postalCode', 16],
  ])('refuses an over-long %s (more than %i characters)', (f, max) => {
    expectOneError(create((i) => ((i.shippingAddress[f] as string) = '1'.repeat(max + 1))), 'INVALID_ADDRESS', addr(f));
  });

  it.each<[AddressField, string]>([
    ['name', 'Ada\u0000Lovelace'],
    ['name', 'Ada\nLovelace'],
    ['line1', '1 Main\tSt'],
    ['line2', 'Apt\u007f4'],
    ['city', 'Spring\u0085field'],
    ['region', 'C\u2028A'],
    ['name', 'Ada\u2029Lovelace'],
    ['line1', '1 Main St\u001b[31m'],
  ])('refuses control characters in %s (%j)', (f, value) => {
    expectOneError(create((i) => ((i.shippingAddress[f] as string) = value)), 'INVALID_ADDRESS', addr(f));
  });

  it.each(['AB@1', '-12345', ' -12345', '12_345', '1234\u0000', 'ñ1234', '12345\n6'])('refuses bad postal code %j', (postalCode) => {
    expectOneError(create((i) => (i.shippingAddress.postalCode = postalCode)), 'INVALID_ADDRESS', addr('postalCode'));
  });

  it.each(['94105', '94105-1234', 'SW1A 1AA', 'k1a0b1'])('accepts postal code %j', (postalCode) => {
    expect(newRequest((i) => (i.shippingAddress.postalCode = postalCode)).shippingAddress.postalCode).toBe(postalCode);
  });

  it.each(['ZZ', 'USA', 'U', 'XX', 'uk'])('refuses unknown country %j', (country) => {
    expectOneError(create((i) => (i.shippingAddress.country = country)), 'INVALID_ADDRESS', addr('country'));
  });

  it.each([
    ['us', 'US'],
    [' gb ', 'GB'],
    ['De', 'DE'],
  ])('accepts country %j as %s', (country, expected) => {
    expect(newRequest((i) => (i.shippingAddress.country = country)).shippingAddress.country).toBe(expected);
  });

  it('reports every bad address field at once', () => {
    const o = create((i) => {
      i.shippingAddress = { name: '', line1: ' ', line2: 'x'.repeat(201), city: '', region: 'r\u0001', postalCode: '', country: 'ZZ' };
    });
    expect(errs(o)).toEqual([
      { code: 'INVALID_ADDRESS', field: addr('name') },
      { code: 'INVALID_ADDRESS', field: addr('line1') },
      { code: 'INVALID_ADDRESS', field: addr('line2') },
      { code: 'INVALID_ADDRESS', field: addr('city') },
      { code: 'INVALID_ADDRESS', field: addr('region') },
      { code: 'INVALID_ADDRESS', field: addr('postalCode') },
      { code: 'INVALID_ADDRESS', field: addr('country') },
    ]);
  });
});

describe('validateCreateInput — INVALID_PAYMENT_TOKEN', () => {
  const tokenField = ['input', 'paymentToken'];

  it.each([
    ['a non-token', 'card_123'],
    ['empty', ''],
    ['the bare prefix', 'tok_'],
    ['over-long', 'tok_' + 'x'.repeat(253)],
    ['a space', 'tok_a b'],
    ['wrong case prefix', 'TOK_visa'],
    ['a newline', 'tok_visa\n'],
    ['surrounding whitespace', ' tok_visa'],
  ])('refuses %s (%j)', (_label, token) => {
    expectOneError(create((i) => (i.paymentToken = token)), 'INVALID_PAYMENT_TOKEN', tokenField);
  });

  it.each(['tok_visa', 'tok_declined', 'tok_A1_b2', 'tok_a-b'])('accepts %j unchanged', (token) => {
    expect(newRequest((i) => (i.paymentToken = token)).paymentToken).toBe(token);
  });
});

describe('validateCreateInput — INVALID_INPUT', () => {
  it.each([
    ['empty', ''],
    ['129 characters', 'k'.repeat(129)],
    ['a space', 'abc def'],
    ['a leading space', ' abc'],
    ['a trailing newline', 'abc\n'],
    ['unicode letters', 'clé-1'],
    ['an emoji', 'key-🙂'],
    ['a slash', 'a/b'],
  ])('refuses an idempotency key with %s', (_label, key) => {
    expectOneError(create((i) => (i.idempotencyKey = key)), 'INVALID_INPUT', ['input', 'idempotencyKey']);
  });

  it('refuses an empty conditions list', () => {
    expectOneError(create((i) => (i.conditions = [])), 'INVALID_INPUT', ['input', 'conditions']);
  });

  it.each([[['LIKE_NEW']], [['NEW', 'MINT']], [['new']], [['']]])('refuses unknown conditions %j', (conditions) => {
    expectOneError(create((i) => (i.conditions = conditions)), 'INVALID_INPUT', ['input', 'conditions']);
  });

  it('refuses an over-long title and author', () => {
    expectOneError(create((i) => (i.book.title = 't'.repeat(501))), 'INVALID_INPUT', ['input', 'book', 'title']);
    expectOneError(create((i) => (i.book.author = 'a'.repeat(301))), 'INVALID_INPUT', ['input', 'book', 'author']);
  });

  it('measures the title after trimming', () => {
    expect(create((i) => (i.book.title = `  ${'t'.repeat(500)}  `)).ok).toBe(true);
  });

  it.each(['Dune\u0000', 'Du\tne', 'Du\nne', 'Dune\u001b[2J x', 'Du\u0085ne', 'Du\u2028ne'])(
    'refuses control characters in the title (%j)',
    (title) => {
      expectOneError(create((i) => (i.book.title = title)), 'INVALID_INPUT', ['input', 'book', 'title']);
    },
  );

  it('refuses control characters in the author', () => {
    expectOneError(create((i) => (i.book.author = 'Frank\u0007Herbert')), 'INVALID_INPUT', ['input', 'book', 'author']);
  });

  it('does not require a title when an ISBN is given, but still checks it', () => {
    expectOneError(
      create((i) => (i.book = { isbn: '9781449373320', title: 'x'.repeat(501) })),
      'INVALID_INPUT',
      ['input', 'book', 'title'],
    );
  });
});

describe('validateCreateInput — several errors at once', () => {
  it('reports every error, in input order, with exact field paths', () => {
    const o = create((i) => {
      i.idempotencyKey = 'has space';
      i.book = { isbn: '123', title: 'T\u0000', author: 'a'.repeat(301) };
      i.maxTotalPrice = { cents: -5, currency: 'EUR' };
      i.expiresAt = new Date(NOW.getTime() - 1);
      i.shippingAddress.country = 'ZZ';
      i.shippingAddress.name = '';
      i.paymentToken = 'card_123';
      i.conditions = [];
    });
    expect(errs(o)).toEqual([
      { code: 'INVALID_INPUT', field: ['input', 'idempotencyKey'] },
      { code: 'INVALID_ISBN', field: ['input', 'book', 'isbn'] },
      { code: 'INVALID_INPUT', field: ['input', 'book', 'title'] },
      { code: 'INVALID_INPUT', field: ['input', 'book', 'author'] },
      { code: 'INVALID_PRICE', field: ['input', 'maxTotalPrice', 'cents'] },
      { code: 'UNSUPPORTED_CURRENCY', field: ['input', 'maxTotalPrice', 'currency'] },
      { code: 'INVALID_EXPIRY', field: ['input', 'expiresAt'] },
      { code: 'INVALID_ADDRESS', field: ['input', 'shippingAddress', 'name'] },
      { code: 'INVALID_ADDRESS', field: ['input', 'shippingAddress', 'country'] },
      { code: 'INVALID_PAYMENT_TOKEN', field: ['input', 'paymentToken'] },
      { code: 'INVALID_INPUT', field: ['input', 'conditions'] },
    ]);
  });

  it('reports BOOK_REQUIRED alongside other errors', () => {
    const o = create((i) => {
      i.book = {};
      i.paymentToken = '';
    });
    expect(errs(o)).toEqual([
      { code: 'BOOK_REQUIRED', field: ['input', 'book'] },
      { code: 'INVALID_PAYMENT_TOKEN', field: ['input', 'paymentToken'] },
    ]);
  });

  it('does not mutate its input', () => {
    const input = validInput();
    const snapshot = JSON.parse(JSON.stringify(input));
    validateCreateInput(input, NOW, LIMITS);
    expect(JSON.parse(JSON.stringify(input))).toEqual(snapshot);
  });
});

describe('validateUpdateInput', () => {
  const update = (input: UpdateInputShape, limits = LIMITS) => validateUpdateInput(input, NOW, limits);

  it('refuses an update with neither field', () => {
    expectOneError(update({}), 'INVALID_INPUT', ['input']);
    expectOneError(update({ maxTotalPrice: null, expiresAt: null }), 'INVALID_INPUT', ['input']);
  });

  it('accepts a price-only update', () => {
    const o = update({ maxTotalPrice: { cents: 2_000, currency: 'usd' } });
    expect(o).toStrictEqual({ ok: true, value: { maxTotalCents: 2_000 } });
  });

  it('accepts an expiry-only update', () => {
    const o = update({ expiresAt: IN_A_WEEK, maxTotalPrice: null });
    expect(o.ok).toBe(true);
    const v = valueOf(o);
    expect(Object.keys(v)).toEqual(['expiresAt']);
    expect(v.expiresAt!.getTime()).toBe(IN_A_WEEK.getTime());
  });

  it('accepts both', () => {
    const v = valueOf(update({ maxTotalPrice: { cents: MAX_PRICE_CENTS, currency: 'USD' }, expiresAt: IN_A_WEEK }));
    expect(v).toEqual({ maxTotalCents: MAX_PRICE_CENTS, expiresAt: IN_A_WEEK });
  });

  it.each([0, -1, 1.5, Number.NaN, MAX_PRICE_CENTS + 1])('refuses price cents %d', (cents) => {
    expectOneError(update({ maxTotalPrice: { cents, currency: 'USD' } }), 'INVALID_PRICE', ['input', 'maxTotalPrice', 'cents']);
  });

  it('refuses an unsupported currency', () => {
    expectOneError(
      update({ maxTotalPrice: { cents: 100, currency: 'EUR' } }),
      'UNSUPPORTED_CURRENCY',
      ['input', 'maxTotalPrice', 'currency'],
    );
  });

  it.each([
    ['past', new Date(NOW.getTime() - 1)],
    ['now', new Date(NOW.getTime())],
    ['beyond the horizon', new Date(NOW.getTime() + LIMITS.maxHorizonMs + 1)],
    ['invalid', new Date(Number.NaN)],
  ])('refuses an expiry that is %s', (_label, expiresAt) => {
    expectOneError(update({ expiresAt }), 'INVALID_EXPIRY', ['input', 'expiresAt']);
  });

  it('reports price and expiry errors together and returns no partial patch', () => {
    const o = update({ maxTotalPrice: { cents: 0, currency: 'EUR' }, expiresAt: new Date(NOW.getTime() - 1) });
    expect(errs(o)).toEqual([
      { code: 'INVALID_PRICE', field: ['input', 'maxTotalPrice', 'cents'] },
      { code: 'UNSUPPORTED_CURRENCY', field: ['input', 'maxTotalPrice', 'currency'] },
      { code: 'INVALID_EXPIRY', field: ['input', 'expiresAt'] },
    ]);
  });

  it('refuses the whole update when one of two fields is invalid', () => {
    expectOneError(
      update({ maxTotalPrice: { cents: 100, currency: 'USD' }, expiresAt: new Date(NOW.getTime() - 1) }),
      'INVALID_EXPIRY',
      ['input', 'expiresAt'],
    );
    expectOneError(
      update({ maxTotalPrice: { cents: -1, currency: 'USD' }, expiresAt: IN_A_WEEK }),
      'INVALID_PRICE',
      ['input', 'maxTotalPrice', 'cents'],
    );
  });
});

describe('bookKey', () => {
  it('uses the ISBN when present', () => {
    expect(bookKey({ isbn: '9781449373320', title: 'x', author: 'y' })).toBe('isbn:9781449373320');
  });

  it('folds title and author', () => {
    expect(bookKey({ isbn: null, title: 'Café  Society!', author: null })).toBe(bookKey({ isbn: null, title: 'cafe society', author: null }));
    expect(bookKey({ isbn: null, title: 'THE  Hobbit', author: 'J.R.R. Tolkien' })).toBe('title:the hobbit|j r r tolkien');
    expect(bookKey({ isbn: null, title: 'Cafe\u0301', author: null })).toBe(bookKey({ isbn: null, title: 'Caf\u00e9', author: null }));
  });

  it('keeps title and author apart', () => {
    expect(bookKey({ isbn: null, title: 'a b', author: 'c' })).not.toBe(bookKey({ isbn: null, title: 'a', author: 'b c' }));
    expect(bookKey({ isbn: null, title: 'Dune', author: null })).not.toBe(bookKey({ isbn: null, title: 'Dune', author: 'Herbert' }));
  });
});

describe('requestHash', () => {
  const hashOf = (mutate?: (i: CreateInputShape) => void) => requestHash(newRequest(mutate));
  const base = hashOf();

  it('is a hex SHA-256 and deterministic', () => {
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(hashOf()).toBe(base);
  });

  it('is equal for inputs that normalise the same', () => {
    // ISBN-10 vs ISBN-13, with or without separators
    expect(hashOf((i) => (i.book.isbn = '9781449373320'))).toBe(base);
    expect(hashOf((i) => (i.book.isbn = '978-1-4493-7332-0'))).toBe(base);
    // extra whitespace everywhere, case of currency and country
    expect(
      hashOf((i) => {
        i.book.title = 'Designing Data-Intensive Applications';
        i.book.author = 'Martin Kleppmann';
        i.maxTotalPrice.currency = 'USD';
        i.shippingAddress = {
          name: 'Ada Lovelace',
          line1: '1 Main St',
          line2: null,
          city: 'Springfield',
          region: '  ',
          postalCode: '94105',
          country: 'US',
        };
      }),
    ).toBe(base);
    // default conditions vs explicit, duplicated or reordered conditions
    expect(hashOf((i) => (i.conditions = ['NEW']))).toBe(base);
    expect(hashOf((i) => (i.conditions = ['NEW', 'NEW']))).toBe(base);
    expect(hashOf((i) => (i.conditions = ['USED', 'NEW']))).toBe(hashOf((i) => (i.conditions = ['NEW', 'USED', 'USED'])));
    // the same instant as a different Date object
    expect(hashOf((i) => (i.expiresAt = new Date(IN_A_WEEK.toISOString())))).toBe(base);
  });

  it.each<[string, (i: CreateInputShape) => void]>([
    ['price', (i) => (i.maxTotalPrice.cents += 1)],
    ['expiry (1 ms)', (i) => (i.expiresAt = new Date(IN_A_WEEK.getTime() + 1))],
    ['isbn', (i) => (i.book.isbn = '080442957X')],
    ['title', (i) => (i.book.title = 'Designing Data Intensive Applications')],
    ['title case', (i) => (i.book.title = 'designing data-intensive applications')],
    ['author', (i) => (i.book.author = null)],
    ['address name', (i) => (i.shippingAddress.name = 'Ada King')],
    ['address line1', (i) => (i.shippingAddress.line1 = '2 Main St')],
    ['address line2', (i) => (i.shippingAddress.line2 = 'Apt 1')],
    ['address city', (i) => (i.shippingAddress.city = 'Shelbyville')],
    ['address region', (i) => (i.shippingAddress.region = 'CA')],
    ['address postal code', (i) => (i.shippingAddress.postalCode = '94106')],
    ['address country', (i) => (i.shippingAddress.country = 'CA')],
    ['payment token', (i) => (i.paymentToken = 'tok_declined')],
    ['conditions', (i) => (i.conditions = ['USED'])],
    ['conditions (both)', (i) => (i.conditions = ['NEW', 'USED'])],
  ])('differs when the %s differs', (_label, mutate) => {
    expect(hashOf(mutate)).not.toBe(base);
  });

  it('does not confuse values moved between fields', () => {
    const a = hashOf((i) => {
      i.shippingAddress.line1 = 'A';
      i.shippingAddress.line2 = 'B';
    });
    const b = hashOf((i) => {
      i.shippingAddress.line1 = 'A B';
      i.shippingAddress.line2 = null;
    });
    expect(a).not.toBe(b);
    const c = hashOf((i) => (i.book = { isbn: null, title: 'X', author: 'Y' }));
    const d = hashOf((i) => (i.book = { isbn: null, title: 'Y', author: 'X' }));
    expect(c).not.toBe(d);
  });
});

describe('titles that fold to nothing', () => {
  it('refuses a title of punctuation alone, which could not name a book', async () => {
    const { validateCreateInput } = await import('./validation.js');
    const out = validateCreateInput(
      {
        idempotencyKey: 'k1',
        book: { title: '!!!' },
        maxTotalPrice: { cents: 1000, currency: 'USD' },
        expiresAt: new Date('2026-11-23T10:00:00Z'),
        shippingAddress: { name: 'A', line1: '1 St', city: 'C', postalCode: '12345', country: 'US' },
        paymentToken: 'tok_visa',
      },
      new Date('2026-11-22T10:00:00Z'),
      { maxHorizonMs: 30 * 86_400_000 },
    );
    expect(out).toEqual({ ok: false, errors: [{ code: 'INVALID_INPUT', field: ['input', 'book', 'title'], message: 'title must contain letters or digits' }] });
  });
});
