import type { BackplaneEntry, BackplaneListener, BackplaneSubscription } from '@ssekit/core';
import type { Driver } from './driver.js';
import { backoff, Interrupter } from './interrupter.js';
import { parsePayload } from './payload.js';
import { entryOf, idOf, type Row, type Statements } from './statements.js';

/** The most entries one read fetches. */
const READ_COUNT = 1000;
const MAX_BACKOFF_MS = 1000;

/** One channel that this process reads, and its listeners. */
interface Feed {
  readonly channel: string;
  readonly listeners: Set<BackplaneListener>;
  /** Resolves once `last` is known, or the reader closed. */
  started: Promise<void>;
  /** The id delivered last, or where delivery started; 0 before the channel's first entry. */
  last: number;
  /** Whether `last` is known. */
  ready: boolean;
  /** The highest id a notification announced. */
  known: number;
  /** Whether a read is out: the next one waits for it, so that entries go out in order. */
  reading: boolean;
  /** Whether the log must be read to its end, not only to `known`: after a lost connection. */
  drain: boolean;
}

/** What a {@link Reader} reads with. */
export interface ReaderOptions {
  readonly driver: Driver;
  readonly statements: Statements;
  /** Runs a statement once the tables exist. */
  readonly run: (text: string, values: readonly unknown[], what: string) => Promise<readonly Row[]>;
  /** Told when a listener throws. */
  readonly onError: (error: unknown) => void;
}

/**
 * Delivers each subscribed channel's log to its listeners. Notifications say which channel has
 * which new id; an entry that came whole in its notification goes out at once when it is the
 * next one, and anything else is read from the table (`id > last`, in order), which is also how
 * a reader catches up after its listening connection was lost. Ids are contiguous, so an entry
 * that is not the next one means the ones between were trimmed: the listeners hear `gap()`
 * before it.
 */
export class Reader {
  private readonly feeds = new Map<string, Feed>();
  private readonly interrupter = new Interrupter();
  private closed = false;

  constructor(private readonly options: ReaderOptions) {}

  /**
   * Adds a listener once its channel's feed has started: LISTEN is active, then the channel's
   * last id is read, and the listener gets every entry after it.
   */
  async subscribe(channel: string, listener: BackplaneListener): Promise<BackplaneSubscription> {
    const feed = this.feeds.get(channel) ?? this.add(channel);
    await feed.started;
    if (this.closed) return { start: undefined, unsubscribe: noop };
    // The last listener left while this one waited, and the feed is gone: start another.
    if (this.feeds.get(channel) !== feed) return this.subscribe(channel, listener);
    feed.listeners.add(listener);
    return {
      start: feed.last > 0 ? { id: String(feed.last), position: feed.last } : undefined,
      unsubscribe: () => {
        feed.listeners.delete(listener);
        if (feed.listeners.size === 0 && this.feeds.get(channel) === feed) this.feeds.delete(channel);
      },
    };
  }

  /** A NOTIFY payload from the listening connection. */
  notification(payload: string): void {
    const notification = parsePayload(payload);
    const feed = notification && this.feeds.get(notification.channel);
    if (!feed || !notification) return;
    if (notification.id > feed.known) feed.known = notification.id;
    if (!feed.ready || notification.id <= feed.last) return;
    if (!feed.reading && notification.entry && notification.id === feed.last + 1) this.deliver(feed, notification.entry);
    else void this.read(feed);
  }

  /** LISTEN is active again after a loss: every feed reads what it missed meanwhile. */
  relistened(): void {
    for (const feed of this.feeds.values()) {
      if (feed.ready) void this.read(feed, true);
    }
  }

  /** Stops every feed and settles every pending subscription. */
  close(): void {
    this.closed = true;
    this.interrupter.interrupt();
    this.feeds.clear();
  }

  private add(channel: string): Feed {
    const feed: Feed = {
      channel,
      listeners: new Set(),
      started: Promise.resolve(),
      last: 0,
      ready: false,
      known: 0,
      reading: false,
      drain: false,
    };
    feed.started = this.start(feed);
    this.feeds.set(channel, feed);
    return feed;
  }

  /** LISTEN first, then the channel's last id: what is committed after that read is announced. */
  private async start(feed: Feed): Promise<void> {
    const { driver, statements, run } = this.options;
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        if (!(await driver.listen())) return;
        const epoch = driver.epoch;
        const rows = await run(statements.lastId, [feed.channel], `Reading where ${feed.channel} starts`);
        if (this.closed) return;
        feed.last = rows[0] ? idOf(rows[0].last_id) : 0;
        feed.ready = true;
        // LISTEN was lost and restored meanwhile: notifications may be gone, so read on.
        if (driver.epoch !== epoch) void this.read(feed, true);
        else if (feed.known > feed.last) void this.read(feed);
        return;
      } catch (error) {
        driver.report(error);
        await this.interrupter.pause(backoff(attempt, MAX_BACKOFF_MS));
      }
    }
  }

  /**
   * Reads the feed's log from the table, after the last id delivered, until it reaches the
   * newest id announced (or, with `drain`, the end of the log). One read at a time per feed;
   * a failed read is tried again, with backoff.
   */
  private async read(feed: Feed, drain = false): Promise<void> {
    if (drain) feed.drain = true;
    if (feed.reading) return;
    feed.reading = true;
    const { driver, statements, run } = this.options;
    try {
      for (let attempt = 0; !this.closed && this.feeds.get(feed.channel) === feed && (feed.drain || feed.known > feed.last);) {
        const draining = feed.drain;
        const announced = feed.known;
        feed.drain = false;
        let rows: readonly Row[];
        try {
          rows = await run(statements.after, [feed.channel, feed.last, READ_COUNT], `Reading ${feed.channel}`);
        } catch (error) {
          feed.drain ||= draining;
          driver.report(error);
          await this.interrupter.pause(backoff(attempt++, MAX_BACKOFF_MS));
          continue;
        }
        attempt = 0;
        if (this.closed || this.feeds.get(feed.channel) !== feed) return;
        const first = rows[0];
        if (first && idOf(first.id) > feed.last + 1) this.gap(feed);
        for (const row of rows) {
          const entry = entryOf(row);
          if ((entry.position as number) > feed.last) this.deliver(feed, entry);
        }
        if (rows.length === READ_COUNT) feed.drain = true;
        // Nothing after `last`, though a newer id was announced: trimmed before it was read.
        // The gap is reported before the next entry that comes, unless one came meanwhile.
        else if (rows.length === 0 && feed.known === announced) break;
      }
    } finally {
      feed.reading = false;
    }
  }

  private deliver(feed: Feed, entry: BackplaneEntry): void {
    feed.last = entry.position as number;
    for (const listener of feed.listeners) {
      try {
        listener.entry(entry);
      } catch (error) {
        this.options.onError(error);
      }
    }
  }

  private gap(feed: Feed): void {
    for (const listener of feed.listeners) {
      try {
        listener.gap();
      } catch (error) {
        this.options.onError(error);
      }
    }
  }
}

function noop(): void {}
