import { createChannel, type Backplane, type SseStream } from '@ssekit/core';

/** The demo's events by name, with the type of their data. */
export type DemoEvents = {
  /** `from` names the instance that published it, when instances share a feed through Redis. */
  tick: { count: number; time: string; from?: string };
  notice: { text: string; time: string; from?: string };
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
   * How many `tick` events to publish before the ticks stop: a run whose numbers a test (or a
   * recording) can know in advance.
   * @default Infinity
   */
  ticks?: number;
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
  /**
   * Where the feed lives: by default in this process; a Redis backplane shares it with every
   * instance on the same Redis, and each instance then publishes its own ticks and notices.
   */
  backplane?: Backplane;
  /** The name this instance puts in the `from` of what it publishes to a shared feed. */
  instance?: string;
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
  /** Stops publishing and closes every open stream; resolves once the channel has let go. */
  close(): Promise<void>;
}

const NOTICES = [
  'Press "drop connection": the browser reconnects and the server replays what it missed.',
  'Each event has an id; on reconnect the browser sends the last one back as Last-Event-ID.',
  'Restart the server with this page open: its ids are unknown there, so the page gets a reset.',
];

/** The same, for instances that share the feed through Redis, where ids outlive a restart. */
const SHARED_NOTICES = [
  ...NOTICES.slice(0, 2),
  'Restart this instance with the page open: the ids live in Redis, so the page resumes with no reset.',
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
  const {
    tickMs = 1000,
    ticks: tickLimit = Infinity,
    noticeMs = 5000,
    replayLimit = 100,
    reconnectMs = 3000,
    backplane,
    instance,
  } = options;
  // The channel formats each event once for every tab, keeps the last `replayLimit` for
  // replay (in memory, or in Redis), and sends `reset` to a client whose Last-Event-ID it
  // cannot resume from.
  const channel = backplane
    ? createChannel<DemoEvents>({ name: 'demo', backplane, maxReplayEvents: replayLimit })
    : createChannel<DemoEvents>({ history: { maxEvents: replayLimit } });
  const from = backplane ? { from: instance ?? 'this instance' } : {};
  const streams = new Set<SseStream<DemoEvents>>();
  let ticks = 0;
  let notices = 0;
  let closed = false;

  const time = () => new Date().toISOString();
  // A publish rejects while Redis is down; the demo just skips that tick.
  const skip = (error: unknown) =>
    console.warn(`ssekit demo: an event was not published (${error instanceof Error ? error.message : String(error)})`);
  const tickTimer = setInterval(() => {
    if (ticks >= tickLimit) return clearInterval(tickTimer);
    return channel.publish({ event: 'tick', data: { count: ++ticks, time: time(), ...from } }).catch(skip);
  }, tickMs);
  const noticeTimer = setInterval(() => {
    const texts = backplane ? SHARED_NOTICES : NOTICES;
    return channel.publish({ event: 'notice', data: { text: texts[notices++ % texts.length]!, time: time(), ...from } }).catch(skip);
  }, noticeMs);

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
      return channel.close();
    },
  };
}
