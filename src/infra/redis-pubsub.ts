import { Redis } from 'ioredis';
import { Channel } from './channel.js';
import type { PubSub } from './pubsub.js';

/**
 * Pub/sub across instances over Redis: a change made on instance B reaches a subscriber on
 * instance A. Messages travel as JSON. One connection publishes; one subscribes to each topic
 * while at least one local subscriber wants it, fanning out to local channels.
 */
export class RedisPubSub implements PubSub {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly topics = new Map<string, Set<Channel<unknown>>>();
  /** Redis SUBSCRIBE confirmations per topic: a subscriber is live only once its topic's is. */
  private readonly confirmed = new Map<string, Promise<unknown>>();

  constructor(url: string, private readonly prefix = 'broker:') {
    const options = { lazyConnect: false, maxRetriesPerRequest: 3, enableOfflineQueue: true };
    this.pub = new Redis(url, options);
    this.sub = new Redis(url, options);
    this.sub.on('message', (channel: string, text: string) => {
      const local = this.topics.get(channel.slice(this.prefix.length));
      if (!local) return;
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        return; // not ours: nothing else publishes on these channels in a healthy deployment
      }
      for (const ch of local) ch.push(message);
    });
  }

  /** Resolves once both connections answer, so start-up fails fast on a bad REDIS_URL. */
  async ready(): Promise<void> {
    await Promise.all([this.pub.ping(), this.sub.ping()]);
  }

  async publish(topic: string, message: unknown): Promise<void> {
    await this.pub.publish(this.prefix + topic, JSON.stringify(message));
  }

  async subscribe<T>(topic: string): Promise<Channel<T>> {
    let set = this.topics.get(topic);
    if (!set) {
      set = new Set();
      this.topics.set(topic, set);
      this.confirmed.set(topic, this.sub.subscribe(this.prefix + topic));
    }
    const subscribers = set;
    const channel: Channel<T> = new Channel<T>(1000, () => {
      subscribers.delete(channel as Channel<unknown>);
      if (subscribers.size === 0 && this.topics.get(topic) === subscribers) {
        this.topics.delete(topic);
        this.confirmed.delete(topic);
        void this.sub.unsubscribe(this.prefix + topic).catch(() => {});
      }
    });
    subscribers.add(channel as Channel<unknown>);
    try {
      await this.confirmed.get(topic);
    } catch (e) {
      channel.close();
      throw e;
    }
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
    await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
  }
}
