import { parseArgs } from 'node:util';
import type { Address } from '../domain/types.js';
import { EXIT } from './outcome.js';

/**
 * `npm run buy` arguments: parsed with node:util parseArgs, checked for shape only. What the
 * broker validates (ISBN checksum, currency, deadline horizon, address) is left to it, so the
 * user sees the API's own userError codes rather than a second, drifting copy of its rules.
 */

export const DEFAULT_URL = 'http://127.0.0.1:4000';
export const DEFAULT_EXPIRES = '1h';
export const DEFAULT_PAYMENT_TOKEN = 'tok_visa';

/** Where the demo ships to unless told otherwise: any valid address will do for the sandbox. */
export const DEMO_ADDRESS: ShippingAddress = {
  name: 'Ada Lovelace',
  line1: '1 Main St',
  line2: null,
  city: 'Springfield',
  region: 'IL',
  postalCode: '62701',
  country: 'US',
};

/** The API's ShippingAddress input, as the domain names it. */
export type ShippingAddress = Address;

export interface Endpoint {
  /** The GraphQL endpoint over HTTP (`…/graphql`). */
  http: string;
  /** The same endpoint over WebSocket. */
  ws: string;
}

interface Common {
  endpoint: Endpoint;
  /** Whether the broker was named with --url (a command to run again must say it too). */
  urlFlag: boolean;
  /** From --token or BROKER_TOKEN; undefined: mint one from the local secret (token.ts). */
  token: { value: string; from: '--token' | 'BROKER_TOKEN' } | undefined;
  json: boolean;
  /** Keep streaming through QUOTED and OUT_OF_STOCK until a terminal status. */
  wait: boolean;
}

export interface BuyOptions extends Common {
  kind: 'buy';
  input: {
    idempotencyKey: string;
    book: { isbn?: string; title?: string; author?: string };
    maxTotalPrice: { cents: number; currency: string };
    expiresAt: string;
    shippingAddress: ShippingAddress;
    paymentToken: string;
    conditions?: Array<'NEW' | 'USED'>;
  };
}

export interface WatchOptions extends Common {
  kind: 'watch';
  id: string;
}

export type Command = { kind: 'help' } | BuyOptions | WatchOptions;

/** Bad usage: printed with a pointer to --help, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = EXIT.USAGE;
}

const OPTIONS = {
  isbn: { type: 'string' },
  title: { type: 'string' },
  author: { type: 'string' },
  max: { type: 'string' },
  currency: { type: 'string' },
  condition: { type: 'string', multiple: true },
  expires: { type: 'string' },
  'ship-name': { type: 'string' },
  'ship-line1': { type: 'string' },
  'ship-line2': { type: 'string' },
  'ship-city': { type: 'string' },
  'ship-region': { type: 'string' },
  'ship-postal-code': { type: 'string' },
  'ship-country': { type: 'string' },
  'payment-token': { type: 'string' },
  key: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  watch: { type: 'string' },
  wait: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Flags that describe a new request: meaningless with --watch. */
const CREATE_ONLY = [
  'isbn',
  'title',
  'author',
  'max',
  'currency',
  'condition',
  'expires',
  'payment-token',
  'key',
  'ship-name',
  'ship-line1',
  'ship-line2',
  'ship-city',
  'ship-region',
  'ship-postal-code',
  'ship-country',
] as const;

export interface ParseContext {
  env: Record<string, string | undefined>;
  now: Date;
  newKey: () => string;
}

