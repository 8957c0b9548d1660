import { userError, type UserError } from '../domain/errors.js';

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

/** Reads a dot path (`a.b.0.c`) from parsed JSON; own properties only, undefined when missing. */
export function readPath(obj: unknown, path: string): unknown {
  if (path === '') return undefined;
  let current = obj;
  for (const segment of path.split('.')) {
    if (FORBIDDEN_SEGMENTS.has(segment) || current === null || typeof current !== 'object') return undefined;
    if (Array.isArray(current) && !/^(0|[1-9]\d*)$/.test(segment)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

export type Condition = 'NEW' | 'USED';
export type AmountFormat = 'decimal' | 'cents';

export interface ParsedOffer {
  offerId: string | null;
  condition: Condition;
  itemCents: number;
  shippingCents: number;
  taxCents: number;
  feesCents: number;
  totalCents: number;
  currency: string;
  inventory: number | null;
  available: boolean;
}

export interface QuoteMapping {
  offers?: string;
  itemPrice: string;
  shipping?: string;
  tax?: string;
  fees?: string;
  currency?: string;
  inventory?: string;
  available?: string;
  condition?: string;
  offerId?: string;
  amounts?: AmountFormat;
}

export interface OrderMapping {
  orderId?: string;
  total?: string;
  deliveryEta?: string;
  amounts?: AmountFormat;
}

// Digits, optional fraction, optional exponent: what JSON numbers and String(number) produce, minus signs.
const DECIMAL = /^(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;
const MAX_EXPONENT = 400;

/** Decimal amount → integer cents, rounded half-up on the exact decimal digits (no float arithmetic). */
function decimalToCents(text: string): number | null {
  const match = DECIMAL.exec(text);
  if (!match) return null;
  const exponent = match[3] === undefined ? 0 : Number(match[3]);
  if (Math.abs(exponent) > MAX_EXPONENT) return null;
  const digits = match[1]! + (match[2] ?? '');
  // Position of the decimal point within `digits`, shifted two places right to count cents.
  const point = match[1]!.length + exponent + 2;
  let whole: string;
  let next: string;
  if (point <= 0) {
    whole = '0';
    next = point === 0 ? digits[0]! : '0';
  } else if (point >= digits.length) {
    whole = digits + '0'.repeat(point - digits.length);
    next = '0';
  } else {
    whole = digits.slice(0, point);
    next = digits[point]!;
  }
  const cents = BigInt(whole) + (next >= '5' ? 1n : 0n);
  return cents <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(cents) : null;
}

/** Reads a non-negative amount as integer cents; null when it is not one. */
export function parseAmount(raw: unknown, format: AmountFormat = 'decimal'): number | null {
  if (format === 'cents') {
    if (typeof raw === 'number') return Number.isSafeInteger(raw) && raw >= 0 ? raw + 0 : null;
    if (typeof raw === 'string' && /^\d+$/.test(raw.trim())) {
      const n = Number(raw.trim());
      return Number.isSafeInteger(n) ? n : null;
    }
    return null;
  }
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw) || raw < 0) return null;
    return decimalToCents(String(raw + 0));
  }
  if (typeof raw === 'string') return decimalToCents(raw.trim());
  return null;
}

const isAbsent = (v: unknown) => v === undefined || v === null;

function parseBoolean(raw: unknown): boolean | null {
  if (typeof raw === 'boolean') return raw;
  if (raw === 1 || raw === 0) return raw === 1;
  if (typeof raw === 'string') {
    const s = raw.trim().toLowerCase();
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0') return false;
  }
  return null;
}

function parseInventory(raw: unknown): number | null {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) && raw >= 0 ? raw + 0 : null;
  if (typeof raw === 'string' && /^\d+$/.test(raw.trim())) {
    const n = Number(raw.trim());
    return Number.isSafeInteger(n) ? n : null;
  }
  return null;
}

