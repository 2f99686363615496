import type { SseStream } from '@ssekit/core';

/** The demo's events by name, with the type of their data. */
export type DemoEvents = {
  tick: { count: number; time: string };
  notice: { text: string; time: string };
  /** The client's `Last-Event-ID` is unknown: it missed events that are gone, so start over. */
  reset: { unknownId: string };
};

type PublishedName = 'tick' | 'notice';

/** One published event, kept for replay, and sent as is. */
export type FeedEvent = {
  [K in PublishedName]: { readonly id: number; readonly event: K; readonly data: DemoEvents[K] };
}[PublishedName];

/** An event to publish: the buffer gives it its id. */
export type NewFeedEvent = { [K in PublishedName]: { event: K; data: DemoEvents[K] } }[PublishedName];

/**
 * The last few events with their ids, so that a client that reconnects gets what it missed.
 * Ids count up from 1 and live in memory only. (Core channels will replace this.)
 */
export class ReplayBuffer {
  private readonly events: FeedEvent[] = [];
  private lastIdGiven = 0;

  constructor(private readonly capacity: number) {}

  /** The id of the newest event, or 0 before the first. */
  get lastId(): number {
    return this.lastIdGiven;
  }

  /** Stores `event` under the next id, dropping the oldest past capacity. */
  add(event: NewFeedEvent): FeedEvent {
    const stored: FeedEvent = { id: ++this.lastIdGiven, ...event };
    this.events.push(stored);
    if (this.events.length > this.capacity) this.events.shift();
    return stored;
  }

  /**
   * The events after `lastEventId`, oldest first, or `undefined` when that id is unknown: not
   * an id this buffer gave out, or so old that events after it were already dropped.
   */
  after(lastEventId: string): FeedEvent[] | undefined {
    if (!/^\d+$/.test(lastEventId)) return undefined;
    const id = Number(lastEventId);
    const oldestKept = this.events[0]?.id ?? this.lastIdGiven + 1;
    // An id ahead of ours comes from an earlier run of the server, whose ids started over.
    if (id < oldestKept - 1 || id > this.lastIdGiven) return undefined;
    return this.events.slice(id - oldestKept + 1);
  }
}

/** Options of {@link createFeed}. */
export interface FeedOptions {
  /**
   * Milliseconds between `tick` events.
   * @default 1000
   */
  tickMs?: number;
  /**
   * Milliseconds between `notice` events.
   * @default 5000
   */
  noticeMs?: number;
  /**
   * How many past events a reconnecting client can catch up on.
   * @default 100
   */
  replayLimit?: number;
  /**
   * The `retry` sent to clients: how long a browser waits before it reconnects. Long enough
   * that a few events pile up, so the replay after a drop is there to see.
   * @default 3000
   */
  reconnectMs?: number;
}

/** The live feed behind `/events`, shared by every framework. */
export interface Feed {
  /**
   * Serves one client: replays what came after its `Last-Event-ID` (or sends `reset` when
   * that id is unknown), then keeps it live until it closes.
   */
  serve(stream: SseStream<DemoEvents>): void;
  /** Closes the server side of every open stream, as a flaky network would. Returns how many. */
  dropAll(): number;
  /** Stops publishing and closes every open stream. */
  close(): void;
}

const NOTICES = [
  'Press "drop connection": the browser reconnects and the server replays what it missed.',
  'Each event has an id; on reconnect the browser sends the last one back as Last-Event-ID.',
  'Restart the server with this page open: its ids are unknown there, so the page gets a reset.',
];

/**
 * Starts the demo feed: a `tick` every `tickMs` and a `notice` every `noticeMs`, each with the
 * next id, sent to every client that {@link Feed.serve} took on.
 *
 * @example
 * ```ts
 * const feed = createFeed({ tickMs: 1000 });
 * app.get('/events', sse(), (req, res) => feed.serve(res.sse));
 * process.once('SIGTERM', () => feed.close());
 * ```
 */
export function createFeed(options: FeedOptions = {}): Feed {
  const { tickMs = 1000, noticeMs = 5000, replayLimit = 100, reconnectMs = 3000 } = options;
  const buffer = new ReplayBuffer(replayLimit);
  const streams = new Set<SseStream<DemoEvents>>();
  let ticks = 0;
  let notices = 0;
  let closed = false;

  const publish = (event: NewFeedEvent): void => {
    const stored = buffer.add(event);
    // A client too slow for this closes with reason `overflow`, and catches up on reconnect.
    for (const stream of streams) void stream.send(stored);
  };
  const tickTimer = setInterval(
    () => publish({ event: 'tick', data: { count: ++ticks, time: new Date().toISOString() } }),
    tickMs,
  );
  const noticeTimer = setInterval(
    () => publish({ event: 'notice', data: { text: NOTICES[notices++ % NOTICES.length]!, time: new Date().toISOString() } }),
    noticeMs,
  );

  const dropAll = (): number => {
    const count = streams.size;
    for (const stream of streams) stream.close();
    return count;
  };

  return {
    serve(stream) {
      if (closed) return stream.close();
      // The retry goes out with the head, so the browser's `open` fires at once.
      void stream.retry(reconnectMs);
      // Replay and subscribe in one synchronous step: no event can be published in between,
      // so the client gets nothing twice and misses nothing.
      const { lastEventId } = stream;
      if (lastEventId !== undefined) {
        const missed = buffer.after(lastEventId);
        if (missed) for (const event of missed) void stream.send(event);
        // The newest id resumes the client from here, not from its unknown id again.
        else void stream.send({ event: 'reset', id: buffer.lastId, data: { unknownId: lastEventId } });
      }
      streams.add(stream);
      stream.onClose(() => streams.delete(stream));
    },
    dropAll,
    close() {
      closed = true;
      clearInterval(tickTimer);
      clearInterval(noticeTimer);
      dropAll();
    },
  };
}
