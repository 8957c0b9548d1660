import { type DocumentNode, type ExecutionArgs, type ExecutionResult, createSourceEventStream, execute } from 'graphql';

/** At most this many states' results are kept for sharing at once (the oldest goes first). */
const STATES_KEPT = 2_048;

/**
 * How long a state's result is shared. A push reaches every watcher within this; a subscriber
 * that starts later gets a fresh execution, so what is live within one revision (a PENDING
 * request's queue position) is read anew for it.
 */
const SHARED_FOR_MS = 1_000;

/**
 * What makes two subscribers' pushes the same: the viewer and the state they are pushed (null:
 * not shareable, run alone). The operation and its variables are added by the caller.
 */
export type ShareKey = (args: ExecutionArgs, payload: unknown) => string | null;

/**
 * graphql's `subscribe`, except that a state pushed to many subscribers of the same operation
 * (same document, same variables, same share key) is executed once: its resolvers, loaders and
 * reads run for the first subscriber, and the others are sent the same result. Without this,
 * 2,000 watchers of one request run 2,000 executions per revision.
 */
export function sharedSubscribe(
  shareKey: ShareKey,
  o: { kept?: number; sharedForMs?: number; now?: () => number } = {},
): (args: ExecutionArgs) => Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const { kept = STATES_KEPT, sharedForMs = SHARED_FOR_MS, now = performance.now.bind(performance) } = o;
  const results = new Map<string, { at: number; result: Promise<ExecutionResult> | ExecutionResult }>();
  const documentIds = new WeakMap<DocumentNode, number>();
  let nextDocumentId = 0;
  const documentId = (d: DocumentNode) => {
    let id = documentIds.get(d);
    if (id === undefined) documentIds.set(d, (id = nextDocumentId++));
    return id;
  };

  return async (args) => {
    const stream = await createSourceEventStream(args);
    if (!isAsyncIterable(stream)) return stream;
    const operation = `${documentId(args.document)}\u0000${args.operationName ?? ''}\u0000${JSON.stringify(args.variableValues ?? {})}`;
    return mapStream(stream, (payload) => {
      const run = () => execute({ ...args, rootValue: payload });
      const share = shareKey(args, payload);
      if (share === null) return run();
      const key = `${operation}\u0000${share}`;
      const at = now();
      const shared = results.get(key);
      if (shared && at - shared.at <= sharedForMs) return shared.result;
      const result = run();
      results.delete(key);
      // Oldest first (each is re-inserted when made): drop what can no longer be shared, and the
      // oldest past the bound.
      for (const [k, v] of results) {
        if (at - v.at <= sharedForMs && results.size < kept) break;
        results.delete(k);
      }
      results.set(key, { at, result });
      return result;
    });
  };
}

function isAsyncIterable(x: unknown): x is AsyncIterable<unknown> {
  return typeof x === 'object' && x !== null && Symbol.asyncIterator in x;
}

/** Maps each item of a stream; closing the result closes the source at once, even mid-wait. */
function mapStream<T, U>(source: AsyncIterable<T>, map: (item: T) => Promise<U> | U): AsyncIterableIterator<U> {
  const it = source[Symbol.asyncIterator]();
  const close = async (): Promise<IteratorResult<U>> => {
    await it.return?.();
    return { value: undefined, done: true };
  };
  return {
    async next() {
      const item = await it.next();
      return item.done ? { value: undefined, done: true } : { value: await map(item.value), done: false };
    },
    return: close,
    async throw(e: unknown) {
      await close();
      throw e;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
