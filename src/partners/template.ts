import { userError, type UserError } from '../domain/errors.js';

export type EndpointKind = 'quote' | 'order' | 'orderStatus';

const SHARED = ['isbn', 'title', 'author', 'requestId'] as const;
const SHIPPING_FIELDS = ['name', 'line1', 'line2', 'city', 'region', 'postalCode', 'country'] as const;

/** Placeholder names each part of a seller's configuration may use (API.md, "Placeholders"). */
export const ALLOWED_PLACEHOLDERS: Record<EndpointKind | 'shared', ReadonlySet<string>> = {
  shared: new Set(SHARED),
  quote: new Set([...SHARED, 'condition', 'quoteRef', 'callbackUrl']),
  order: new Set([
    ...SHARED,
    'idempotencyKey',
    'offerId',
    'totalCents',
    'total',
    'currency',
    'shipping',
    ...SHIPPING_FIELDS.map((f) => `shipping.${f}`),
  ]),
  orderStatus: new Set([...SHARED, 'idempotencyKey', 'sellerOrderId']),
};

/** Raised when rendering meets a placeholder it cannot fill; never rendered as an empty string. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

type Token =
  | { kind: 'text'; text: string }
  | { kind: 'placeholder'; name: string; raw: string }
  | { kind: 'malformed'; raw: string };

const NAME = /^\s*([A-Za-z][A-Za-z0-9_.]*)\s*$/;

function tokenize(template: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  while (pos < template.length) {
    const open = template.indexOf('{{', pos);
    if (open === -1) break;
    if (open > pos) tokens.push({ kind: 'text', text: template.slice(pos, open) });
    const close = template.indexOf('}}', open + 2);
    if (close === -1) {
      tokens.push({ kind: 'malformed', raw: template.slice(open) });
      return tokens;
    }
    const raw = template.slice(open, close + 2);
    const match = NAME.exec(template.slice(open + 2, close));
    tokens.push(match ? { kind: 'placeholder', name: match[1]!, raw } : { kind: 'malformed', raw });
    pos = close + 2;
  }
  if (pos < template.length) tokens.push({ kind: 'text', text: template.slice(pos) });
  return tokens;
}

/** Placeholder names (unique, in order of appearance) and malformed `{{…` fragments of a template. */
export function placeholdersIn(template: string): { names: string[]; malformed: string[] } {
  const names = new Set<string>();
  const malformed: string[] = [];
  for (const token of tokenize(template)) {
    if (token.kind === 'placeholder') names.add(token.name);
    else if (token.kind === 'malformed') malformed.push(token.raw);
  }
  return { names: [...names], malformed };
}

/** The template's literal text, placeholders removed (e.g. to check a path's characters). */
export function literalText(template: string): string {
  return tokenize(template)
    .map((token) => (token.kind === 'placeholder' ? '' : token.kind === 'text' ? token.text : token.raw))
    .join('');
}

const excerpt = (s: string) => (s.length > 40 ? `${s.slice(0, 40)}…` : s);

/**
 * Validates every string inside `value` (recursively; object keys are literal) against the
 * allowed placeholder names.
 */
export function checkTemplate(value: unknown, allowed: ReadonlySet<string>, field: string[]): UserError[] {
  const errors: UserError[] = [];
  eachString(value, field, (s, path) => {
    const { names, malformed } = placeholdersIn(s);
    for (const raw of malformed) {
      errors.push(userError('INVALID_SELLER_CONFIG', `Malformed placeholder "${excerpt(raw)}"`, path));
    }
    for (const name of names) {
      if (!allowed.has(name)) {
        errors.push(userError('INVALID_SELLER_CONFIG', `Unknown placeholder {{${name}}}`, path));
      }
    }
  });
  return errors;
}

/** Whether any string inside `value` (recursively) holds one of the placeholders named. */
export function usesPlaceholder(value: unknown, names: readonly string[]): boolean {
  let found = false;
  eachString(value, [], (s) => {
    found ||= placeholdersIn(s).names.some((n) => names.includes(n));
  });
  return found;
}

/** Calls `visit` with every string inside `value` and its path (object keys are literal). */
function eachString(value: unknown, field: string[], visit: (s: string, path: string[]) => void): void {
  const walk = (v: unknown, path: string[]): void => {
    if (typeof v === 'string') visit(v, path);
    else if (Array.isArray(v)) v.forEach((item, i) => walk(item, [...path, String(i)]));
    else if (v !== null && typeof v === 'object') for (const [key, item] of Object.entries(v)) walk(item, [...path, key]);
  };
  walk(value, field);
}

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

function lookup(values: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(values, name)) return values[name];
  if (name.includes('.')) {
    let current: unknown = values;
    let found = true;
    for (const segment of name.split('.')) {
      if (
        FORBIDDEN_SEGMENTS.has(segment) ||
        current === null ||
        typeof current !== 'object' ||
        !Object.hasOwn(current, segment)
      ) {
        found = false;
        break;
      }
      current = (current as Record<string, unknown>)[segment];
    }
    if (found) return current;
  }
  throw new TemplateError(`No value for placeholder {{${name}}}`);
}

function asText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Templates kept tokenized for rendering: a seller's few templates are rendered on every call. */
const RENDERED_TEMPLATES_KEPT = 1_000;
const renderTokens = new Map<string, readonly Token[]>();

/** `tokenize`, remembered for the most recent templates rendered (the oldest is forgotten first). */
function tokensOf(template: string): readonly Token[] {
  let tokens = renderTokens.get(template);
  if (tokens === undefined) {
    tokens = tokenize(template);
    if (renderTokens.size >= RENDERED_TEMPLATES_KEPT) renderTokens.delete(renderTokens.keys().next().value!);
    renderTokens.set(template, tokens);
  }
  return tokens;
}

// Single pass over the template's tokens: inserted values are never scanned for placeholders.
function interpolate(template: string, values: Record<string, unknown>, encode: (s: string) => string): string {
  let out = '';
  for (const token of tokensOf(template)) {
    if (token.kind === 'text') out += token.text;
    else if (token.kind === 'placeholder') out += encode(asText(lookup(values, token.name)));
    else throw new TemplateError(`Malformed placeholder "${excerpt(token.raw)}"`);
  }
  return out;
}

/** Renders a URL path; every value is URL-encoded. */
export function renderPath(template: string, values: Record<string, unknown>): string {
  return interpolate(template, values, encodeURIComponent);
}

/** Renders a header value or other plain text. */
export function renderText(template: string, values: Record<string, unknown>): string {
  return interpolate(template, values, (s) => s);
}

/** Renders a JSON body: a string that is exactly one placeholder keeps the value's JSON type. */
export function renderBody(json: unknown, values: Record<string, unknown>): unknown {
  if (typeof json === 'string') {
    // Literal text (most of a body) is itself: nothing to look up or remember.
    if (!json.includes('{{')) return json;
    const tokens = tokensOf(json);
    const only = tokens[0];
    if (tokens.length === 1 && only?.kind === 'placeholder') return lookup(values, only.name) ?? null;
    return renderText(json, values);
  }
  if (Array.isArray(json)) return json.map((item) => renderBody(item, values));
  if (json !== null && typeof json === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(json)) {
      // defineProperty keeps a literal "__proto__" key an own property instead of setting the prototype.
      Object.defineProperty(out, key, {
        value: renderBody(item, values),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return json;
}
