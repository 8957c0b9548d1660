import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { BuyOptions, Endpoint } from './args.js';
import { CREATE, GET, type TrackedRequest, type UserError, WATCH } from './operations.js';
import { CliError, EXIT, type ExitCode } from './outcome.js';
import type { TokenSource } from './token.js';

/**
 * The broker as any client sees it: GraphQL over HTTP for the mutation and reads, graphql-ws for
 * the live stream. Every failure becomes a CliError with the exit code a script can branch on.
 */

/** How long one HTTP call may take before the broker counts as unreachable. */
const HTTP_TIMEOUT_MS = 15_000;
/** Reconnects in a row before giving up on a dropped socket (~1 min with the waits below). */
const RECONNECT_ATTEMPTS = 8;
const RECONNECT_MAX_WAIT_MS = 10_000;

interface GraphQLErrorShape {
  message: string;
  extensions?: { code?: unknown; retryAfterMs?: unknown; [k: string]: unknown };
}

/** Top-level error codes (API.md) → exit codes; anything else is unexpected (1). */
const EXIT_BY_ERROR_CODE: Readonly<Record<string, ExitCode>> = {
  UNAUTHENTICATED: EXIT.UNAUTHENTICATED,
  FORBIDDEN: EXIT.UNAUTHENTICATED,
  BAD_USER_INPUT: EXIT.USAGE,
  GRAPHQL_VALIDATION_FAILED: EXIT.ERROR,
  RATE_LIMITED: EXIT.UNREACHABLE,
  OVERLOADED: EXIT.UNREACHABLE,
  UNAVAILABLE: EXIT.UNREACHABLE,
};

/** WebSocket close codes that no reconnect can fix. */
const FATAL_CLOSE: Readonly<Record<number, { exit: ExitCode; code: string; message: string }>> = {
  4401: { exit: EXIT.UNAUTHENTICATED, code: 'UNAUTHENTICATED', message: 'the broker refused the token on the WebSocket' },
  4403: { exit: EXIT.UNAUTHENTICATED, code: 'UNAUTHENTICATED', message: 'the broker refused the token on the WebSocket' },
  4429: { exit: EXIT.UNREACHABLE, code: 'TOO_MANY_CONNECTIONS', message: 'the broker refused another WebSocket for this user (too many open); close some and retry' },
};

export type ConnectionNotice = { state: 'lost'; reason: string } | { state: 'resumed'; afterRevision: number };

export interface Watch {
  /** Settles when the stream ends: the broker completed it, or `stop` was called; rejects with a CliError. */
  readonly ended: Promise<void>;
  stop(): Promise<void>;
}

export class Broker {
  constructor(
    private readonly endpoint: Endpoint,
    private readonly token: TokenSource,
  ) {}

  /** Creates the request; rejected input is a CliError carrying the userErrors (exit 2). */
  async create(input: BuyOptions['input'], signal: AbortSignal): Promise<TrackedRequest> {
    const data = await this.post<{ createPurchaseRequest: { purchaseRequest: TrackedRequest | null; userErrors: UserError[] } }>(CREATE, { input }, signal);
    const payload = data.createPurchaseRequest;
    if (payload.userErrors.length > 0 || !payload.purchaseRequest) {
      const codes = [...new Set(payload.userErrors.map((e) => e.code))].join(', ') || 'no request returned';
      throw new CliError(EXIT.USAGE, 'USER_ERRORS', `the broker rejected the request (${codes})`, { userErrors: payload.userErrors });
    }
    return payload.purchaseRequest;
  }

  /** The request, or a CliError (exit 2) when it does not exist or is someone else's. */
  async get(id: string, signal: AbortSignal): Promise<TrackedRequest> {
    const data = await this.post<{ purchaseRequest: TrackedRequest | null }>(GET, { id }, signal);
    if (!data.purchaseRequest) throw new CliError(EXIT.USAGE, 'NOT_FOUND', `no request ${id} for this user`);
    return data.purchaseRequest;
  }

