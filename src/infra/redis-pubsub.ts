import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Channel } from './channel.js';
import { LocalTopics, type PubSub } from './pubsub.js';
import { closeRedis, connectRedis, whenReady } from './redis-connection.js';

export interface RedisPubSubOptions {
  log?: Logger;
  /**
   * A topic's current message, read from the source of truth, for its subscribers after an
   * outage (null: nothing to catch up on). Subscribers drop what they have already seen.
   */
  resync?: (topic: string) => Promise<unknown>;
  /** After Redis is back, how long other instances get to send what they held before topics are re-read. */
  resyncDelayMs?: number;
  /** Messages held while Redis is away; past this many the oldest go (a resync covers them). */
  maxHeld?: number;
}

/** One message waiting for Redis. */
interface Held {
  channel: string;
  text: string;
}

/**
 * Pub/sub across instances over Redis: a change made on instance B reaches a subscriber on
 * instance A. Messages travel as JSON. One connection publishes; one subscribes to each topic
 * while at least one local subscriber wants it, fanning out to local channels.
 *
 * Redis going away never fails a publisher (SPEC §6: a committed write is not undone by its
 * notification): messages are held, in order, and sent once Redis is back and this instance's
 * topics are subscribed again, so its own subscribers miss none of them. Then every topic is
 * re-read through `resync`, for what other instances could not hold (one that died meanwhile).
 */
export class RedisPubSub implements PubSub {
  private readonly pub: Redis;
  private readonly sub: Redis;
  /**
   * `live`: published messages go straight out; `recovering`: they are held until topics are
   * subscribed (again). Nothing is live before the first connection.
   */
  private mode: 'live' | 'recovering' | 'closed' = 'recovering';
  private held: Held[] = [];
  private recovery: Promise<void> = Promise.resolve();
  /** Connections lost so far: a recovery pass that saw one during its run did not recover. */
  private drops = 0;
  private resyncTimer: NodeJS.Timeout | null = null;
  /** Redis SUBSCRIBE confirmations per topic: a subscriber is live only once its topic's is. */
  private readonly confirmed = new Map<string, Promise<void>>();
  private readonly local = new LocalTopics({
    first: (topic) => this.confirmed.set(topic, this.listen([topic]).catch(() => {})),
    last: (topic) => {
      this.confirmed.delete(topic);
      if (this.sub.status === 'ready') void this.sub.unsubscribe(this.prefix + topic).catch(() => {});
    },
  });

  constructor(
    url: string,
    private readonly prefix = 'broker:',
    private readonly o: RedisPubSubOptions = {},
  ) {
    this.pub = connectRedis(url, { role: 'publish', log: o.log });
    // Topics are subscribed again by `recover`, after both connections are back, in one place.
    this.sub = connectRedis(url, { role: 'subscribe', log: o.log, options: { autoResubscribe: false } });
    this.sub.on('message', (channel: string, text: string) => {
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        return; // not ours: nothing else publishes on these channels in a healthy deployment
      }
      this.local.deliver(channel.slice(this.prefix.length), message);
    });
    for (const redis of [this.pub, this.sub]) {
      redis.on('close', () => {
        this.drops += 1;
        if (this.mode === 'live') this.mode = 'recovering';
      });
      redis.on('ready', () => this.recover());
    }
  }

  /** Resolves once both connections answer and are in use, so start-up fails fast on a bad REDIS_URL. */
  async ready(): Promise<void> {
    await Promise.all([whenReady(this.pub), whenReady(this.sub)]);
    await this.recovery;
  }

  async publish(topic: string, message: unknown): Promise<void> {
    const item = { channel: this.prefix + topic, text: JSON.stringify(message) };
    if (this.mode !== 'live' || this.held.length > 0 || this.pub.status !== 'ready') return this.hold(item);
    try {
      await this.pub.publish(item.channel, item.text);
    } catch {
      this.hold(item);
    }
  }

  async subscribe<T>(topic: string): Promise<Channel<T>> {
    const channel = this.local.add<T>(topic);
    await this.confirmed.get(topic);
    return channel;
  }

  size(prefix?: string): number {
    return this.local.size(prefix);
  }

  /** Messages waiting for Redis to come back. */
  heldCount(): number {
    return this.held.length;
  }

  async close(): Promise<void> {
    this.mode = 'closed';
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.local.closeAll();
    await Promise.allSettled([closeRedis(this.pub), closeRedis(this.sub)]);
  }

  /**
   * Subscribes topics on Redis. While Redis is away this resolves at once: the subscriber is
   * served from the moment it is back (topics subscribed again, then a resync).
   */
  private async listen(topics: string[]): Promise<void> {
    if (this.sub.status !== 'ready' || topics.length === 0) return;
    await this.sub.subscribe(...topics.map((t) => this.prefix + t));
  }

  private hold(item: Held): void {
    if (this.mode === 'closed') return;
    this.held.push(item);
    if (this.held.length > (this.o.maxHeld ?? 10_000)) this.held.shift();
    if (this.mode === 'live') {
      // A publish failed with no 'close' seen (yet): recover as after one. If the connection is
      // in fact up, 'ready' will not fire again, so the pass is queued here.
      this.mode = 'recovering';
      this.recover();
    }
  }

  /** Queues a recovery pass; passes run one at a time, so held messages go out once and in order. */
  private recover(): void {
    this.recovery = this.recovery.then(() => this.recoverOnce());
  }

  /** With both connections ready: subscribe every topic again, send what was held in order, then resync. */
  private async recoverOnce(): Promise<void> {
    const up = () => this.pub.status === 'ready' && this.sub.status === 'ready';
    if (this.mode !== 'recovering' || !up()) return;
    const drops = this.drops;
    try {
      await this.listen(this.local.topics());
      while (this.held.length > 0) {
        const next = this.held[0]!;
        await this.pub.publish(next.channel, next.text);
        this.held.shift();
      }
      // Lost again meanwhile (subscriptions may be on the old connection): its 'ready' queues another pass.
      if (this.mode !== 'recovering' || this.drops !== drops) return;
      this.mode = 'live';
      // After a loss, not after the first connection: before it nobody was subscribed.
      if (this.drops > 0) this.scheduleResync();
    } catch {
      // A command failed with the connections up (it timed out): another pass shortly. If they
      // went down, their 'ready' queues one.
      if (up()) setTimeout(() => this.recover(), 1_000).unref();
    }
  }

  private scheduleResync(): void {
    const resync = this.o.resync;
    if (!resync) return;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      void this.resyncAll(resync);
    }, this.o.resyncDelayMs ?? 1_000);
    this.resyncTimer.unref();
  }

  private async resyncAll(resync: (topic: string) => Promise<unknown>): Promise<void> {
    const topics = this.local.topics();
    // Bounded fan-out: a few hundred reads at a time (readers batch them further).
    for (let i = 0; i < topics.length && this.mode !== 'closed'; i += 200) {
      await Promise.allSettled(
        topics.slice(i, i + 200).map(async (topic) => {
          const message = await resync(topic);
          if (message !== null && message !== undefined) this.local.deliver(topic, message);
        }),
      );
    }
  }
}