function parseId(raw: unknown): string | null | undefined {
  if (typeof raw === 'string') return raw === '' ? null : raw;
  if (typeof raw === 'number' && Number.isFinite(raw)) return String(raw);
  return isAbsent(raw) ? null : undefined;
}

type OfferResult = { ok: true; offer: ParsedOffer } | { ok: false; reason: string };

function parseOffer(item: unknown, mapping: QuoteMapping): OfferResult {
  const format = mapping.amounts ?? 'decimal';
  const fail = (field: string, why: string): OfferResult => ({ ok: false, reason: `${field}: ${why}` });

  const rawItem = readPath(item, mapping.itemPrice);
  if (isAbsent(rawItem)) return fail('itemPrice', 'missing');
  const itemCents = parseAmount(rawItem, format);
  if (itemCents === null) return fail('itemPrice', `not a ${format} amount`);

  const extras: Record<'shipping' | 'tax' | 'fees', number> = { shipping: 0, tax: 0, fees: 0 };
  for (const key of ['shipping', 'tax', 'fees'] as const) {
    const path = mapping[key];
    const raw = path === undefined ? undefined : readPath(item, path);
    if (isAbsent(raw)) continue;
    const cents = parseAmount(raw, format);
    if (cents === null) return fail(key, `not a ${format} amount`);
    extras[key] = cents;
  }
  const totalCents = itemCents + extras.shipping + extras.tax + extras.fees;
  if (!Number.isSafeInteger(totalCents)) return fail('total', 'too large');

  let currency = 'USD';
  const rawCurrency = mapping.currency === undefined ? undefined : readPath(item, mapping.currency);
  if (!isAbsent(rawCurrency)) {
    if (typeof rawCurrency !== 'string' || !/^[A-Za-z]{3}$/.test(rawCurrency.trim())) {
      return fail('currency', 'not a three-letter currency code');
    }
    currency = rawCurrency.trim().toUpperCase();
  }

  let inventory: number | null = null;
  const rawInventory = mapping.inventory === undefined ? undefined : readPath(item, mapping.inventory);
  if (!isAbsent(rawInventory)) {
    inventory = parseInventory(rawInventory);
    if (inventory === null) return fail('inventory', 'not a non-negative integer');
  }

  let available = inventory === null ? true : inventory > 0;
  const rawAvailable = mapping.available === undefined ? undefined : readPath(item, mapping.available);
  if (!isAbsent(rawAvailable)) {
    const parsed = parseBoolean(rawAvailable);
    if (parsed === null) return fail('available', 'not a boolean');
    available = parsed;
  }

  let condition: Condition = 'NEW';
  const rawCondition = mapping.condition === undefined ? undefined : readPath(item, mapping.condition);
  if (!isAbsent(rawCondition)) {
    if (typeof rawCondition !== 'string') return fail('condition', 'not a string');
    // Anything not plainly "new" counts as used, so a buyer asking for new never gets a guess.
    condition = rawCondition.trim().toLowerCase() === 'new' ? 'NEW' : 'USED';
  }

  const offerId = parseId(mapping.offerId === undefined ? undefined : readPath(item, mapping.offerId));
  if (offerId === undefined) return fail('offerId', 'not a string or number');

  return {
    ok: true,
    offer: {
      offerId,
      condition,
      itemCents,
      shippingCents: extras.shipping,
      taxCents: extras.tax,
      feesCents: extras.fees,
      totalCents,
      currency,
      inventory,
      available,
    },
  };
}

/**
 * Reads a quote response. Any unreadable offer makes the whole response unreadable: a partner
 * sending garbage is a failed call, not a partial answer.
 */