  /**
   * Streams the request's states after `afterRevision`. When the socket drops, the graphql-ws
   * client reconnects and subscribes again with the last revision seen: `variables` is the very
   * object it sends on every (re)subscribe, so bumping `after` in place is how it resumes.
   */
  watch(
    id: string,
    afterRevision: number,
    on: { state(r: TrackedRequest): void; connection(n: ConnectionNotice): void },
  ): Watch {
    const variables = { id, after: afterRevision };
    let phase: 'connecting' | 'connected' | 'lost' | 'stopping' = 'connecting';
    const client: Client = createClient({
      url: this.endpoint.ws,
      webSocketImpl: WebSocket,
      lazy: true,
      // A minted token is made afresh on every connect, so a long --wait never outlives it.
      connectionParams: async () => bearer(await this.token.get()),
      retryAttempts: RECONNECT_ATTEMPTS,
      retryWait: async (retries) => {
        const ms = Math.min(1000 * 2 ** retries, RECONNECT_MAX_WAIT_MS) + Math.floor(Math.random() * 500);
        await new Promise((r) => setTimeout(r, ms));
      },
      // Errors (connection refused while the broker restarts) are retried like closes, except
      // the close codes no retry can fix.
      shouldRetry: (e) => !(isCloseEvent(e) && FATAL_CLOSE[e.code]),
      on: {
        connected: () => {
          if (phase === 'lost') on.connection({ state: 'resumed', afterRevision: variables.after });
          if (phase !== 'stopping') phase = 'connected';
        },
        closed: (e) => {
          if (phase !== 'connected') return;
          phase = 'lost';
          on.connection({ state: 'lost', reason: describeClose(e) });
        },
      },
    });

    const ended = new Promise<void>((resolve, reject) => {
      client.subscribe<{ purchaseRequestUpdated: TrackedRequest }>(
        { query: WATCH, variables },
        {
          next: (result) => {
            if (result.errors?.length) return reject(fromGraphQLErrors(result.errors as GraphQLErrorShape[], this.token));
            const state = result.data?.purchaseRequestUpdated;
            if (!state) return;
            if (state.revision > variables.after) variables.after = state.revision;
            on.state(state);
          },
          error: (e) => reject(phase === 'stopping' ? null : this.fromSocketError(e)),
          complete: () => resolve(),
        },
      );
    });
    const stop = async () => {
      phase = 'stopping';
      await client.dispose();
    };
    // Settle the stream's promise quietly when stopped on purpose.
    const settled = ended.catch((e: unknown) => {
      if (e !== null) throw e;
    });
    return { ended: settled, stop };
  }

  private async post<T>(query: string, variables: Record<string, unknown>, signal: AbortSignal): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.endpoint.http, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...bearer(await this.token.get()) },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(HTTP_TIMEOUT_MS)]),
      });
    } catch (e) {
      if (signal.aborted) throw e;
      throw unreachable(this.endpoint.http, e);
    }
    let body: { data?: T | null; errors?: GraphQLErrorShape[] };
    try {
      body = (await res.json()) as typeof body;
    } catch (e) {
      if (res.status === 502 || res.status === 503 || res.status === 504) {
        throw new CliError(EXIT.UNREACHABLE, 'UNREACHABLE', `the broker at ${this.endpoint.http} is unavailable (HTTP ${res.status}); try again shortly`, { cause: e });
      }
      throw new CliError(EXIT.ERROR, 'NOT_GRAPHQL', `${this.endpoint.http} answered HTTP ${res.status} without a GraphQL response: is --url the broker?`, { cause: e });
    }
    if (body.errors?.length) throw fromGraphQLErrors(body.errors, this.token);
    if (!body.data) throw new CliError(EXIT.ERROR, 'NOT_GRAPHQL', `${this.endpoint.http} answered HTTP ${res.status} with no data`);
    return body.data;
  }

  private fromSocketError(e: unknown): CliError {
    if (Array.isArray(e)) return fromGraphQLErrors(e as GraphQLErrorShape[], this.token);
    if (isCloseEvent(e)) {
      const fatal = FATAL_CLOSE[e.code];
      if (fatal?.exit === EXIT.UNAUTHENTICATED) return unauthenticated(fatal.message, this.token);
      if (fatal) return new CliError(fatal.exit, fatal.code, fatal.message);
      return new CliError(EXIT.UNREACHABLE, 'UNREACHABLE', `lost the connection to the broker at ${this.endpoint.ws} (${describeClose(e)}) and could not get it back`);
    }
    return unreachable(this.endpoint.ws, e);
  }
}

