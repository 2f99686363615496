import type { BackplaneListener, BackplanePosition, BackplaneSubscription } from '@ssekit/core';
import { reportBackplaneEvent } from '@ssekit/core/adapter';
import { duplicateClient, type OwnedConnection, type RedisClient } from './client.js';
import type { Commands } from './commands.js';
import { ORIGIN_ID, toEntry } from './entry.js';
import { closedError, messageOf, RedisBackplaneError } from './error.js';
import { INTERRUPTED, Interrupter, TimedOut } from './interrupter.js';
import { bulkString, entriesOf, pairsOf, positionOf, type RawEntry } from './reply.js';

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2000;
/** How long a wake-up entry may outlive the instance that wrote it, should it crash. */
const WAKE_TTL_MS = 60_000;
/** How far before subscribe() a subscription starts, for the error in reading Redis' clock. */
const START_MARGIN_MS = 100;
const MAX_SEQUENCE = '18446744073709551615';

/** One stream that this process reads, and the listeners of its channel. */
interface Subscription {
  readonly key: string;
  readonly listeners: Set<BackplaneListener>;
  /** The last id delivered, where the next XREAD starts; undefined until it is known. */
  lastId: string | undefined;
  /** The newest entry when delivery started; undefined for an empty stream. */
  start: BackplanePosition | undefined;
  /** Resolves once `lastId` is known, or the reader closed. */
  started: Promise<void>;
  /**
   * Set when entries after `lastId` may have been trimmed before this reader saw them: after an
   * outage, or a read that returned a full batch (the reader is behind).
   */
  suspect: boolean;
}

/** What a {@link StreamReader} reads with. */
export interface StreamReaderOptions {
  /** The injected client: the reader opens one duplicate of it, and closes that one. */
  client: RedisClient;
  /** Commands on the injected client, for where a subscription starts and for wake-ups. */
  commands: Commands;
  /** A stream of this reader's own, read with the others so that a new subscription can wake it. */
  wakeKey: string;
  /** How long one XREAD blocks. */
  blockMs: number;
  /** The most entries one XREAD returns per stream. */
  readCount: number;
  /** How much longer than `blockMs` an XREAD may take before its connection counts as dead. */
  commandTimeoutMs: number;
  /** Told once per outage, and when a listener throws. */
  onError: (error: unknown) => void;
}

/**
 * The one reader of a backplane: a blocking `XREAD` over every subscribed stream, each from the
 * last id it delivered, on a connection of its own (a blocking command holds its connection).
 * After an outage it retries with backoff from those ids, so nothing still in a stream is
 * skipped; an `XREAD` that never returns is abandoned, and its connection replaced.
 */
export class StreamReader {
  private readonly client: RedisClient;
  private readonly commands: Commands;
  private readonly wakeKey: string;
  private readonly blockMs: number;
  private readonly readCount: number;
  /** When an XREAD that has not returned is given up on. */
  private readonly hungAfterMs: number;
  private readonly onError: (error: unknown) => void;

  private readonly subscriptions = new Map<string, Subscription>();
  /** What close() must cut short: waits on Redis, and pauses between retries. */
  private readonly interrupter = new Interrupter();
  /** Opened when the first subscription has started, and replaced when it hangs. */
  private connection: OwnedConnection | undefined;
  private loop: Promise<void> | undefined;
  /** Set while the loop waits for a subscription to start. */
  private resumeIdle: (() => void) | undefined;
  /**
   * True from sending an XREAD until it returns or, after a failure, the pause before the next
   * one ends: a subscription that starts meanwhile must wake the reader.
   */
  private blocked = false;
  /** The last wake-up entry read, so that each one wakes the loop once. */
  private wakeLastId = ORIGIN_ID;
  /** Whether the wake-up stream was written, so that close() deletes it. */
  private woken = false;
  /** Whether onError heard about the current outage already. */
  private outage = false;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor({ client, commands, wakeKey, blockMs, readCount, commandTimeoutMs, onError }: StreamReaderOptions) {
    this.client = client;
    this.commands = commands;
    this.wakeKey = wakeKey;
    this.blockMs = blockMs;
    this.readCount = readCount;
    this.hungAfterMs = blockMs + commandTimeoutMs;
    this.onError = onError;
  }

