import { createHash } from 'node:crypto';
import { type Outcome, type UserError, ok, refused, userError } from '../domain/errors.js';
import { normalizeIsbn } from '../domain/isbn.js';
import { COUNTRY_CODES } from '../domain/countries.js';
import { BOOK_CONDITIONS, type Address, type Book, type BookCondition } from '../domain/types.js';

/** Shapes of the GraphQL inputs as the transport hands them over (already type-coerced). */
export interface MoneyInputShape {
  cents: number;
  /** The schema defaults it to USD. */
  currency?: string;
}
export interface CreateInputShape {
  idempotencyKey: string;
  book: { isbn?: string | null; title?: string | null; author?: string | null };
  maxTotalPrice: MoneyInputShape;
  expiresAt: Date;
  shippingAddress: {
    name: string;
    line1: string;
    line2?: string | null;
    city: string;
    region?: string | null;
    postalCode: string;
    country: string;
  };
  paymentToken: string;
  conditions?: readonly string[] | null;
}
export interface UpdateInputShape {
  maxTotalPrice?: MoneyInputShape | null;
  expiresAt?: Date | null;
}

/** A create input that passed validation, normalised (ISBN-13, trimmed strings, upper-case codes). */
export interface NewRequest {
  idempotencyKey: string;
  book: Book;
  bookKey: string;
  conditions: BookCondition[];
  maxTotalCents: number;
  currency: string;
  expiresAt: Date;
  shippingAddress: Address;
  paymentToken: string;
}

export interface RequestPatch {
  maxTotalCents?: number;
  expiresAt?: Date;
}

export interface ValidationLimits {
  /** Farthest deadline accepted, counted from now. */
  maxHorizonMs: number;
}

export const SUPPORTED_CURRENCIES: ReadonlySet<string> = new Set(['USD']);
/** A ceiling that keeps totals far from integer overflow and catches unit mistakes. */
export const MAX_PRICE_CENTS = 10_000_000;
const MAX = { title: 500, author: 300, isbn: 32, key: 128, name: 200, line: 200, city: 100, region: 100, postal: 16, token: 256 };
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:~-]+$/;
// API.md: any token starting with tok_ is the provider's to judge; we only keep it printable ASCII.
const PAYMENT_TOKEN = /^tok_[\x21-\x7E]+$/;
const POSTAL_CODE = /^[A-Za-z0-9][A-Za-z0-9 -]*$/;
// C0/C1 controls, and the Unicode line/paragraph separators; tabs and newlines never belong in these fields.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export function validateCreateInput(input: CreateInputShape, now: Date, limits: ValidationLimits): Outcome<NewRequest> {
  const errors: UserError[] = [];
  const at = (...p: string[]) => ['input', ...p];

  const key = input.idempotencyKey;
  if (key.length === 0 || key.length > MAX.key || !IDEMPOTENCY_KEY.test(key)) {
    errors.push(userError('INVALID_INPUT', `idempotencyKey must be 1–${MAX.key} characters of A–Z, a–z, 0–9 and . _ : ~ -`, at('idempotencyKey')));
  }

  const book = validateBook(input.book, errors);
  const price = validateMoney(input.maxTotalPrice, at('maxTotalPrice'), errors);
  const expiresAt = validateExpiry(input.expiresAt, now, limits, at('expiresAt'), errors);
  const address = validateAddress(input.shippingAddress, errors);

  const token = input.paymentToken;
  if (token.length > MAX.token || !PAYMENT_TOKEN.test(token)) {
    errors.push(userError('INVALID_PAYMENT_TOKEN', 'paymentToken must be a payment provider token (tok_…)', at('paymentToken')));
  }

  let conditions: BookCondition[] = ['NEW'];
  if (input.conditions != null) {
    const known = new Set<string>(BOOK_CONDITIONS);
    if (input.conditions.length === 0 || input.conditions.some((c) => !known.has(c))) {
      errors.push(userError('INVALID_INPUT', 'conditions must list at least one of NEW, USED', at('conditions')));
    } else {
      conditions = BOOK_CONDITIONS.filter((c) => input.conditions!.includes(c));
    }
  }

  if (errors.length > 0 || !book || !price || !expiresAt || !address) return refused(...errors);
  return ok({
    idempotencyKey: key,
    book,
    bookKey: bookKey(book),
    conditions,
    maxTotalCents: price.cents,
    currency: price.currency,
    expiresAt,
    shippingAddress: address,
    paymentToken: token,
  });
}

