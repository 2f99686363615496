import { SseError, type Backplane, type BackplaneSubscription } from '@ssekit/core';
import { reportBackplaneEvent } from '@ssekit/core/adapter';
import type { NatsConnection } from '@nats-io/nats-core';
import { ORIGIN_ID } from './entry.js';
import { closedError, messageOf, NatsBackplaneError } from './error.js';
import { Feed, type FeedContext } from './feed.js';
import { Link } from './link.js';
import { Pauses } from './pauses.js';
import { checkPublish, Publisher } from './publisher.js';
import { replayAfter } from './replay.js';
import { connectionWarning } from './settings.js';
import { Stream } from './stream.js';

/** Options of {@link createNatsBackplane}. */
export interface NatsBackplaneOptions {
  /**
   * A connected NATS connection (`connect()` from `@nats-io/transport-node`), with fast reconnect
   * settings: see the README. The backplane sends its requests on it and never closes it.
   */
  connection: NatsConnection;
  /**
   * The JetStream stream that holds every channel, with one subject per channel:
   * `<stream>.<channel name as one token>`. Made on first use when it does not exist. Letters,
   * digits, `_` and `-`.
   * @default 'ssekit'
   */
  stream?: string;
  /**
   * How many entries each channel keeps (the stream's `max_msgs_per_subject`): what replay after
   * `Last-Event-ID` can reach. Older ids get the channel's reset event. Exact.
   * @default 10000
   */
  maxLen?: number;
  /**
   * How long entries stay (the stream's `max_age`), in ms; 0 keeps them until `maxLen` pushes
   * them out. With an age limit, a client that saw nothing before it dropped gets the reset
   * event when it comes back (see the README).
   * @default 0
   */
  maxAgeMs?: number;
  /**
   * How long a publish, a replay or a request of the reader waits for NATS before it rejects (or,
   * for the reader, tries again). A publish while the connection is down rejects at once.
   * @default 5000
   */
  timeoutMs?: number;
  /**
   * How often the server tells each live consumer that it is there while nothing is published
   * (the consumer's idle heartbeat); two missed in a row make the backplane start a new consumer.
   * From 500 to 30000.
   * @default 1000
   */
  heartbeatMs?: number;
  /**
   * Told when the connection drops (once per outage; delivery resumes from the last entry
   * delivered), when a channel's listener throws, and when the connection's reconnect settings
   * cannot keep the backplane's promises.
   * @default a console.warn
   */
  onError?: (error: unknown) => void;
}

const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A backplane on NATS JetStream: channels that share a stream and a name share one feed across
 * every server instance, and a client resumes on any instance with the `Last-Event-ID` it got
 * from another.
 *
 * - `publish` appends to `<stream>.<channel>`; the stream sequence becomes the SSE id, a decimal
 *   integer that grows in delivery order, valid on every instance. Each message names the
 *   previous one of its channel (`Ssekit-Prev`), appended only if that is still the newest.
 * - Each subscribed channel is read by one consumer per process, which the backplane starts
 *   again after the last entry it delivered whenever it may have lost its place.
 * - Replay after `Last-Event-ID` follows the chain from that id to the newest entry; an id that
 *   was trimmed away, or is unknown, gets the channel's reset event.
 * - A publish while the connection is down rejects at once with {@link NatsBackplaneError}.
 *
 * @example
 * ```ts
 * import { connect } from '@nats-io/transport-node';
 * import { createChannel } from '@ssekit/core';
 * import { createNatsBackplane } from '@ssekit/nats';
 *
 * const nc = await connect({ servers: process.env.NATS_URL, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
 * const backplane = createNatsBackplane({ connection: nc });
 * const feed = createChannel({ name: 'feed', backplane });
 * app.get('/events', sse(), (req, res) => feed.subscribe(res.sse));
 * await feed.publish({ event: 'tick', data: { n: 1 } }); // resolves to an id such as "42"
 * // on shutdown: await feed.close(); await backplane.close(); await nc.drain();
 * ```
 */