function fromGraphQLErrors(errors: GraphQLErrorShape[], token: TokenSource): CliError {
  const first = errors[0]!;
  const code = typeof first.extensions?.code === 'string' ? first.extensions.code : 'INTERNAL_SERVER_ERROR';
  if (code === 'UNAUTHENTICATED' || code === 'FORBIDDEN') return unauthenticated(`${first.message} (${code})`, token);
  const exit = EXIT_BY_ERROR_CODE[code] ?? EXIT.ERROR;
  const retry = typeof first.extensions?.retryAfterMs === 'number' ? `; retry in ${Math.ceil(first.extensions.retryAfterMs / 1000)} s` : '';
  const reason = typeof first.extensions?.reason === 'string' ? first.extensions.reason : null;
  return new CliError(exit, reason ?? code, `the broker answered ${code}: ${first.message}${retry}`);
}

const bearer = (token: string | null): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

function unauthenticated(what: string, token: TokenSource): CliError {
  if (token.from === null) return new CliError(EXIT.UNAUTHENTICATED, 'UNAUTHENTICATED', token.missing ?? 'no token to call the broker with');
  const hint =
    token.from === '--token' || token.from === 'BROKER_TOKEN'
      ? `the token from ${token.from} is not valid for this broker (wrong secret, expired or malformed).\n  Use a token the broker printed when it started (\`npm start\`), or leave --token and BROKER_TOKEN unset to make one from its local secret.`
      : `the token made from ${token.from} is not valid for this broker: it was started with another secret.\n  Pass --token with a token it printed at start-up, or set JWT_SECRET / DATA_DIR to the ones it uses.`;
  return new CliError(EXIT.UNAUTHENTICATED, 'UNAUTHENTICATED', `not authenticated: ${what}.\n  ${hint}`);
}

function unreachable(url: string, e: unknown): CliError {
  return new CliError(
    EXIT.UNREACHABLE,
    'UNREACHABLE',
    `cannot reach the broker at ${url} (${networkReason(e)}).\n  Is it running? Start it with \`npm start\`, or point --url / BROKER_URL at it.`,
    { cause: e },
  );
}

/** The innermost useful reason of a fetch or socket failure: "ECONNREFUSED", "timed out"… */
function networkReason(e: unknown): string {
  let cur: unknown = e;
  let innermost = 'connection failed';
  for (let depth = 0; depth < 5 && cur; depth++) {
    const err = cur as { name?: string; code?: unknown; message?: unknown; cause?: unknown; error?: unknown };
    if (err.name === 'TimeoutError') return `no answer within ${HTTP_TIMEOUT_MS / 1000} s`;
    if (typeof err.code === 'string') return err.code;
    if (typeof err.message === 'string' && err.message) innermost = err.message;
    cur = err.cause ?? err.error;
  }
  return innermost;
}

function isCloseEvent(e: unknown): e is { code: number; reason: string } {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'number' && 'reason' in e;
}

function describeClose(e: unknown): string {
  if (!isCloseEvent(e)) return networkReason(e);
  return e.reason ? `${e.code} ${e.reason}` : `code ${e.code}`;
}
