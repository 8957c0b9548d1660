import { money } from '../domain/books.js';
import type { RequestStatus } from '../domain/types.js';
import type { ConnectionNotice } from './broker.js';
import type { TrackedRequest } from './operations.js';
import { type CliError, EXIT, type ExitCode } from './outcome.js';
import { type Change, offset, until } from './timeline.js';

/** Everything the CLI tells the user, as text for people or NDJSON for scripts. */
export interface Reporter {
  /** The request the CLI follows, once known (created, or found for --watch). */
  begin(r: TrackedRequest, how: { created: boolean; idempotencyKey?: string }): void;
  change(c: Change): void;
  connection(n: ConnectionNotice): void;
  /** Watching ended at `r` with `exitCode`; `watchAgain` is the command that follows it further. */
  outcome(r: TrackedRequest, exitCode: ExitCode, watchAgain: string): void;
  /** Ctrl-C: `r` is the last state seen (null before the broker answered the create). */
  interrupted(r: TrackedRequest | null, watchAgain: string | null, retry: string | null): void;
  error(e: CliError, request: TrackedRequest | null): void;
}

export interface Output {
  write(text: string): void;
}

// ── text ─────────────────────────────────────────────────────────────────────────────────

type Paint = (s: string) => string;
interface Palette {
  bold: Paint;
  dim: Paint;
  green: Paint;
  red: Paint;
  yellow: Paint;
  cyan: Paint;
}

const ansi = (open: number, close: number): Paint => (s) => `\u001b[${open}m${s}\u001b[${close}m`;
const plain: Paint = (s) => s;

export function palette(colour: boolean): Palette {
  if (!colour) return { bold: plain, dim: plain, green: plain, red: plain, yellow: plain, cyan: plain };
  return { bold: ansi(1, 22), dim: ansi(2, 22), green: ansi(32, 39), red: ansi(31, 39), yellow: ansi(33, 39), cyan: ansi(36, 39) };
}

/** Colour when the stream is a terminal and NO_COLOR (https://no-color.org) is unset or empty. */
export function wantsColour(stream: { isTTY?: boolean }, env: Record<string, string | undefined>): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR;
}

const STATUS_WIDTH = 12; // OUT_OF_STOCK
const OFFSET_WIDTH = 8;

export function textReporter(out: Output, err: Output, colour: { out: boolean; err: boolean }, now: () => Date): Reporter {
  const p = palette(colour.out);
  const e = palette(colour.err);
  const line = (s = '') => out.write(`${s}\n`);
  const statusColour = (s: RequestStatus): Paint => {
    switch (s) {
      case 'ORDERED':
        return p.green;
      case 'QUOTED':
      case 'OUT_OF_STOCK':
        return p.yellow;
      case 'EXPIRED':
      case 'FAILED':
      case 'CANCELED':
        return p.red;
      default:
        return p.cyan;
    }
  };
  // The status column is bright when it changes, dim while it stays: transitions stand out.
  let shownStatus: RequestStatus | null = null;
  const row = (at: string, status: RequestStatus, createdAt: string, text: string) => {
    const changed = status !== shownStatus;
    shownStatus = status;
    const col = status.padEnd(STATUS_WIDTH);
    line(`  ${p.dim(offset(createdAt, at).padStart(OFFSET_WIDTH))}  ${changed ? p.bold(statusColour(status)(col)) : p.dim(col)}  ${text}`);
  };
  const note = (text: string) => line(`  ${' '.repeat(OFFSET_WIDTH)}  ${' '.repeat(STATUS_WIDTH)}  ${text}`);

  return {
    begin(r, how) {
      line(`${p.bold(how.created ? 'Request' : 'Watching request')} ${r.id}${how.idempotencyKey ? p.dim(`  (idempotency key ${how.idempotencyKey})`) : ''}`);
      line(`  ${describeBook(r.book)} · at most ${money(r.maxTotalPrice.cents, r.maxTotalPrice.currency)} · deadline ${isoSeconds(r.expiresAt)} (${until(now(), r.expiresAt)})`);
      line();
    },
    change(c) {
      const r = c.request;
      const offer = () => {
        const o = c.bestOffer!;
        const fits = o.total.cents <= r.maxTotalPrice.cents;
        const verdict = fits
          ? p.green('within budget')
          : p.yellow(`${money(o.total.cents - r.maxTotalPrice.cents, o.total.currency)} over budget`);
        note(`best offer ${p.bold(money(o.total.cents, o.total.currency))} from ${o.seller.name} (${o.condition.toLowerCase()}, ${verdict})`);
      };
      // The best offer goes just before the order it led to, else after what the search found.
      const ordering = c.bestOffer ? c.events.findIndex((ev) => ev.status === 'ORDERING') : -1;
      c.events.forEach((ev, i) => {
        if (i === ordering) offer();
        row(ev.at, ev.status, r.createdAt, ev.message ?? ev.type);
      });
      // Every transition writes an event; this covers a server that someday does not.
      if (c.events.length === 0 && r.status !== shownStatus) row(r.updatedAt, r.status, r.createdAt, `status ${r.status}`);
      if (c.bestOffer && ordering === -1) offer();
    },
    connection(n) {
      if (n.state === 'lost') note(p.yellow(`connection lost (${n.reason}); reconnecting…`));
      else note(p.dim(`reconnected; resuming after revision ${n.afterRevision}`));
    },
    outcome(r, exitCode, watchAgain) {
      line();
      for (const s of summary(r, exitCode, watchAgain, now(), p)) line(s);
    },
    interrupted(r, watchAgain, retry) {
      line();
      if (r && watchAgain) {
        line(`Stopped watching. Request ${r.id} goes on (now ${r.status}).`);
        line(`Watch it again: ${p.bold(watchAgain)}`);
      } else {
        line('Interrupted before the broker answered: the request may or may not exist.');
        if (retry) line(`Run again with the same key to get it back, never a second one: ${p.bold(retry)}`);
      }
    },
    error(x, request) {
      err.write(`${e.red(e.bold('error:'))} ${x.message}\n`);
      for (const u of x.details.userErrors ?? []) {
        err.write(`  ${e.bold(u.code)}  ${u.field?.length ? `${u.field.join('.')}: ` : ''}${u.message}\n`);
      }
      if (x.details.userErrors?.some((u) => u.code === 'IDEMPOTENCY_KEY_REUSED')) {
        err.write('  A key names one request: reused with the same input (book, budget, deadline, address…) it returns that request.\n');
        err.write('  To buy again, leave --key out. To get that request back, give its exact deadline: --expires <time>.\n');
      }
      if (x.exitCode === EXIT.USAGE && !x.details.userErrors && x.code === 'USAGE') err.write('Run `npm run buy -- --help` for usage.\n');
      if (request && x.exitCode !== EXIT.USAGE) err.write(`The request ${request.id} goes on; it was ${request.status} when last seen.\n`);
    },
  };
}