export function parseCommand(argv: readonly string[], ctx: ParseContext): Command {
  let values: ReturnType<typeof parse>['values'];
  try {
    ({ values } = parse(argv));
  } catch (e) {
    // parseArgs's messages name the flag ("Unknown option '--isbnx'"); keep them, drop its hints.
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  if (values.help) return { kind: 'help' };

  const common: Common = {
    endpoint: parseEndpoint(values.url ?? (ctx.env.BROKER_URL || DEFAULT_URL)),
    urlFlag: values.url !== undefined,
    token: givenToken(values.token, ctx.env.BROKER_TOKEN),
    json: values.json ?? false,
    wait: values.wait ?? false,
  };

  if (values.watch !== undefined) {
    const extra = CREATE_ONLY.filter((f) => values[f] !== undefined);
    if (extra.length > 0) throw new UsageError(`--watch follows an existing request; it takes no ${extra.map((f) => `--${f}`).join(', ')}`);
    const id = values.watch.trim();
    if (!id) throw new UsageError('--watch needs the id of a request');
    return { kind: 'watch', id, ...common };
  }

  const isbn = nonEmpty(values.isbn);
  const title = nonEmpty(values.title);
  const author = nonEmpty(values.author);
  if (!isbn && !title) throw new UsageError('say which book: --isbn 9780141439518, or --title "Pride and Prejudice" (with --author if you like)');
  if (values.max === undefined) throw new UsageError('say the most you will pay in total, e.g. --max 45.00');

  const currency = (values.currency ?? 'USD').trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency)) throw new UsageError(`--currency must be a three-letter ISO 4217 code such as USD (got "${values.currency}")`);

  const d = DEMO_ADDRESS;
  const shippingAddress: ShippingAddress = {
    name: values['ship-name'] ?? d.name,
    line1: values['ship-line1'] ?? d.line1,
    line2: values['ship-line2'] ?? d.line2,
    city: values['ship-city'] ?? d.city,
    region: values['ship-region'] ?? d.region,
    postalCode: values['ship-postal-code'] ?? d.postalCode,
    country: (values['ship-country'] ?? d.country).toUpperCase(),
  };

  const conditions = parseConditions(values.condition);
  return {
    kind: 'buy',
    ...common,
    input: {
      idempotencyKey: nonEmpty(values.key) ?? ctx.newKey(),
      book: { ...(isbn ? { isbn } : {}), ...(title ? { title } : {}), ...(author ? { author } : {}) },
      maxTotalPrice: { cents: parseMoney(values.max, '--max'), currency },
      expiresAt: parseDeadline(values.expires ?? DEFAULT_EXPIRES, ctx.now).toISOString(),
      shippingAddress,
      paymentToken: values['payment-token'] ?? DEFAULT_PAYMENT_TOKEN,
      ...(conditions ? { conditions } : {}),
    },
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false });
}

function givenToken(flag: string | undefined, env: string | undefined): Common['token'] {
  // A pasted "Bearer eyJ…" works too: the header prefix is added when sending.
  const strip = (t: string | undefined) => nonEmpty(t)?.replace(/^Bearer\s+/i, '');
  const fromFlag = strip(flag);
  if (fromFlag) return { value: fromFlag, from: '--token' };
  const fromEnv = strip(env);
  return fromEnv ? { value: fromEnv, from: 'BROKER_TOKEN' } : undefined;
}

const nonEmpty = (s: string | undefined): string | undefined => (s !== undefined && s.trim() !== '' ? s.trim() : undefined);

const MAX_CENTS = 2 ** 31 - 1;

/**
 * A decimal amount in the currency's main unit ("45", "45.5", "45.00", "1,299.99") as integer
 * cents, computed on the digits: 0.1 + 0.2 never enters into it.
 */
export function parseMoney(text: string, flag = '--max'): number {
  const m = /^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?$/.exec(text.trim().replace(/^\$/, ''));
  if (!m) throw new UsageError(`${flag} must be an amount such as 45 or 45.00 (got "${text}")`);
  const cents = Number(m[1]!.replaceAll(',', '')) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  if (!Number.isSafeInteger(cents) || cents > MAX_CENTS) throw new UsageError(`${flag} is too large (got "${text}")`);
  return cents;
}

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;

/**
 * A deadline: a duration from now ("90s", "30m", "2h", "1d", "1h30m") or an ISO-8601 time
 * ("2026-12-01T18:00:00Z"). Whether it is too far ahead is the broker's call (INVALID_EXPIRY).
 */
export function parseDeadline(text: string, now: Date): Date {
  const s = text.trim();
  const duration = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/i.exec(s);
  if (duration && s !== '') {
    const [, d, h, m, sec] = duration;
    const ms = Number(d ?? 0) * UNIT_MS.d + Number(h ?? 0) * UNIT_MS.h + Number(m ?? 0) * UNIT_MS.m + Number(sec ?? 0) * UNIT_MS.s;
    if (ms <= 0) throw new UsageError(`--expires must be a positive duration (got "${text}")`);
    // Whole seconds: the deadline is shown, and may be typed back (--expires <time> with --key).
    return new Date(Math.floor((now.getTime() + ms) / 1000) * 1000);
  }
  // A date-time needs an explicit offset: "18:00" on someone else's machine is another instant.
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(s)) {
    const t = Date.parse(s);
    if (!Number.isNaN(t)) return new Date(t);
  }
  throw new UsageError(`--expires must be a duration such as 30m, 2h or 1h30m, or an ISO time such as 2026-12-01T18:00:00Z (got "${text}")`);
}