export function parseQuoteResponse(
  body: unknown,
  mapping: QuoteMapping,
): { ok: true; offers: ParsedOffer[] } | { ok: false; reason: string } {
  let items: unknown[];
  if (mapping.offers === undefined) {
    items = [body];
  } else {
    const list = readPath(body, mapping.offers);
    if (!Array.isArray(list)) return { ok: false, reason: `offers: not an array at "${mapping.offers}"` };
    items = list;
  }
  const offers: ParsedOffer[] = [];
  for (const [i, item] of items.entries()) {
    const result = parseOffer(item, mapping);
    if (!result.ok) {
      return { ok: false, reason: mapping.offers === undefined ? result.reason : `offers[${i}].${result.reason}` };
    }
    offers.push(result.offer);
  }
  return { ok: true, offers };
}

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

function parseIsoDate(raw: unknown): Date | null {
  if (typeof raw !== 'string') return null;
  const match = ISO_DATE.exec(raw.trim());
  if (!match) return null;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // Date.parse rolls 2024-02-30 over to March; refuse impossible calendar dates instead.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return null;
  const time = Date.parse(raw.trim());
  return Number.isNaN(time) ? null : new Date(time);
}

/** Reads an order (or order-status) response; every field is null when unmapped or unreadable. */
export function parseOrderResponse(
  body: unknown,
  mapping: OrderMapping,
): { orderId: string | null; totalCents: number | null; deliveryEta: Date | null } {
  const read = (path: string | undefined) => (path === undefined ? undefined : readPath(body, path));
  return {
    orderId: parseId(read(mapping.orderId)) ?? null,
    totalCents: parseAmount(read(mapping.total), mapping.amounts ?? 'decimal'),
    deliveryEta: parseIsoDate(read(mapping.deliveryEta)),
  };
}

const QUOTE_KEYS: readonly string[] = [
  'offers',
  'itemPrice',
  'shipping',
  'tax',
  'fees',
  'currency',
  'inventory',
  'available',
  'condition',
  'offerId',
  'amounts',
];
const ORDER_KEYS: readonly string[] = ['orderId', 'total', 'deliveryEta', 'amounts'];
const MAX_PATH_LENGTH = 200;

function checkMapping(
  response: unknown,
  field: string[],
  keys: readonly string[],
  required: readonly string[],
): UserError[] {
  const invalid = (message: string, path: string[]) => userError('INVALID_SELLER_CONFIG', message, path);
  if (response === null || typeof response !== 'object' || Array.isArray(response)) {
    return [invalid('Response mapping must be an object of field → dot path', field)];
  }
  const errors: UserError[] = [];
  for (const [key, value] of Object.entries(response)) {
    const path = [...field, key];
    if (!keys.includes(key)) {
      errors.push(invalid(`Unknown response mapping field "${key}"; expected one of ${keys.join(', ')}`, path));
    } else if (key === 'amounts') {
      if (value !== 'decimal' && value !== 'cents') errors.push(invalid('amounts must be "decimal" or "cents"', path));
    } else if (typeof value !== 'string' || value === '') {
      errors.push(invalid('Must be a non-empty dot path', path));
    } else if (value.length > MAX_PATH_LENGTH) {
      errors.push(invalid(`Dot path longer than ${MAX_PATH_LENGTH} characters`, path));
    } else if (!value.isWellFormed() || value.includes('\u0000')) {
      errors.push(invalid('Dot path must be valid Unicode text without NUL', path));
    } else if (value.split('.').some((s) => s === '' || FORBIDDEN_SEGMENTS.has(s))) {
      errors.push(invalid('Dot path has an empty or forbidden segment', path));
    }
  }
  for (const key of required) {
    if (!Object.hasOwn(response, key)) errors.push(invalid(`${key} is required`, [...field, key]));
  }
  return errors;
}

/** Validates a quote endpoint's `response` mapping (required, must map itemPrice). */
export function checkQuoteMapping(response: unknown, field: string[]): UserError[] {
  return checkMapping(response, field, QUOTE_KEYS, ['itemPrice']);
}

/** Validates an order or orderStatus endpoint's `response` mapping (optional). */
export function checkOrderMapping(response: unknown, field: string[]): UserError[] {
  if (response === undefined || response === null) return [];
  return checkMapping(response, field, ORDER_KEYS, []);
}
