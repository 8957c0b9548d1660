import { randomUUID } from 'node:crypto';
import { toError } from '../domain/errors.js';
import { type Command, parseCommand, UsageError, usage } from './args.js';
import { Broker } from './broker.js';
import type { TrackedRequest } from './operations.js';
import { CliError, EXIT, type ExitCode, stopAt } from './outcome.js';
import { jsonReporter, type Reporter, textReporter, wantsColour } from './render.js';
import { Timeline } from './timeline.js';
import { resolveToken } from './token.js';

/**
 * The buy command, given its arguments, environment and streams: creates a purchase request (or
 * finds one, --watch) and follows it until it is decided. A client of the public API like any
 * other: GraphQL over HTTP to create and read, graphql-ws to watch. Exit codes: outcome.ts.
 */

export interface Io {
  argv: readonly string[];
  env: Record<string, string | undefined>;
  cwd: string;
  stdout: { write(s: string): void; isTTY?: boolean };
  stderr: { write(s: string): void; isTTY?: boolean };
  /** Aborted on Ctrl-C: watching stops, the request goes on. */
  interrupt: AbortSignal;
}

interface Decision {
  request: TrackedRequest;
  code: ExitCode;
}

export async function run(io: Io): Promise<ExitCode> {
  let command: Command;
  try {
    command = parseCommand(io.argv, { env: io.env, now: new Date(), newKey: randomUUID });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const jsonWanted = io.argv.includes('--json');
    const reporter = jsonWanted ? jsonReporter(io.stdout) : textReporter(io.stdout, io.stderr, colours(io), () => new Date());
    reporter.error(new CliError(EXIT.USAGE, 'USAGE', e.message), null);
    return EXIT.USAGE;
  }
  if (command.kind === 'help') {
    io.stdout.write(usage());
    return EXIT.OK;
  }

  const cmd = command;
  const reporter = cmd.json ? jsonReporter(io.stdout) : textReporter(io.stdout, io.stderr, colours(io), () => new Date());
  const timeline = new Timeline();
  const watchAgain = (id: string) => {
    const url = cmd.urlFlag ? ` --url ${cmd.endpoint.http.replace(/\/graphql$/, '')}` : '';
    return `npm run buy -- --watch ${id}${cmd.wait ? ' --wait' : ''}${url}`;
  };
  const interrupted = (): ExitCode => {
    const r = timeline.current;
    const retry = cmd.kind === 'buy' ? sameRequestAgain(io.argv, cmd.input) : null;
    reporter.interrupted(r, r ? watchAgain(r.id) : null, r ? null : retry);
    return EXIT.INTERRUPTED;
  };

  try {
    const broker = new Broker(cmd.endpoint, await resolveToken(cmd.token, io.env, io.cwd));
    let first: TrackedRequest;
    try {
      first = cmd.kind === 'buy' ? await broker.create(cmd.input, io.interrupt) : await broker.get(cmd.id, io.interrupt);
    } catch (e) {
      if (io.interrupt.aborted) return interrupted();
      throw e;
    }
    reporter.begin(first, cmd.kind === 'buy' ? { created: true, idempotencyKey: cmd.input.idempotencyKey } : { created: false });

    // One place decides when watching ends: the first state that stopAt accepts.
    const follow: { decided: Decision | null } = { decided: null };
    const show = (r: TrackedRequest) => {
      if (follow.decided) return;
      const change = timeline.apply(r);
      if (!change) return;
      reporter.change(change);
      const code = stopAt(change.request.status, cmd.wait);
      if (code !== null) follow.decided = { request: change.request, code };
    };
    show(first);

    if (!follow.decided) {
      const stopped = new AbortController();
      const watch = broker.watch(first.id, first.revision, {
        state: (r) => {
          show(r);
          if (follow.decided) stopped.abort();
        },
        connection: (n) => reporter.connection(n),
      });
      const abort = AbortSignal.any([stopped.signal, io.interrupt]);
      const aborted = new Promise<void>((resolve) => abort.addEventListener('abort', () => resolve(), { once: true }));
      try {
        await Promise.race([watch.ended, aborted]);
      } finally {
        await watch.stop();
      }
      if (!follow.decided && io.interrupt.aborted) return interrupted();
      // The broker completes the stream after a terminal state; should that state not be among
      // those received, read it.
      if (!follow.decided) show(await broker.get(first.id, io.interrupt));
    }
    const end = follow.decided;
    if (!end) throw new CliError(EXIT.ERROR, 'STREAM_ENDED', `the broker ended the stream while the request was ${timeline.current?.status ?? 'unknown'}`);
    reporter.outcome(end.request, end.code, watchAgain(end.request.id));
    return end.code;
  } catch (e) {
    if (io.interrupt.aborted) return interrupted();
    const error = e instanceof CliError ? e : new CliError(EXIT.ERROR, 'INTERNAL', `unexpected: ${toError(e).message}`, { cause: e });
    reporter.error(error, timeline.current);
    return error.exitCode;
  }
}

function colours(io: Io) {
  return { out: wantsColour(io.stdout, io.env), err: wantsColour(io.stderr, io.env) };
}

/**
 * The command line that asks for the same request again: the same arguments with this run's
 * idempotency key and its deadline as an exact time (a relative --expires would make a new
 * deadline, a different input, and IDEMPOTENCY_KEY_REUSED).
 */
export function sameRequestAgain(argv: readonly string[], input: { idempotencyKey: string; expiresAt: string }): string {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--key' || a === '--expires') i += 1;
    else if (!a.startsWith('--key=') && !a.startsWith('--expires=')) kept.push(a);
  }
  return ['npm', 'run', 'buy', '--', ...kept, '--key', input.idempotencyKey, '--expires', input.expiresAt].map(shellQuote).join(' ');
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
