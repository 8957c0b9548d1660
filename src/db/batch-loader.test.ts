import { describe, expect, it } from 'vitest';
import { batchLoader } from './batch-loader.js';

/** A batch function whose calls the test finishes by hand, recording the keys of each. */
function heldBatches() {
  const calls: { keys: number[]; finish(): void }[] = [];
  const load = (keys: readonly number[]) =>
    new Promise<number[]>((resolve) => {
      calls.push({ keys: [...keys], finish: () => resolve(keys.map((k) => k * 10)) });
    });
  return { calls, load };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('batchLoader', () => {
  it('sends the keys of one turn together, and each caller gets its own value', async () => {
    const { calls, load } = heldBatches();
    const loader = batchLoader(load, { maxBatchSize: 100 });
    const values = Promise.all([1, 2, 3].map((k) => loader.load(k)));
    await turn();
    expect(calls.map((c) => c.keys)).toEqual([[1, 2, 3]]);
    calls[0]!.finish();
    expect(await values).toEqual([10, 20, 30]);
  });

  it('while the in-flight limit is reached, the next batch keeps collecting and leaves when one finishes', async () => {
    const { calls, load } = heldBatches();
    const loader = batchLoader(load, { maxBatchSize: 100, maxInFlight: 2 });
    const first = loader.load(1);
    await turn();
    const second = loader.load(2);
    await turn();
    expect(calls).toHaveLength(2);
    // Three more turns of keys while both are running: they wait, together.
    const waiting = [loader.load(3)];
    await turn();
    waiting.push(loader.load(4));
    await turn();
    waiting.push(loader.load(5));
    await turn();
    expect(calls).toHaveLength(2);

    calls[0]!.finish();
    expect(await first).toBe(10);
    await turn();
    expect(calls.map((c) => c.keys)).toEqual([[1], [2], [3, 4, 5]]);
    calls[1]!.finish();
    calls[2]!.finish();
    expect(await second).toBe(20);
    expect(await Promise.all(waiting)).toEqual([30, 40, 50]);
  });

  it('a failed batch frees its place: later batches still leave', async () => {
    const loader = batchLoader<number, number>(
      async (keys) => {
        if (keys.includes(0)) throw new Error('statement failed');
        return keys.map((k) => k + 1);
      },
      { maxBatchSize: 10, maxInFlight: 1 },
    );
    await expect(loader.load(0)).rejects.toThrow('statement failed');
    expect(await loader.load(41)).toBe(42);
  });

  it('splits a turn larger than maxBatchSize into several batches', async () => {
    const { calls, load } = heldBatches();
    const loader = batchLoader(load, { maxBatchSize: 2, maxInFlight: 5 });
    const values = Promise.all([1, 2, 3, 4, 5].map((k) => loader.load(k)));
    await turn();
    expect(calls.map((c) => c.keys)).toEqual([[1, 2], [3, 4], [5]]);
    for (const c of calls) c.finish();
    expect(await values).toEqual([10, 20, 30, 40, 50]);
  });
});
