import { Redis } from 'ioredis';
import type { Channel } from './channel.js';
import { LocalTopics, type PubSub } from './pubsub.js';

/**
 * Pub/sub across instances over Redis: a change made on instance B reaches a subscriber on
 * instance A. Messages travel as JSON. One connection publishes; one subscribes to each topic
 * while at least one local subscriber wants it, fanning out to local channels.
 */
export class RedisPubSub implements PubSub {
  private readonly pub: Redis;
  private readonly sub: Redis;
  /** Redis SUBSCRIBE confirmations per topic: a subscriber is live only once its topic's is. */
  private readonly confirmed = new Map<string, Promise<unknown>>();
  private readonly local = new LocalTopics({
    first: (topic) => this.confirmed.set(topic, this.sub.subscribe(this.prefix + topic)),
    last: (topic) => {
      this.confirmed.delete(topic);
      void this.sub.unsubscribe(this.prefix + topic).catch(() => {});
    },
  });

  constructor(url: string, private readonly prefix = 'broker:') {
    const options = { lazyConnect: false, maxRetriesPerRequest: 3, enableOfflineQueue: true };
    this.pub = new Redis(url, options);
    this.sub = new Redis(url, options);
    this.sub.on('message', (channel: string, text: string) => {
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        return; // not ours: nothing else publishes on these channels in a healthy deployment
      }
      this.local.deliver(channel.slice(this.prefix.length), message);
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
    const channel = this.local.add<T>(topic);
    try {
      await this.confirmed.get(topic);
    } catch (e) {
      channel.close();
      throw e;
    }
    return channel;
  }

  size(): number {
    return this.local.size();
  }

  async close(): Promise<void> {
    this.local.closeAll();
    await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
  }
}
