export { isPublicHost } from '../infra/ssrf.js';
import { ok, refused, userError, type Outcome, type UserError } from '../domain/errors.js';
import { isPublicHost } from '../infra/ssrf.js';
import { checkOrderMapping, checkQuoteMapping } from './mapping.js';
import { ALLOWED_PLACEHOLDERS, checkTemplate, literalText, usesPlaceholder, type EndpointKind } from './template.js';

export interface EndpointInputShape {
  method: string;
  path: string;
  headers?: unknown;
  body?: unknown;
  response?: unknown;
}

export interface SellerInputShape {
  id?: string | null;
  name: string;
  tier: number;
  enabled?: boolean | null;
  baseUrl: string;
  headers?: unknown;
  timeoutMs?: number | null;
  maxConcurrency?: number | null;
  maxCallsPerSecond?: number | null;
  offerTtlSeconds?: number | null;
  orderChecksPrice?: boolean | null;
  callbackSecret?: string | null;
  quote: EndpointInputShape;
  order: EndpointInputShape;
  orderStatus?: EndpointInputShape | null;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface EndpointConfig {
  method: HttpMethod;
  path: string;
  headers: Record<string, string>;
  body: unknown | null;
  response: Record<string, string>;
}

export interface SellerConfig {
  name: string;
  tier: number;
  enabled: boolean;
  baseUrl: string;
  /** undefined = not given: keep what is stored. */
  headers: Record<string, string> | undefined;
  timeoutMs: number;
  maxConcurrency: number;
  /** Calls that may start in any one-second window, fleet-wide; null = no limit. */
  maxCallsPerSecond: number | null;
  offerTtlSeconds: number;
  /**
   * The order endpoint refuses (409, 410 or 422) an order whose total is not the seller's current
   * price: a cached price may be ordered on without a fresh quote first (SPEC §3 allows either).
   */
  orderChecksPrice: boolean;
  /** undefined = not given: keep what is stored. */
  callbackSecret: string | undefined;
  quote: EndpointConfig;
  order: EndpointConfig;
  orderStatus: EndpointConfig | null;
}

export const SELLER_DEFAULTS = { timeoutMs: 2000, maxConcurrency: 16, offerTtlSeconds: 60 };

const SETTING_RANGES: Record<keyof typeof SELLER_DEFAULTS, readonly [min: number, max: number]> = {
  timeoutMs: [50, 60_000],
  maxConcurrency: [1, 1000],
  offerTtlSeconds: [0, 86_400],
};

const MAX_CALLS_PER_SECOND = 100_000;

const METHODS: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const MAX_HEADERS = 50;
const MAX_HEADER_VALUE = 4096;
const MAX_URL = 2048;
const MAX_BODY_BYTES = 64 * 1024;
const MAX_BODY_DEPTH = 64;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FORBIDDEN_HEADERS = new Set([
  'host',
  'content-length',
  'connection',
  'transfer-encoding',
  'upgrade',
  'keep-alive',
  'te',
  'trailer',
]);
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const invalid = (message: string, field: string[]) => userError('INVALID_SELLER_CONFIG', message, field);
const isAbsent = (v: unknown): v is null | undefined => v === null || v === undefined;
const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Validates and normalizes an admin's `upsertSeller` input, collecting every problem. */
export function validateSellerInput(
  input: SellerInputShape,
  opts: { sellerUrls: 'any' | 'public' },
): Outcome<SellerConfig> {
  if (!isRecord(input)) return refused(invalid('input must be an object', ['input']));
  // Text the database cannot store (NUL, lone surrogates) anywhere in the input is refused up front.
  const unstorable = unstorableStrings(input, ['input']);
  if (unstorable.length > 0) return refused(...unstorable.map((path) => invalid('must be valid Unicode text without NUL', path)));
  const errors: UserError[] = [];
  const field = (...path: string[]) => ['input', ...path];

  let name = '';
  if (typeof input.name !== 'string') {
    errors.push(invalid('name must be a string', field('name')));
  } else {
    name = input.name.trim();
    const length = [...name].length;
    if (length < 1 || length > 100) errors.push(invalid('name must be 1 to 100 characters', field('name')));
    else if (CONTROL.test(name)) errors.push(invalid('name must not contain control characters', field('name')));
  }

  const tier = input.tier;
  if (!isIntegerIn(tier, 1, 10)) errors.push(invalid('tier must be an integer from 1 to 10', field('tier')));

  let enabled = true;
  if (!isAbsent(input.enabled)) {
    if (typeof input.enabled === 'boolean') enabled = input.enabled;
    else errors.push(invalid('enabled must be a boolean', field('enabled')));
  }

  const baseUrl = checkBaseUrl(input.baseUrl, opts.sellerUrls, field('baseUrl'), errors);

  const headers = isAbsent(input.headers)
    ? undefined
    : checkHeaders(input.headers, ALLOWED_PLACEHOLDERS.shared, field('headers'), errors);

  const timeoutMs = integerSetting(input.timeoutMs, 'timeoutMs', errors);
  const maxConcurrency = integerSetting(input.maxConcurrency, 'maxConcurrency', errors);
  const offerTtlSeconds = integerSetting(input.offerTtlSeconds, 'offerTtlSeconds', errors);
  let maxCallsPerSecond: number | null = null;
  if (!isAbsent(input.maxCallsPerSecond)) {
    if (isIntegerIn(input.maxCallsPerSecond, 1, MAX_CALLS_PER_SECOND)) maxCallsPerSecond = input.maxCallsPerSecond;
    else errors.push(invalid(`maxCallsPerSecond must be null or an integer from 1 to ${MAX_CALLS_PER_SECOND}`, field('maxCallsPerSecond')));
  }

  let orderChecksPrice = false;
  if (!isAbsent(input.orderChecksPrice)) {
    if (typeof input.orderChecksPrice === 'boolean') orderChecksPrice = input.orderChecksPrice;
    else errors.push(invalid('orderChecksPrice must be a boolean', field('orderChecksPrice')));
  }

  let callbackSecret: string | undefined;
  if (!isAbsent(input.callbackSecret)) {
    const secret: unknown = input.callbackSecret;
    if (typeof secret !== 'string' || secret.length < 16 || secret.length > 256) {
      errors.push(invalid('callbackSecret must be 16 to 256 characters', field('callbackSecret')));
    } else {
      callbackSecret = secret;
    }
  }

  const quote = checkEndpoint(input.quote, 'quote', field('quote'), errors);
  const order = checkEndpoint(input.order, 'order', field('order'), errors);
  const orderStatus = isAbsent(input.orderStatus)
    ? null
    : checkEndpoint(input.orderStatus, 'orderStatus', field('orderStatus'), errors);

  // The seller can only check a total it is sent.
  if (orderChecksPrice && order && !usesPlaceholder([order.path, order.headers, order.body], ['total', 'totalCents'])) {
    errors.push(invalid('orderChecksPrice needs the order endpoint to send the total ({{totalCents}} or {{total}})', field('orderChecksPrice')));
  }

  if (errors.length > 0 || !quote || !order || orderStatus === undefined) return refused(...errors);
  return ok({
    name,
    tier,
    enabled,
    baseUrl,
    headers,
    timeoutMs,
    maxConcurrency,
    maxCallsPerSecond,
    offerTtlSeconds,
    orderChecksPrice,
    callbackSecret,
    quote,
    order,
    orderStatus,
  });
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function integerSetting(value: unknown, key: keyof typeof SETTING_RANGES, errors: UserError[]): number {
  if (isAbsent(value)) return SELLER_DEFAULTS[key];
  const [min, max] = SETTING_RANGES[key];
  if (isIntegerIn(value, min, max)) return value;
  errors.push(invalid(`${key} must be an integer from ${min} to ${max}`, ['input', key]));
  return SELLER_DEFAULTS[key];
}

function checkBaseUrl(raw: unknown, sellerUrls: 'any' | 'public', field: string[], errors: UserError[]): string {
  const fail = (message: string) => {
    errors.push(invalid(message, field));
    return '';
  };
  if (typeof raw !== 'string') return fail('baseUrl must be a string');
  if (raw.length > MAX_URL) return fail(`baseUrl must be at most ${MAX_URL} characters`);
  // new URL() silently trims and drops these; an admin typing them meant something else.
  if (/\s/.test(raw) || CONTROL.test(raw)) return fail('baseUrl must not contain whitespace or control characters');
  if (raw.includes('?') || raw.includes('#')) return fail('baseUrl must not have a query or fragment');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail('baseUrl must be an absolute http or https URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail('baseUrl must use http or https');
  if (url.username !== '' || url.password !== '' || /^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(raw)) {
    return fail('baseUrl must not contain credentials');
  }
  if (sellerUrls === 'public' && !isPublicHost(url.hostname)) {
    return fail('baseUrl must point to a public host');
  }
  return url.href.replace(/\/+$/, '');
}

function checkHeaders(
  value: unknown,
  allowed: ReadonlySet<string>,
  field: string[],
  errors: UserError[],
): Record<string, string> {
  if (!isRecord(value)) {
    errors.push(invalid('headers must be an object of header name → string value', field));
    return {};
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_HEADERS) {
    errors.push(invalid(`at most ${MAX_HEADERS} headers`, field));
    return {};
  }
  const seen = new Set<string>();
  const out: [string, string][] = [];
  for (const [name, headerValue] of entries) {
    const path = [...field, name];
    const lower = name.toLowerCase();
    if (!TOKEN.test(name)) {
      errors.push(invalid('header name must be an HTTP token', path));
    } else if (FORBIDDEN_HEADERS.has(lower)) {
      errors.push(invalid(`header ${name} is managed by the connector and cannot be set`, path));
    } else if (seen.has(lower)) {
      errors.push(invalid(`header ${name} is given twice`, path));
    }
    seen.add(lower);
    if (typeof headerValue !== 'string') {
      errors.push(invalid('header value must be a string', path));
    } else if (headerValue.length > MAX_HEADER_VALUE) {
      errors.push(invalid(`header value must be at most ${MAX_HEADER_VALUE} characters`, path));
    } else if (/[\r\n\0]/.test(headerValue) || !headerValue.isWellFormed()) {
      errors.push(invalid('header value must not contain CR, LF, NUL or broken Unicode', path));
    } else {
      errors.push(...checkTemplate(headerValue, allowed, path));
      out.push([name, headerValue]);
    }
  }
  // fromEntries defines own properties, so a header named "__proto__" stays data.
  return Object.fromEntries(out);
}

function checkEndpoint(
  input: unknown,
  kind: EndpointKind,
  field: string[],
  errors: UserError[],
): EndpointConfig | undefined {
  if (!isRecord(input)) {
    errors.push(invalid(`${kind} must be an endpoint object`, field));
    return undefined;
  }
  const before = errors.length;
  const allowed = ALLOWED_PLACEHOLDERS[kind];

  const method = typeof input.method === 'string' ? input.method.toUpperCase() : '';
  if (!(METHODS as readonly string[]).includes(method)) {
    errors.push(invalid(`method must be one of ${METHODS.join(', ')}`, [...field, 'method']));
  }

  // Spaces inside {{ name }} are template syntax and never reach the wire, so only literal text is checked.
  const path = input.path;
  const pathField = [...field, 'path'];
  if (typeof path !== 'string' || !path.startsWith('/')) {
    errors.push(invalid('path must be a string starting with /', pathField));
  } else if (path.startsWith('//')) {
    // Resolved against baseUrl, "//host" would switch hosts.
    errors.push(invalid('path must not start with //', pathField));
  } else if (path.length > MAX_URL) {
    errors.push(invalid(`path must be at most ${MAX_URL} characters`, pathField));
  } else if (/\s/.test(literalText(path)) || CONTROL.test(path)) {
    errors.push(invalid('path must not contain whitespace or control characters', pathField));
  } else {
    errors.push(...checkTemplate(path, allowed, pathField));
  }

  const headers = isAbsent(input.headers) ? {} : checkHeaders(input.headers, allowed, [...field, 'headers'], errors);

  const bodyField = [...field, 'body'];
  const body = isAbsent(input.body) ? null : input.body;
  if (body !== null) {
    if (method === 'GET') {
      errors.push(invalid('a GET endpoint cannot have a body', bodyField));
    } else {
      const jsonErrors = checkJson(body, bodyField);
      errors.push(...jsonErrors);
      if (jsonErrors.length === 0) {
        if (Buffer.byteLength(JSON.stringify(body), 'utf8') > MAX_BODY_BYTES) {
          errors.push(invalid(`body must be at most ${MAX_BODY_BYTES} bytes as JSON`, bodyField));
        } else {
          errors.push(...checkTemplate(body, allowed, bodyField));
        }
      }
    }
  }

  const responseField = [...field, 'response'];
  if (kind === 'quote') errors.push(...checkQuoteMapping(input.response, responseField));
  else errors.push(...checkOrderMapping(input.response, responseField));

  if (errors.length > before) return undefined;
  return {
    method: method as HttpMethod,
    path: path as string,
    headers,
    body,
    response: isRecord(input.response)
      ? (Object.fromEntries(Object.entries(input.response)) as Record<string, string>)
      : {},
  };
}

/** Plain JSON only: finite numbers, plain objects and arrays, bounded depth. */
function checkJson(value: unknown, field: string[]): UserError[] {
  const errors: UserError[] = [];
  const walk = (v: unknown, path: string[], depth: number): void => {
    if (depth > MAX_BODY_DEPTH) {
      errors.push(invalid(`body nests deeper than ${MAX_BODY_DEPTH} levels`, path));
      return;
    }
    if (typeof v === 'string') {
      if (!storableText(v)) errors.push(invalid('body strings must be valid Unicode text without NUL', path));
      return;
    }
    if (v === null || typeof v === 'boolean') return;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) errors.push(invalid('body numbers must be finite', path));
      return;
    }
    if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, [...path, String(i)], depth + 1));
      return;
    }
    if (typeof v === 'object') {
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) {
        for (const [key, item] of Object.entries(v)) {
          if (!storableText(key)) errors.push(invalid('body keys must be valid Unicode text without NUL', path));
          else walk(item, [...path, key], depth + 1);
        }
        return;
      }
    }
    errors.push(invalid('body must be plain JSON', path));
  };
  walk(value, field, 0);
  return errors;
}

/** Text Postgres can store in jsonb: well-formed Unicode, no NUL. */
export function storableText(s: string): boolean {
  return s.isWellFormed() && !s.includes('\u0000');
}

function unstorableStrings(v: unknown, path: string[], depth = 0, out: string[][] = []): string[][] {
  if (out.length >= 20 || depth > 70) return out;
  if (typeof v === 'string') {
    if (!storableText(v)) out.push(path);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => unstorableStrings(x, [...path, String(i)], depth + 1, out));
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (!storableText(k)) out.push(path);
      else unstorableStrings(x, [...path, k], depth + 1, out);
    }
  }
  return out;
}
