import { Channel } from './channel.js';

/**
 * Topic-based publish/subscribe for live updates. In one process the in-memory adapter is
 * enough; several instances share a Redis adapter behind this same interface.
 */
export interface PubSub {
  publish(topic: string, message: unknown): Promise<void>;
  /**
   * Resolves once the subscription is live: every message published after that is delivered,
   * in order, until the channel is closed.
   */
  subscribe<T>(topic: string): Promise<Channel<T>>;
  /** Live subscriptions (on topics starting with `prefix`), for metrics. */
  size(prefix?: string): number;
  close(): Promise<void>;
}

/**
 * Local subscribers by topic: the fan-out both adapters share. Hooks tell an adapter when a
 * topic gains its first subscriber and loses its last (Redis subscribes and unsubscribes then).
 */
export class LocalTopics {
  private readonly byTopic = new Map<string, Set<Channel<unknown>>>();

  constructor(private readonly hooks: { first?: (topic: string) => void; last?: (topic: string) => void } = {}) {}

  deliver(topic: string, message: unknown): void {
    const subscribers = this.byTopic.get(topic);
    if (!subscribers) return;
    for (const ch of subscribers) ch.push(message);
  }

  add<T>(topic: string): Channel<T> {
    let set = this.byTopic.get(topic);
    if (!set) {
      set = new Set();
      this.byTopic.set(topic, set);
      this.hooks.first?.(topic);
    }
    const subscribers = set;
    const channel: Channel<T> = new Channel<T>(1000, () => {
      subscribers.delete(channel as Channel<unknown>);
      if (subscribers.size === 0 && this.byTopic.get(topic) === subscribers) {
        this.byTopic.delete(topic);
        this.hooks.last?.(topic);
      }
    });
    subscribers.add(channel as Channel<unknown>);
    return channel;
  }

  /** Topics with at least one subscriber. */
  topics(): string[] {
    return [...this.byTopic.keys()];
  }

  size(prefix = ''): number {
    let n = 0;
    for (const [topic, set] of this.byTopic) if (topic.startsWith(prefix)) n += set.size;
    return n;
  }

  closeAll(): void {
    for (const set of [...this.byTopic.values()]) for (const ch of [...set]) ch.close();
    this.byTopic.clear();
  }
}

export class MemoryPubSub implements PubSub {
  private readonly local = new LocalTopics();

  async publish(topic: string, message: unknown): Promise<void> {
    this.local.deliver(topic, message);
  }

  async subscribe<T>(topic: string): Promise<Channel<T>> {
    return this.local.add<T>(topic);
  }

  size(prefix?: string): number {
    return this.local.size(prefix);
  }

  async close(): Promise<void> {
    this.local.closeAll();
  }
}
