import { type ExecutionResult, buildSchema, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { sharedSubscribe } from './shared-pushes.js';

/** A schema whose one subscription streams the states pushed to it, counting executions. */
function harness(kept = 2_048) {
  const schema = buildSchema(`
    type Query { ok: Boolean }
    type State { id: ID! revision: Int! reads: Int! }
    type Subscription { watch(id: ID!): State! }
  `);
  let reads = 0;
  const sources: Array<{ push(s: { id: string; revision: number }): void; closed: boolean }> = [];
  const rootValue = {
    watch: () => {
      const queue: Array<{ id: string; revision: number }> = [];
      let wake: (() => void) | null = null;
      const source = {
        closed: false,
        push(s: { id: string; revision: number }) {
          queue.push(s);
          wake?.();
        },
      };
      sources.push(source);
      return {
        [Symbol.asyncIterator]() {
          return this;
        },
        async next() {
          while (queue.length === 0 && !source.closed) await new Promise<void>((r) => (wake = r));
          if (source.closed) return { value: undefined, done: true };
          return { value: { watch: { ...queue.shift()!, reads: () => ++reads } }, done: false };
        },
        async return() {
          source.closed = true;
          wake?.();
          return { value: undefined, done: true };
        },
      };
    },
  };
  const document = parse('subscription W($id: ID!) { watch(id: $id) { id revision reads } }');
  let clock = 0;
  const subscribe = sharedSubscribe((_args, payload) => {
    const s = (payload as { watch: { id: string; revision: number } }).watch;
    return s.id === 'private' ? null : `${s.id}@${s.revision}`;
  }, { kept, sharedForMs: 1_000, now: () => clock });
  const open = async (id: string) => (await subscribe({ schema, document, rootValue, variableValues: { id } })) as AsyncIterableIterator<ExecutionResult>;
  return { open, sources, advance: (ms: number) => (clock += ms), reads: () => reads };
}

const data = (r: IteratorResult<ExecutionResult>) => (r.value as ExecutionResult).data?.watch;

describe('sharedSubscribe', () => {
  it('executes a state once for every subscriber of the same operation, variables and key', async () => {
    const h = harness();
    const [a, b] = [await h.open('r1'), await h.open('r1')];
    for (const s of h.sources) s.push({ id: 'r1', revision: 2 });
    expect([data(await a.next()), data(await b.next())]).toEqual([
      { id: 'r1', revision: 2, reads: 1 },
      { id: 'r1', revision: 2, reads: 1 },
    ]);
    expect(h.reads()).toBe(1);
  });

  it('executes anew for another revision, other variables, an unshareable state, or after the sharing window', async () => {
    const h = harness();
    const a = await h.open('r1');
    const other = await h.open('r2');
    h.sources[0]!.push({ id: 'r1', revision: 2 });
    h.sources[1]!.push({ id: 'r2', revision: 2 });
    await Promise.all([a.next(), other.next()]);
    expect(h.reads()).toBe(2);

    h.sources[0]!.push({ id: 'r1', revision: 3 });
    await a.next();
    expect(h.reads()).toBe(3);

    const late = await h.open('r1');
    h.advance(1_001);
    h.sources[2]!.push({ id: 'r1', revision: 3 });
    expect(data(await late.next())).toMatchObject({ revision: 3, reads: 4 });

    const [p, q] = [await h.open('private'), await h.open('private')];
    h.sources[3]!.push({ id: 'private', revision: 1 });
    h.sources[4]!.push({ id: 'private', revision: 1 });
    await Promise.all([p.next(), q.next()]);
    expect(h.reads()).toBe(6);
  });

  it('keeps at most `kept` results: past that the oldest state is executed anew', async () => {
    const h = harness(2);
    const a = await h.open('r1');
    for (const revision of [1, 2, 3]) {
      h.sources[0]!.push({ id: 'r1', revision });
      await a.next();
    }
    expect(h.reads()).toBe(3);
    const late = await h.open('r1');
    h.sources[1]!.push({ id: 'r1', revision: 3 });
    h.sources[1]!.push({ id: 'r1', revision: 1 });
    expect(data(await late.next())).toMatchObject({ revision: 3, reads: 3 });
    expect(data(await late.next())).toMatchObject({ revision: 1, reads: 4 });
  });

  it('closing a subscription closes its source at once, even while waiting for the next state', async () => {
    const h = harness();
    const a = await h.open('r1');
    const waiting = a.next();
    await a.return!();
    expect(h.sources[0]!.closed).toBe(true);
    expect(await waiting).toEqual({ value: undefined, done: true });
  });
});
