import DataLoader from 'dataloader';

export interface BatchLoaderOptions {
  /** Most keys in one batch (one statement). */
  maxBatchSize: number;
  /** Batches running at once; a batch opened meanwhile keeps collecting until one finishes. */
  maxInFlight?: number;
}

/**
 * A DataLoader for statements that serve many requests at once (group commit). A batch collects
 * every key loaded up to the end of the event loop's current I/O phase (`setImmediate`, so calls
 * arriving on different sockets in one turn go together). While `maxInFlight` batches are running,
 * the next one does not leave but keeps collecting, and goes when one of them finishes: under load
 * batches grow instead of statements queueing for the pool one or two keys at a time, and when
 * idle a key leaves at once.
 */
export function batchLoader<K, V>(
  load: (keys: readonly K[]) => Promise<readonly (V | Error)[]>,
  options: BatchLoaderOptions,
): DataLoader<K, V> {
  const maxInFlight = options.maxInFlight ?? 2;
  let inFlight = 0;
  const waiting: Array<() => void> = [];
  const done = () => {
    inFlight -= 1;
    waiting.shift()?.();
  };
  return new DataLoader<K, V>(
    async (keys) => {
      inFlight += 1;
      try {
        return await load(keys);
      } finally {
        done();
      }
    },
    {
      cache: false,
      maxBatchSize: options.maxBatchSize,
      batchScheduleFn: (dispatch) => {
        setImmediate(() => {
          if (inFlight < maxInFlight) dispatch();
          else waiting.push(dispatch);
        });
      },
    },
  );
}

/**
 * Runs `write` over a batch in layers in which each key appears once, in arrival order: two
 * calls about one row (a payment, an attempt) in one batch go in successive statements, the
 * second seeing what the first wrote. Returns each call's result, in the batch's order.
 */
export async function inLayers<T, R>(
  batch: readonly T[],
  keyOf: (item: T) => string,
  write: (layer: readonly T[]) => Promise<Map<string, R>>,
): Promise<(R | undefined)[]> {
  const results = new Map<T, R | undefined>();
  let rest = [...batch];
  while (rest.length > 0) {
    const keys = new Set<string>();
    const layer: T[] = [];
    const later: T[] = [];
    for (const item of rest) {
      const key = keyOf(item);
      if (keys.has(key)) later.push(item);
      else {
        keys.add(key);
        layer.push(item);
      }
    }
    const written = await write(layer);
    for (const item of layer) results.set(item, written.get(keyOf(item)));
    rest = later;
  }
  return batch.map((item) => results.get(item));
}
