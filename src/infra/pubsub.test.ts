import { describe, expect, it } from 'vitest';
import { MemoryPubSub } from './pubsub.js';

describe('MemoryPubSub', () => {
  it('delivers messages published after subscribing, in order, per topic', async () => {
    const ps = new MemoryPubSub();
    const a = await ps.subscribe<number>('a');
    const b = await ps.subscribe<number>('b');
    await ps.publish('a', 1);
    await ps.publish('b', 10);
    await ps.publish('a', 2);
    expect(await a.next()).toEqual({ value: 1, done: false });
    expect(await a.next()).toEqual({ value: 2, done: false });
    expect(await b.next()).toEqual({ value: 10, done: false });
  });

  it('ends a pending next() at once when the consumer returns, and forgets the subscriber', async () => {
    const ps = new MemoryPubSub();
    const sub = await ps.subscribe<number>('t');
    expect(ps.size()).toBe(1);
    const pending = sub.next();
    await sub.return();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(ps.size()).toBe(0);
    await ps.publish('t', 1);
    expect(await sub.next()).toEqual({ value: undefined, done: true });
  });

  it('drops the oldest messages for a consumer that falls behind its capacity', async () => {
    const ps = new MemoryPubSub();
    const sub = await ps.subscribe<number>('t');
    for (let i = 0; i < 1005; i++) await ps.publish('t', i);
    expect((await sub.next()).value).toBe(5);
  });

  it('closes every subscription on close()', async () => {
    const ps = new MemoryPubSub();
    const sub = await ps.subscribe<number>('t');
    await ps.close();
    expect(await sub.next()).toEqual({ value: undefined, done: true });
    expect(ps.size()).toBe(0);
  });
});