function parseConditions(raw: string[] | undefined): Array<'NEW' | 'USED'> | undefined {
  if (!raw || raw.length === 0) return undefined;
  const out = new Set<'NEW' | 'USED'>();
  for (const part of raw.flatMap((r) => r.split(','))) {
    const c = part.trim().toLowerCase();
    if (c === 'new') out.add('NEW');
    else if (c === 'used') out.add('USED');
    else if (c === 'any') (out.add('NEW'), out.add('USED'));
    else throw new UsageError(`--condition must be new, used or any (got "${part}")`);
  }
  return [...out];
}

/** `http://host:4000` → its /graphql endpoint over HTTP and WebSocket; a URL with a path is kept as given. */
export function parseEndpoint(raw: string): Endpoint {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new UsageError(`--url must be the broker's address, such as ${DEFAULT_URL} (got "${raw}")`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must start with http:// or https:// (got "${raw}")`);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/graphql';
  url.hash = '';
  const http = url.toString();
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return { http, ws: url.toString() };
}

export function usage(): string {
  return `Buy a book through the broker and watch it happen.

Usage:
  npm run buy -- --isbn <isbn> --max <amount> [options]
  npm run buy -- --title <title> [--author <author>] --max <amount> [options]
  npm run buy -- --watch <request id> [--wait]

Creates a purchase request, then streams its lifecycle as it happens: status changes, the
sellers asked, offers, the order. Stops when the request is decided, or when the broker is left
watching for a better offer (QUOTED, OUT_OF_STOCK) unless --wait is given.

The book and the budget:
  --isbn <isbn>            ISBN-10 or ISBN-13 (hyphens allowed)
  --title <title>          title search, when there is no ISBN
  --author <author>        narrows a title search
  --max <amount>           the most you will pay in total (item + shipping + tax + fees), e.g. 45.00
  --currency <code>        ISO 4217 code of --max (default USD)
  --condition <c>          new, used or any (default new); repeatable
  --expires <when>         deadline: a duration (90s, 30m, 2h, 1h30m, 1d) or an ISO time with an
                           offset (2026-12-01T18:00:00Z); default ${DEFAULT_EXPIRES}

Shipping and payment (demo defaults: ${DEMO_ADDRESS.name}, ${DEMO_ADDRESS.line1}, ${DEMO_ADDRESS.city} ${DEMO_ADDRESS.region} ${DEMO_ADDRESS.postalCode}, ${DEMO_ADDRESS.country}):
  --ship-name, --ship-line1, --ship-line2, --ship-city, --ship-region,
  --ship-postal-code, --ship-country <ISO 3166-1 alpha-2>
  --payment-token <tok>    payment provider token (default ${DEFAULT_PAYMENT_TOKEN}; the sandbox
                           declines tok_declined)
  --key <key>              idempotency key (default: a fresh UUID). The same key and input
                           (with --expires as an exact time) returns the same request instead
                           of buying twice.

Watching:
  --watch <id>             follow an existing request instead of creating one
  --wait                   keep streaming through QUOTED and OUT_OF_STOCK until the request
                           is ordered, expires, fails or is canceled
  --json                   one JSON object per line (NDJSON) instead of text, for scripts; each
                           has a "type": begin, request (a new state and the events it adds),
                           connection, outcome (with "exitCode"), interrupted or error

Connection:
  --url <url>              the broker (default $BROKER_URL, else ${DEFAULT_URL})
  --token <jwt>            bearer token (default $BROKER_TOKEN). Without one, a short-lived token
                           for demo-user is made from the local broker's secret: $JWT_SECRET, else
                           the file $DATA_DIR/jwt-secret (DATA_DIR default ./.data) that npm start
                           keeps when it generates its own secret.
  -h, --help               this text

Exit codes:
  ${EXIT.ORDERED}    ORDERED: the book is bought
  ${EXIT.ERROR}    unexpected error (the message says what)
  ${EXIT.USAGE}    bad usage, or the broker rejected the input (its userError codes are shown)
  ${EXIT.UNAUTHENTICATED}    not authenticated: no token, or the broker refused it
  ${EXIT.UNREACHABLE}    the broker is unreachable, or too busy right now (try again)
  ${EXIT.QUOTED}   QUOTED: offers exist, none within budget; the broker keeps watching
  ${EXIT.OUT_OF_STOCK}   OUT_OF_STOCK: nobody has the book now; the broker keeps watching
  ${EXIT.EXPIRED}   EXPIRED: the deadline passed without an order
  ${EXIT.CANCELED}   CANCELED
  ${EXIT.FAILED}   FAILED: e.g. payment declined
  ${EXIT.INTERRUPTED}  interrupted (Ctrl-C): you stopped watching; the request goes on

Colour is used when stdout is a terminal and NO_COLOR is not set.
`;
}