export function createNatsBackplane(options: NatsBackplaneOptions): Backplane {
  const {
    connection,
    stream: name = 'ssekit',
    maxLen = 10_000,
    maxAgeMs = 0,
    timeoutMs = 5000,
    heartbeatMs = 1000,
    onError = (error: unknown) => console.warn('[ssekit/nats]', messageOf(error)),
  } = options ?? ({} as NatsBackplaneOptions);
  checkConnection(connection);
  if (typeof name !== 'string' || !STREAM_NAME.test(name)) {
    throw new SseError('ERR_SSE_INVALID_OPTION', `stream must be 1 to 64 letters, digits, _ or -, not ${JSON.stringify(name)}.`);
  }
  for (const [option, value, min] of [
    ['maxLen', maxLen, 1],
    ['maxAgeMs', maxAgeMs, 0],
    ['timeoutMs', timeoutMs, 1],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new SseError('ERR_SSE_INVALID_OPTION', `${option} must be an integer of at least ${min}, not ${String(value)}.`);
    }
  }
  if (!Number.isSafeInteger(heartbeatMs) || heartbeatMs < 500 || heartbeatMs > 30_000) {
    throw new SseError('ERR_SSE_INVALID_OPTION', `heartbeatMs must be an integer from 500 to 30000, not ${String(heartbeatMs)}.`);
  }
  if (typeof onError !== 'function') throw new SseError('ERR_SSE_INVALID_OPTION', 'onError must be a function.');

  const link = new Link(connection);
  const stream = new Stream({ connection, link, name, maxLen, maxAgeMs, timeoutMs });
  const publisher = new Publisher(stream);
  const pauses = new Pauses();
  const feeds = new Map<string, Feed>();
  let closed = false;
  let outage = false;

  const report = (error: unknown) => {
    reportBackplaneEvent('error', 'nats', error);
    try {
      onError(error);
    } catch {
      // the user's hook must not break delivery
    }
  };
  // Once per outage that was reported, when the backplane works again.
  const endOutage = () => {
    if (!outage) return;
    outage = false;
    reportBackplaneEvent('reconnect', 'nats');
  };
  const context: FeedContext = {
    stream,
    heartbeatMs,
    connected: () => link.connected(),
    ended: () => connection.isClosed(),
    observe: (subject, seq) => publisher.observe(subject, seq),
    pause: (ms) => pauses.pause(ms),
    failed(error) {
      if (outage || closed) return;
      outage = true;
      // A stream that conflicts with the options says so in its own words.
      if (error instanceof SseError && error.code === 'ERR_SSE_INVALID_OPTION') return report(error);
      report(
        new NatsBackplaneError(`Reading from NATS failed; the backplane keeps retrying. (${messageOf(error)})`, {
          cause: error,
          sent: false,
        }),
      );
    },
    recovered: endOutage,
    onError: report,
  };

  link.onDisconnect(() => {
    if (outage || closed) return;
    outage = true;
    const message =
      'The NATS connection dropped; publishes reject until it is back, and delivery then resumes after the last entry delivered.';
    report(new NatsBackplaneError(message, { sent: false }));
  });
  link.onReconnect(() => {
    if (feeds.size === 0) endOutage();
    // Whatever the consumers were doing, they may have lost their place: start each again.
    for (const feed of feeds.values()) feed.reopen();
  });
  link.onClose(() => {
    if (closed) return;
    report(new NatsBackplaneError('The NATS connection closed for good: the backplane can neither publish nor deliver.', { sent: false }));
  });
  const subjectOrError = (channel: string): string | SseError => {
    try {
      return stream.subjectOf(channel);
    } catch (error) {
      return error as SseError;
    }
  };
  const warning = connectionWarning(connection);
  if (warning) report(new SseError('ERR_SSE_INVALID_OPTION', warning));

  return {
    originId: ORIGIN_ID,

    publish(channel, entry) {
      if (closed) return Promise.reject(closedError());
      const invalid = checkPublish(entry);
      if (invalid) return Promise.reject(invalid);
      const subject = subjectOrError(channel);
      if (subject instanceof SseError) return Promise.reject(subject);
      if (!link.connected()) {
        return Promise.reject(
          new NatsBackplaneError(`Publishing to ${subject} failed: the NATS connection is not connected.`, { sent: false }),
        );
      }
      return publisher.publish(subject, entry);
    },

    subscribe(channel, listener) {
      if (closed) return Promise.reject(closedError());
      const subject = stream.subjectOf(channel); // throws on a name that cannot be a subject
      let feed = feeds.get(subject);
      if (!feed) feeds.set(subject, (feed = new Feed(subject, context)));
      const joined = feed;
      joined.listeners.add(listener);
      const unsubscribe = () => {
        joined.listeners.delete(listener);
        if (joined.listeners.size === 0 && feeds.get(subject) === joined) {
          feeds.delete(subject);
          void joined.stop();
        }
      };
      return joined.started.then((): BackplaneSubscription => {
        if (closed) throw closedError();
        // A listener that joins a running feed starts where the feed stands now.
        return { start: joined.position(), unsubscribe };
      });
    },

    async replay(channel, afterId, limit) {
      if (closed) throw closedError();
      return replayAfter(stream, stream.subjectOf(channel), afterId, limit);
    },

    async close() {
      if (closed) return;
      closed = true;
      pauses.interrupt();
      const stopping = [...feeds.values()].map((feed) => feed.stop());
      feeds.clear();
      await Promise.all(stopping);
      link.close();
    },
  };
}

function checkConnection(connection: unknown): asserts connection is NatsConnection {
  const candidate = connection as Partial<Record<'status' | 'request' | 'subscribe' | 'isClosed', unknown>> | undefined;
  if (
    !candidate ||
    typeof candidate.status !== 'function' ||
    typeof candidate.request !== 'function' ||
    typeof candidate.subscribe !== 'function' ||
    typeof candidate.isClosed !== 'function'
  ) {
    throw new SseError('ERR_SSE_INVALID_OPTION', 'connection must be a NATS connection, as connect() from @nats-io/transport-node makes.');
  }
}