export function validateUpdateInput(input: UpdateInputShape, now: Date, limits: ValidationLimits): Outcome<RequestPatch> {
  const errors: UserError[] = [];
  if (input.maxTotalPrice == null && input.expiresAt == null) {
    return refused(userError('INVALID_INPUT', 'give maxTotalPrice, expiresAt or both', ['input']));
  }
  const patch: RequestPatch = {};
  if (input.maxTotalPrice != null) {
    const price = validateMoney(input.maxTotalPrice, ['input', 'maxTotalPrice'], errors);
    if (price) patch.maxTotalCents = price.cents;
  }
  if (input.expiresAt != null) {
    const expiresAt = validateExpiry(input.expiresAt, now, limits, ['input', 'expiresAt'], errors);
    if (expiresAt) patch.expiresAt = expiresAt;
  }
  return errors.length > 0 ? refused(...errors) : ok(patch);
}

/**
 * Identity of a book for coalescing and offer caching: the ISBN-13 when known, else the title and
 * author folded (case, accents, punctuation, spacing) so trivially different spellings meet.
 */
export function bookKey(book: Book): string {
  if (book.isbn) return `isbn:${book.isbn}`;
  return `title:${fold(book.title ?? '')}|${fold(book.author ?? '')}`;
}

/** Stable hash of a normalised create input, to tell a retry from a reuse of the same key. */
export function requestHash(req: NewRequest): string {
  const canonical = JSON.stringify([
    req.book.isbn,
    req.book.title,
    req.book.author,
    req.conditions,
    req.maxTotalCents,
    req.currency,
    req.expiresAt.toISOString(),
    req.shippingAddress,
    req.paymentToken,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

function fold(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

function validateBook(input: CreateInputShape['book'], errors: UserError[]): Book | null {
  const at = (f: string) => ['input', 'book', f];
  const isbnRaw = blankToNull(input.isbn);
  const title = blankToNull(input.title);
  const author = blankToNull(input.author);
  let valid = true;
  let isbn: string | null = null;
  if (isbnRaw === null && title === null) {
    errors.push(userError('BOOK_REQUIRED', 'give the book’s isbn or its title', ['input', 'book']));
    valid = false;
  }
  if (isbnRaw !== null) {
    isbn = isbnRaw.length <= MAX.isbn ? normalizeIsbn(isbnRaw) : null;
    if (isbn === null) {
      errors.push(userError('INVALID_ISBN', 'isbn is not a valid ISBN-10 or ISBN-13', at('isbn')));
      valid = false;
    }
  }
  if (!checkText(title, MAX.title, 'INVALID_INPUT', 'title', at('title'), errors)) valid = false;
  else if (title !== null && fold(title) === '') {
    // A title of punctuation alone would fold to an empty key and coalesce with every other such title.
    errors.push(userError('INVALID_INPUT', 'title must contain letters or digits', at('title')));
    valid = false;
  }
  if (!checkText(author, MAX.author, 'INVALID_INPUT', 'author', at('author'), errors)) valid = false;
  return valid ? { isbn, title, author } : null;
}

function validateMoney(input: MoneyInputShape, field: string[], errors: UserError[]): { cents: number; currency: string } | null {
  let valid = true;
  if (!Number.isSafeInteger(input.cents) || input.cents <= 0 || input.cents > MAX_PRICE_CENTS) {
    errors.push(userError('INVALID_PRICE', `cents must be a whole number from 1 to ${MAX_PRICE_CENTS}`, [...field, 'cents']));
    valid = false;
  }
  const currency = (input.currency ?? 'USD').trim().toUpperCase();
  if (!SUPPORTED_CURRENCIES.has(currency)) {
    errors.push(userError('UNSUPPORTED_CURRENCY', `currency must be one of ${[...SUPPORTED_CURRENCIES].join(', ')}`, [...field, 'currency']));
    valid = false;
  }
  return valid ? { cents: input.cents, currency } : null;
}

function validateExpiry(expiresAt: Date, now: Date, limits: ValidationLimits, field: string[], errors: UserError[]): Date | null {
  const t = expiresAt.getTime();
  if (!Number.isFinite(t) || t <= now.getTime()) {
    errors.push(userError('INVALID_EXPIRY', 'expiresAt must be in the future', field));
    return null;
  }
  if (t > now.getTime() + limits.maxHorizonMs) {
    const days = Math.floor(limits.maxHorizonMs / 86_400_000);
    errors.push(userError('INVALID_EXPIRY', `expiresAt must be within ${days > 0 ? `${days} days` : `${limits.maxHorizonMs} ms`} from now`, field));
    return null;
  }
  return new Date(t);
}

function validateAddress(input: CreateInputShape['shippingAddress'], errors: UserError[]): Address | null {
  const at = (f: string) => ['input', 'shippingAddress', f];
  const before = errors.length;
  const required = (value: string, max: number, name: string): string => {
    const v = value.trim();
    if (v.length === 0) errors.push(userError('INVALID_ADDRESS', `${name} is required`, at(name)));
    else checkText(v, max, 'INVALID_ADDRESS', name, at(name), errors);
    return v;
  };
  const optional = (value: string | null | undefined, max: number, name: string): string | null => {
    const v = blankToNull(value);
    checkText(v, max, 'INVALID_ADDRESS', name, at(name), errors);
    return v;
  };
  const name = required(input.name, MAX.name, 'name');
  const line1 = required(input.line1, MAX.line, 'line1');
  const line2 = optional(input.line2, MAX.line, 'line2');
  const city = required(input.city, MAX.city, 'city');
  const region = optional(input.region, MAX.region, 'region');
  const postalCode = input.postalCode.trim();
  if (postalCode.length === 0 || postalCode.length > MAX.postal || !POSTAL_CODE.test(postalCode)) {
    errors.push(userError('INVALID_ADDRESS', `postalCode must be 1–${MAX.postal} letters, digits, spaces or hyphens`, at('postalCode')));
  }
  const country = input.country.trim().toUpperCase();
  if (!COUNTRY_CODES.has(country)) {
    errors.push(userError('INVALID_ADDRESS', 'country must be an ISO 3166-1 alpha-2 code', at('country')));
  }
  if (errors.length > before) return null;
  return { name, line1, line2, city, region, postalCode, country };
}

function checkText(
  value: string | null,
  max: number,
  code: 'INVALID_INPUT' | 'INVALID_ADDRESS',
  name: string,
  field: string[],
  errors: UserError[],
): boolean {
  if (value === null) return true;
  if (value.length > max) {
    errors.push(userError(code, `${name} must be at most ${max} characters`, field));
    return false;
  }
  if (CONTROL.test(value)) {
    errors.push(userError(code, `${name} must not contain control characters`, field));
    return false;
  }
  if (!value.isWellFormed()) {
    // A lone UTF-16 surrogate is not text: the database refuses to store it.
    errors.push(userError(code, `${name} is not valid Unicode text`, field));
    return false;
  }
  return true;
}

function blankToNull(value: string | null | undefined): string | null {
  if (value == null) return null;
  const v = value.trim();
  return v.length === 0 ? null : v;
}