function summary(r: TrackedRequest, exitCode: ExitCode, watchAgain: string, now: Date, p: Palette): string[] {
  const deadline = `${isoSeconds(r.expiresAt)} (${until(now, r.expiresAt)})`;
  const keepsWatching = [`The broker keeps watching until the deadline, ${deadline}.`, `Follow it: ${p.bold(watchAgain)}`];
  const lastMessage = [...r.events].reverse().find((e) => e.status === r.status)?.message ?? null;
  switch (r.status) {
    case 'ORDERED': {
      const o = r.order;
      if (!o) return [`${p.green(p.bold('Ordered.'))}`];
      const eta = o.deliveryEta ? `, delivery expected ${o.deliveryEta.slice(0, 10)}` : '';
      return [`${p.green(p.bold('Ordered'))} from ${o.seller.name} for ${p.bold(money(o.total.cents, o.total.currency))} (seller order ${o.sellerOrderId}${eta}).`];
    }
    case 'QUOTED': {
      const o = r.bestOffer;
      const best = o ? `the best offer, ${money(o.total.cents, o.total.currency)} from ${o.seller.name}, is over` : 'no offer fits';
      return [`${p.yellow(p.bold('Quoted:'))} ${best} your ${money(r.maxTotalPrice.cents, r.maxTotalPrice.currency)} budget.`, ...keepsWatching];
    }
    case 'OUT_OF_STOCK':
      return [`${p.yellow(p.bold('Out of stock:'))} no seller has this book right now.`, ...keepsWatching];
    case 'EXPIRED':
      return [`${p.red(p.bold('Expired:'))} ${lastMessage ?? 'the deadline passed with no order'}.`];
    case 'CANCELED':
      return [`${p.red(p.bold('Canceled.'))}`];
    case 'FAILED':
      return [`${p.red(p.bold('Failed:'))} ${r.failureReason ?? lastMessage ?? 'no reason given'}.`];
    case 'PENDING':
    case 'SEARCHING':
    case 'ORDERING':
      return [`Stopped at ${r.status} (exit ${exitCode}).`];
    default: {
      const newer: never = r.status;
      return [`Stopped at ${String(newer)} (exit ${exitCode}).`];
    }
  }
}

function describeBook(b: TrackedRequest['book']): string {
  const byline = b.title ? `"${b.title}"${b.author ? ` by ${b.author}` : ''}` : null;
  if (b.isbn) return `ISBN ${b.isbn}${byline ? ` ${byline}` : ''}`;
  return byline ?? 'a book';
}

const isoSeconds = (iso: string) => `${new Date(iso).toISOString().slice(0, 19)}Z`;

// ── NDJSON ───────────────────────────────────────────────────────────────────────────────

/**
 * One JSON object per line on stdout, each with a `type`: request (every new state, with the
 * events it adds), connection, outcome, interrupted, error. Money stays in cents, as the API has it.
 */
export function jsonReporter(out: Output): Reporter {
  const emit = (o: Record<string, unknown>) => out.write(`${JSON.stringify(o)}\n`);
  const state = (r: TrackedRequest) => ({
    id: r.id,
    status: r.status,
    revision: r.revision,
    bestOffer: r.bestOffer,
    order: r.order,
    failureReason: r.failureReason,
    expiresAt: r.expiresAt,
  });
  return {
    begin(r, how) {
      emit({ type: 'begin', created: how.created, ...(how.idempotencyKey ? { idempotencyKey: how.idempotencyKey } : {}), ...state(r), book: r.book, maxTotalPrice: r.maxTotalPrice, createdAt: r.createdAt });
    },
    change(c) {
      emit({ type: 'request', ...state(c.request), previousStatus: c.previousStatus, events: c.events, bestOfferChanged: c.bestOffer !== null });
    },
    connection(n) {
      emit({ type: 'connection', ...n });
    },
    outcome(r, exitCode, watchAgain) {
      emit({ type: 'outcome', ...state(r), exitCode, watching: exitCode === EXIT.QUOTED || exitCode === EXIT.OUT_OF_STOCK, watchAgain });
    },
    interrupted(r, watchAgain, retry) {
      emit({ type: 'interrupted', id: r?.id ?? null, status: r?.status ?? null, exitCode: EXIT.INTERRUPTED, watchAgain, retry });
    },
    error(x, request) {
      emit({
        type: 'error',
        code: x.code,
        message: x.message,
        exitCode: x.exitCode,
        ...(x.details.userErrors ? { userErrors: x.details.userErrors } : {}),
        ...(request ? { id: request.id, status: request.status } : {}),
      });
    },
  };
}