  /**
   * Adds a listener to the stream at `key`. Resolves, once the stream's subscription has started,
   * with where it started and a function that removes the listener. Rejects with
   * `ERR_SSE_CLOSED` after {@link StreamReader.close}.
   */
  async subscribe(key: string, listener: BackplaneListener): Promise<BackplaneSubscription> {
    if (this.closed) throw closedError();
    const subscription = this.subscriptions.get(key) ?? this.add(key);
    const { listeners, started } = subscription;
    listeners.add(listener);
    const unsubscribe = () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.subscriptions.get(key) === subscription) this.subscriptions.delete(key);
    };
    await started;
    if (this.closed) throw closedError();
    // A listener that joins a running subscription starts where it stands now.
    const { lastId } = subscription;
    const start = lastId === ORIGIN_ID ? undefined : lastId === subscription.start?.id ? subscription.start : positionAt(lastId!);
    return { start, unsubscribe };
  }

  /**
   * Ends the loop and the connection it opened, settles every pending subscription, and deletes
   * the wake-up stream if it wrote one. Never touches the injected client otherwise.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.resumeIdle?.();
    this.interrupter.interrupt();
    this.connection?.close();
    this.closing = this.release();
    return this.closing;
  }

  private async release(): Promise<void> {
    await this.loop;
    this.subscriptions.clear();
    if (this.woken && this.commands.ready()) await this.commands.send(['DEL', this.wakeKey], 'Removing the wake-up stream').catch(() => {});
  }

  private add(key: string): Subscription {
    const subscription: Subscription = {
      key,
      listeners: new Set(),
      lastId: undefined,
      start: undefined,
      started: Promise.resolve(),
      suspect: false,
    };
    // Sends its first commands now: the subscription starts at this call.
    subscription.started = this.start(subscription);
    this.subscriptions.set(key, subscription);
    return subscription;
  }

  /**
   * Finds where a new subscription starts: at the moment subscribe() was called, not when Redis
   * first answers, which may be much later (a client still connecting, Redis down). Entries
   * appended in between are delivered too, so a stream that a channel took on meanwhile misses
   * none. It starts after a real entry, which replay can resume from. Retries until Redis answers.
   */
  private async start(subscription: Subscription): Promise<void> {
    const calledAt = performance.now();
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        const newest = this.commands.newest(subscription.key);
        const answer = await this.interrupter.race(Promise.all([newest, this.commands.send(['TIME'], 'Reading the Redis clock')]));
        if (answer === INTERRUPTED) return;
        const [latest, time] = answer;
        const since = sinceId(time, performance.now() - calledAt);
        let from = latest;
        if (latest && positionOf(latest.id)! > positionOf(since)!) {
          const before = await this.interrupter.race(
            this.commands.send(['XREVRANGE', subscription.key, since, '-', 'COUNT', '1'], `Reading ${subscription.key}`),
          );
          if (before === INTERRUPTED) return;
          from = entriesOf(before)[0];
        }
        subscription.start = from && positionAt(from.id);
        subscription.lastId = from?.id ?? ORIGIN_ID;
        this.outage = false;
        this.wake();
        return;
      } catch (error) {
        this.reportOutage(error);
        await this.interrupter.pause(backoff(attempt));
      }
    }
  }

  /** Makes the loop take a new subscription into account now, not after its XREAD times out. */
  private wake(): void {
    if (this.closed) return;
    if (!this.connection) {
      this.connection = duplicateClient(this.client, this.reportOutage);
      this.loop = this.run();
    } else if (this.resumeIdle) {
      this.resumeIdle();
    } else if (this.blocked) {
      this.woken = true;
      // Fire and forget: if Redis is down, the loop's own XREAD fails and is sent again anyway.
      this.commands
        .send(['XADD', this.wakeKey, 'MAXLEN', '1', '*', 'w', '1'], 'Waking the reader')
        .then(() => this.commands.send(['PEXPIRE', this.wakeKey, String(WAKE_TTL_MS)], 'Expiring the wake-up stream'))
        .catch(() => {});
    }
  }

  /** The loop: one blocking XREAD after another, over every started subscription. */
  private async run(): Promise<void> {
    for (let failures = 0; !this.closed;) {
      const ready = [...this.subscriptions.values()].filter((subscription) => subscription.lastId !== undefined);
      if (ready.length === 0) {
        await new Promise<void>((resolve) => (this.resumeIdle = resolve));
        this.resumeIdle = undefined;
        continue;
      }
      let reply: unknown;
      this.blocked = true;
      try {
        reply = await this.interrupter.race(this.connection!.send(this.xread(ready)), this.hungAfterMs);
      } catch (error) {
        if (this.closed) break;
        const hung = error instanceof TimedOut;
        this.reportOutage(hung ? new Error(`XREAD did not return within ${this.hungAfterMs} ms`) : error);
        if (hung) {
          // The connection is dead without having said so: replace it.
          this.connection!.close();
          this.connection = duplicateClient(this.client, this.reportOutage);
        }
        await this.interrupter.pause(backoff(failures++));
        continue;
      } finally {
        this.blocked = false;
      }
      if (reply === INTERRUPTED || this.closed) break;
      if (failures > 0) for (const subscription of ready) subscription.suspect = true;
      failures = 0;
      if (this.outage) {
        this.outage = false;
        reportBackplaneEvent('reconnect', 'redis');
      }
      try {
        await this.deliver(reply);
      } catch (error) {
        this.onError(error); // a reply of a shape never seen: say so, and keep reading
      }
    }
  }

  /** The XREAD for `ready` and the wake-up stream, each from the last id it delivered. */
  private xread(ready: Subscription[]): string[] {
    const args = ['XREAD', 'COUNT', String(this.readCount), 'BLOCK', String(this.blockMs), 'STREAMS'];
    for (const { key } of ready) args.push(key);
    args.push(this.wakeKey);
    for (const { lastId } of ready) args.push(lastId!);
    args.push(this.wakeLastId);
    return args;
  }

  private async deliver(reply: unknown): Promise<void> {
    for (const [name, items] of pairsOf(reply)) {
      const key = bulkString(name);
      const entries = entriesOf(items);
      if (key === this.wakeKey) {
        if (entries.length > 0) this.wakeLastId = entries.at(-1)!.id;
        continue;
      }
      // The subscription may have ended, or started over, while the XREAD was out.
      const subscription = this.subscriptions.get(key);
      if (subscription?.lastId === undefined || entries.length === 0) continue;
      const gap = subscription.suspect && (await this.trimmedAfter(key, subscription.lastId));
      subscription.suspect = entries.length >= this.readCount;
      if (this.subscriptions.get(key) === subscription) this.deliverTo(subscription, entries, gap);
    }
  }

  /**
   * Whether entries after `lastId` left the stream before this reader read them. Trimming takes
   * the oldest first, so while `lastId` itself is there, nothing after it is gone. When it is
   * not, a gap is assumed (its successor may be gone too, and Redis does not say), which costs a
   * replay. From the origin, Redis 7 tells exactly: whether any entry ever added was removed.
   */
  private async trimmedAfter(key: string, lastId: string): Promise<boolean> {
    // On the reader's own connection, which just answered an XREAD: the injected one may not.
    const send = (args: string[]) => this.interrupter.race(this.connection!.send(args), this.hungAfterMs);
    try {
      if (lastId !== ORIGIN_ID) {
        const own = await send(['XRANGE', key, lastId, lastId]);
        return own !== INTERRUPTED && entriesOf(own).length === 0;
      }
      const info = new Map(pairsOf(await send(['XINFO', 'STREAM', key])).map(([name, value]) => [bulkString(name), value]));
      return !info.has('entries-added') || Number(info.get('entries-added')) > Number(info.get('length'));
    } catch {
      return true; // unknown: a replay costs little, a silent loss would not
    }
  }

  private deliverTo(subscription: Subscription, entries: RawEntry[], gap: boolean): void {
    let last = positionOf(subscription.lastId!)!;
    for (const raw of entries) {
      const position = positionOf(raw.id);
      if (position === undefined || position <= last) continue;
      last = position;
      subscription.lastId = raw.id;
      const entry = toEntry(raw, position);
      for (const listener of subscription.listeners) {
        try {
          if (gap) listener.gap();
          listener.entry(entry);
        } catch (error) {
          this.onError(error);
        }
      }
      gap = false;
    }
  }

  /** Reports the first failure of an outage; the retries that follow stay quiet. */
  private readonly reportOutage = (error: unknown): void => {
    if (this.outage || this.closed) return;
    this.outage = true;
    const message = `The Redis reader lost its connection; it keeps retrying from the last id it delivered. (${messageOf(error)})`;
    this.onError(new RedisBackplaneError(message, { cause: error, sent: false }));
  };
}

/**
 * The newest id a subscription may start after: Redis' clock (`TIME`) less the time since
 * subscribe() was called and a margin for the round trip.
 */
function sinceId(time: unknown, elapsedMs: number): string {
  const [seconds, micros] = (time as unknown[]).map(bulkString);
  const since = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - Math.ceil(elapsedMs) - START_MARGIN_MS;
  return `${Math.max(0, since - 1)}-${MAX_SEQUENCE}`;
}

const positionAt = (id: string): BackplanePosition => ({ id, position: positionOf(id)! });

function backoff(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** attempt);
}
