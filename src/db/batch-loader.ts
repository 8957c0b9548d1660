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
