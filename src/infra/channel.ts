/**
 * A push-to-pull bridge: producers `push`, one consumer iterates. Unlike an async generator,
 * `return()` ends a pending `next()` at once, so an unsubscribing client never waits for one
 * more message to arrive before its resources are released.
 */
export class Channel<T> implements AsyncIterableIterator<T> {
  private readonly buffer: T[] = [];
  private readonly waiters: Array<(r: IteratorResult<T>) => void> = [];
  private phase: 'open' | 'closed' = 'open';

  /** @param capacity messages kept for a slow consumer; past it the oldest are dropped. */
  constructor(
    private readonly capacity = 1000,
    private readonly onClose: () => void = () => {},
  ) {}

  push(value: T): void {
    if (this.phase === 'closed') return;
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter({ value, done: false });
      return;
    }
    this.buffer.push(value);
    if (this.buffer.length > this.capacity) this.buffer.shift();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.buffer.length > 0) return Promise.resolve({ value: this.buffer.shift()!, done: false });
    if (this.phase === 'closed') return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  return(): Promise<IteratorResult<T>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.close();
    return Promise.reject(error);
  }

  /** Messages waiting for the consumer. */
  pending(): number {
    return this.buffer.length;
  }

  close(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.buffer.length = 0;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
    this.onClose();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
