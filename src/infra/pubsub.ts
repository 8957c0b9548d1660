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
  /** Live subscriptions, for metrics. */
  size(): number;
  close(): Promise<void>;
}

export class MemoryPubSub implements PubSub {
  private readonly topics = new Map<string, Set<Channel<unknown>>>();

  async publish(topic: string, message: unknown): Promise<void> {
    const subscribers = this.topics.get(topic);
    if (!subscribers) return;
    for (const ch of subscribers) ch.push(message);
  }

  async subscribe<T>(topic: string): Promise<Channel<T>> {
    let set = this.topics.get(topic);
    if (!set) {
      set = new Set();
      this.topics.set(topic, set);
    }
    const subscribers = set;
    const channel: Channel<T> = new Channel<T>(1000, () => {
      subscribers.delete(channel as Channel<unknown>);
      if (subscribers.size === 0 && this.topics.get(topic) === subscribers) this.topics.delete(topic);
    });
    subscribers.add(channel as Channel<unknown>);
    return channel;
  }

  size(): number {
    let n = 0;
    for (const set of this.topics.values()) n += set.size;
    return n;
  }

  async close(): Promise<void> {
    for (const set of [...this.topics.values()]) for (const ch of [...set]) ch.close();
    this.topics.clear();
  }
}
