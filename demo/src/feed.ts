import { createChannel, type SseStream } from '@ssekit/core';

/** The demo's events by name, with the type of their data. */
export type DemoEvents = {
  tick: { count: number; time: string };
  notice: { text: string; time: string };
  /**
   * The channel's reset signal: the client's `Last-Event-ID` is unknown or too old, so it
   * missed events that are gone and must start over.
   */
  reset: { lastEventId: string };
};

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
   * Serves one client through the channel: replays what came after its `Last-Event-ID` (or
   * sends `reset` when that id is unknown), then keeps it live until it closes.
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
  // The channel formats each event once for every tab, keeps the last `replayLimit` for
  // replay, and sends `reset` to a client whose Last-Event-ID it cannot resume from.
  const channel = createChannel<DemoEvents>({ history: { maxEvents: replayLimit } });
  const streams = new Set<SseStream<DemoEvents>>();
  let ticks = 0;
  let notices = 0;
  let closed = false;

  const time = () => new Date().toISOString();
  const tickTimer = setInterval(() => void channel.publish({ event: 'tick', data: { count: ++ticks, time: time() } }), tickMs);
  const noticeTimer = setInterval(
    () => void channel.publish({ event: 'notice', data: { text: NOTICES[notices++ % NOTICES.length]!, time: time() } }),
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
      // Replays what the client missed since its Last-Event-ID, then keeps it live.
      channel.subscribe(stream);
      streams.add(stream);
      stream.onClose(() => streams.delete(stream));
    },
    dropAll,
    close() {
      closed = true;
      clearInterval(tickTimer);
      clearInterval(noticeTimer);
      void channel.close();
    },
  };
}
