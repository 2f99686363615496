import { randomUUID } from 'node:crypto';
import { SseError, type Backplane, type BackplaneEntry, type BackplaneReplay } from '@ssekit/core';
import { duplicateClient, wrapClient, type OwnedConnection, type RedisClient } from './client.js';
import { RedisBackplaneError } from './error.js';
import { bulkString, entriesOf, pairsOf, positionOf, type RawEntry } from './reply.js';

/** Options of {@link createRedisBackplane}. */
export interface RedisBackplaneOptions {
  /**
   * A connected ioredis or node-redis (`redis`) client. The backplane sends its commands on it
   * and never closes it; for its blocking reader it opens one duplicate, which `close()` closes.
   */
  client: RedisClient;
  /**
   * Put before every key: a channel named `events` lives in the stream `<prefix>events`.
   * @default 'ssekit:'
   */
  prefix?: string;
  /**
   * About how many entries each stream keeps (`XADD ... MAXLEN ~`): what replay after
   * `Last-Event-ID` can reach. Older ids get the channel's reset event.
   * @default 10000
   */
  maxLen?: number;
  /**
   * Trim to exactly `maxLen` (`MAXLEN =`) instead of letting Redis trim whole nodes when it is
   * cheap (`MAXLEN ~`, which may keep a few dozen more entries).
   * @default false
   */
  trimExactly?: boolean;
  /**
   * How long one blocking XREAD waits for new entries before it is sent again. Only the idle
   * cadence of the reader depends on it, never delivery latency.
   * @default 5000
   */
  blockMs?: number;
  /**
   * The most entries one XREAD returns per stream.
   * @default 1000
   */
  readCount?: number;
  /**
   * How long a publish, a replay or the start of a subscription waits for Redis before it
   * rejects (a publish) or tries again (a subscription). A publish while the client is not
   * connected rejects at once.
   * @default 5000
   */
  commandTimeoutMs?: number;
  /**
   * Told when the reader loses Redis (once per outage; it keeps retrying from the last id it
   * saw) and when a channel's listener throws.
   * @default a console.warn
   */
  onError?: (error: unknown) => void;
}

/** The id of the origin: before the first entry of every stream. */
const ORIGIN_ID = '0-0';
const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2000;
/** How long a wake-up entry may outlive the instance that wrote it, should it crash. */
const WAKE_TTL_MS = 60_000;
/** How far before subscribe() a subscription starts, for the error in reading Redis' clock. */
const START_MARGIN_MS = 100;
const MAX_SEQUENCE = '18446744073709551615';
const CLOSED = Symbol('closed');
const TIMED_OUT = Symbol('timed out');

type Listener = (entry: BackplaneEntry) => void;

/** One stream that this process reads, and the listeners of its channel. */
interface Subscription {
  readonly key: string;
  readonly listeners: Set<Listener>;
  /** The last id delivered, where the next XREAD starts; undefined until it is known. */
  lastId: string | undefined;
  /** Resolves once `lastId` is known, or the backplane closed. */
  started: Promise<void>;
}

/**
 * A backplane on Redis Streams: channels that share a Redis and a name share one feed across
 * every server instance, and a client resumes on any instance with the `Last-Event-ID` it got
 * from another.
 *
 * - `publish` appends with `XADD <prefix><channel> MAXLEN ~ <maxLen> *`; the Redis entry id
 *   becomes the SSE id, so ids are globally ordered and valid on every instance.
 * - One reader per backplane sends one blocking `XREAD` for all its channels, from the last id
 *   it delivered; after a disconnect it resumes from there, so nothing in the stream is skipped.
 * - Replay after `Last-Event-ID` is an `XRANGE` from that id; an id that was trimmed away, or is
 *   unknown, gets the channel's reset event.
 * - A publish while Redis is unreachable rejects with {@link RedisBackplaneError}.
 *
 * @example
 * ```ts
 * import Redis from 'ioredis';
 * import { createChannel } from '@ssekit/core';
 * import { createRedisBackplane } from '@ssekit/redis';
 *
 * const redis = new Redis(process.env.REDIS_URL);
 * const backplane = createRedisBackplane({ client: redis });
 * const feed = createChannel({ name: 'feed', backplane });
 * app.get('/events', sse(), (req, res) => feed.subscribe(res.sse));
 * await feed.publish({ event: 'tick', data: { n: 1 } }); // resolves to an id such as "1718000000000-0"
 * // on shutdown: await feed.close(); await backplane.close(); await redis.quit();
 * ```
 */
export function createRedisBackplane(options: RedisBackplaneOptions): Backplane {
  const {
    prefix = 'ssekit:',
    maxLen = 10_000,
    trimExactly = false,
    blockMs = 5000,
    readCount = 1000,
    commandTimeoutMs = 5000,
    onError = (error: unknown) => console.warn('[ssekit/redis]', error instanceof Error ? error.message : error),
  } = options ?? ({} as RedisBackplaneOptions);
  if (typeof prefix !== 'string') throw new SseError('ERR_SSE_INVALID_OPTION', `prefix must be a string, not ${typeof prefix}.`);
  for (const [name, value] of Object.entries({ maxLen, blockMs, readCount, commandTimeoutMs })) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new SseError('ERR_SSE_INVALID_OPTION', `${name} must be a positive integer, not ${String(value)}.`);
    }
  }
  const client = options?.client;
  const command = wrapClient(client);

  const subscriptions = new Map<string, Subscription>();
  // The reader blocks in XREAD on this stream too, so that a new subscription can wake it up.
  const wakeKey = `${prefix}~wake:${randomUUID()}`;
  let wakeLastId = ORIGIN_ID;
  let woken = false;
  let reader: OwnedConnection | undefined;
  let reading: Promise<void> | undefined;
  /** True while an XREAD is out: a subscription that starts meanwhile must wake the reader. */
  let blocked = false;
  let resumeIdle: (() => void) | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  /** What close() must cut short: waits on Redis, and pauses between retries. */
  const interrupters = new Set<() => void>();
  let outage = false;

  const keyOf = (channel: string) => `${prefix}${channel}`;

  /** Reports the first failure of an outage; the retries that follow stay quiet. */
  const reportOutage = (error: unknown) => {
    if (outage || closed) return;
    outage = true;
    onError(new RedisBackplaneError(`The Redis reader lost its connection; it keeps retrying from the last id it delivered. (${messageOf(error)})`, { cause: error, sent: false }));
  };

  /** Waits `ms`, or less if the backplane closes meanwhile. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        interrupters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      interrupters.add(done);
    });

  /** Settles with `promise`, or with CLOSED as soon as the backplane closes. */
  const untilClosed = <T>(promise: Promise<T>, timeoutMs?: number): Promise<T | typeof CLOSED> =>
    new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        interrupters.delete(done);
      };
      const interrupt = () => {
        done();
        resolve(CLOSED);
      };
      // A connection that died without a word never answers.
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => (done(), reject(TIMED_OUT)), timeoutMs);
      interrupters.add(interrupt);
      promise.then(
        (value) => (done(), resolve(value)),
        (error: unknown) => (done(), reject(error)),
      );
    });

  /**
   * Sends one command on the injected client, rejecting with a RedisBackplaneError after
   * `commandTimeoutMs`, or at once with `failFast` when the client is not connected: a
   * publish must not wait in the client's offline queue, to be sent after it was rejected.
   * The abort signal drops a command that node-redis has not written yet.
   */
  const send = (args: string[], what: string, failFast = false): Promise<unknown> => {
    if (failFast && !command.ready()) {
      return Promise.reject(new RedisBackplaneError(`${what} failed: the Redis client is not connected.`, { sent: false }));
    }
    const abort = new AbortController();
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        abort.abort();
        // A command that was never written rejects with an AbortError first (node-redis).
        setImmediate(() => {
          if (settled) return;
          settled = true;
          reject(new RedisBackplaneError(`${what} failed: Redis did not answer within ${commandTimeoutMs} ms.`, { sent: true }));
        });
      }, commandTimeoutMs);
      command.send(args, abort.signal).then(
        (reply) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          resolve(reply);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          const unsent = abort.signal.aborted && (error as Error | undefined)?.name === 'AbortError';
          reject(new RedisBackplaneError(`${what} failed: ${unsent ? `Redis did not answer within ${commandTimeoutMs} ms` : messageOf(error)}.`, { cause: error, sent: !unsent }));
        },
      );
    });
  };

  const toEntry = ({ id, fields }: RawEntry, position: bigint): BackplaneEntry => ({
    id,
    position,
    event: fields.get('e'),
    data: fields.get('d'),
    raw: fields.get('r') === '1',
  });

  const newest = async (key: string): Promise<RawEntry | undefined> =>
    entriesOf(await send(['XREVRANGE', key, '+', '-', 'COUNT', '1'], `Reading the newest entry of ${key}`))[0];

  /**
   * Finds where a new subscription starts: at the moment subscribe() was called, not when Redis
   * first answers, which may be much later (a client still connecting, Redis down). Entries
   * appended in between are delivered too, so a stream that a channel took on meanwhile misses
   * none. Retries until Redis answers.
   */
  const start = async (subscription: Subscription): Promise<void> => {
    const calledAt = performance.now();
    for (let attempt = 0; !closed; attempt++) {
      try {
        const answer = await untilClosed(Promise.all([newest(subscription.key), send(['TIME'], 'Reading the Redis clock')]));
        if (answer === CLOSED) return;
        const [latest, time] = answer;
        // Redis' clock now, less the time since subscribe() and a margin for the round trip.
        const [seconds, micros] = (time as unknown[]).map(bulkString);
        const since = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - Math.ceil(performance.now() - calledAt) - START_MARGIN_MS;
        const from = `${Math.max(0, since - 1)}-${MAX_SEQUENCE}`;
        subscription.lastId = latest && positionOf(latest.id)! < positionOf(from)! ? latest.id : from;
        outage = false;
        wake();
        return;
      } catch (error) {
        reportOutage(error);
        await pause(backoff(attempt));
      }
    }
  };

  /** Makes the reader take a new subscription into account now, not after its XREAD times out. */
  const wake = () => {
    if (closed) return;
    if (!reader) {
      reader = duplicateClient(client, reportOutage);
      reading = read();
    } else if (resumeIdle) {
      resumeIdle();
    } else if (blocked) {
      woken = true;
      // Fire and forget: if Redis is down, the reader's own XREAD fails and is rebuilt anyway.
      send(['XADD', wakeKey, 'MAXLEN', '1', '*', 'w', '1'], 'Waking the reader')
        .then(() => send(['PEXPIRE', wakeKey, String(WAKE_TTL_MS)], 'Expiring the wake-up stream'))
        .catch(() => {});
    }
  };

  /** The one reader loop: a blocking XREAD over every subscribed stream, from its last id. */
  const read = async (): Promise<void> => {
    for (let failures = 0; !closed; ) {
      const ready = [...subscriptions.values()].filter((subscription) => subscription.lastId !== undefined);
      if (ready.length === 0) {
        await new Promise<void>((resolve) => (resumeIdle = resolve));
        resumeIdle = undefined;
        continue;
      }
      const args = ['XREAD', 'COUNT', String(readCount), 'BLOCK', String(blockMs), 'STREAMS'];
      for (const { key } of ready) args.push(key);
      args.push(wakeKey);
      for (const { lastId } of ready) args.push(lastId!);
      args.push(wakeLastId);
      let reply: unknown;
      blocked = true;
      try {
        reply = await untilClosed(reader!.send(args), blockMs + commandTimeoutMs);
      } catch (error) {
        if (closed) break;
        reportOutage(error === TIMED_OUT ? new Error(`XREAD did not return within ${blockMs + commandTimeoutMs} ms`) : error);
        if (error === TIMED_OUT) {
          // The connection is dead without having said so: replace it.
          reader!.close();
          reader = duplicateClient(client, reportOutage);
        }
        await pause(backoff(failures++));
        continue;
      } finally {
        blocked = false;
      }
      if (reply === CLOSED) break;
      if (closed) break;
      failures = 0;
      outage = false;
      try {
        deliver(reply);
      } catch (error) {
        onError(error); // a reply of a shape never seen: say so, and keep reading
      }
    }
  };

  const deliver = (reply: unknown) => {
    for (const [name, items] of pairsOf(reply)) {
      const key = bulkString(name);
      const entries = entriesOf(items);
      if (key === wakeKey) {
        if (entries.length > 0) wakeLastId = entries.at(-1)!.id;
        continue;
      }
      // The subscription may have ended, or started over, while the XREAD was out.
      const subscription = subscriptions.get(key);
      if (subscription?.lastId === undefined) continue;
      let last = positionOf(subscription.lastId)!;
      for (const raw of entries) {
        const position = positionOf(raw.id);
        if (position === undefined || position <= last) continue;
        last = position;
        subscription.lastId = raw.id;
        const entry = toEntry(raw, position);
        for (const listener of subscription.listeners) {
          try {
            listener(entry);
          } catch (error) {
            onError(error);
          }
        }
      }
    }
  };

  const notFound = async (key: string): Promise<BackplaneReplay> => {
    const latest = await newest(key);
    return { found: false, latest: latest && { id: latest.id, position: positionOf(latest.id)! } };
  };

  return {
    originId: ORIGIN_ID,

    publish(channel, { id, event, data, raw }) {
      if (closed) return Promise.reject(new SseError('ERR_SSE_CLOSED', 'This Redis backplane is closed.'));
      if (id !== undefined) {
        return Promise.reject(
          new SseError(
            'ERR_SSE_INVALID_FIELD',
            `The Redis backplane assigns every id itself (the stream entry id, such as "1718000000000-0"); publish without an id, not with ${JSON.stringify(id)}.`,
          ),
        );
      }
      const key = keyOf(channel);
      const args = ['XADD', key, 'MAXLEN', trimExactly ? '=' : '~', String(maxLen), '*'];
      if (event !== undefined) args.push('e', event);
      if (data !== undefined) args.push('d', data);
      args.push('r', raw ? '1' : '0');
      return send(args, `Publishing to ${key}`, true).then(bulkString);
    },

    subscribe(channel, listener) {
      if (closed) throw new SseError('ERR_SSE_CLOSED', 'This Redis backplane is closed.');
      const key = keyOf(channel);
      let subscription = subscriptions.get(key);
      if (!subscription) {
        const created: Subscription = { key, listeners: new Set(), lastId: undefined, started: Promise.resolve() };
        created.started = start(created);
        subscriptions.set(key, (subscription = created));
      }
      const { listeners, started } = subscription;
      listeners.add(listener);
      const stop = () => {
        listeners.delete(listener);
        if (listeners.size === 0 && subscriptions.get(key) === subscription) subscriptions.delete(key);
      };
      return started.then(() => stop);
    },

    async replay(channel, afterId, limit) {
      const key = keyOf(channel);
      if (afterId === ORIGIN_ID) {
        // A client holds the origin when it subscribed before its instance delivered anything.
        // Only an empty stream proves that it missed nothing since: any entry might be one it
        // missed, or one from before it came, so it gets the reset event.
        if ((await newest(key)) === undefined) {
          const exists = Number(await send(['EXISTS', key], `Replaying ${key}`));
          if (exists === 0) return { found: true, position: 0n, entries: [] };
        }
        return notFound(key);
      }
      const position = positionOf(afterId);
      if (position !== undefined) {
        // Inclusive start: the first entry must be afterId itself, which proves it is still in
        // the stream (not trimmed, not made up) in the same read as what follows it.
        const entries = entriesOf(await send(['XRANGE', key, afterId, '+', 'COUNT', String(limit + 2)], `Replaying ${key}`));
        if (entries[0]?.id === afterId && entries.length - 1 <= limit) {
          return { found: true, position, entries: entries.slice(1).map((raw) => toEntry(raw, positionOf(raw.id)!)) };
        }
      }
      return notFound(key);
    },

    close() {
      if (closing) return closing;
      closed = true;
      resumeIdle?.();
      for (const interrupt of [...interrupters]) interrupt();
      reader?.close();
      closing = (async () => {
        await reading;
        subscriptions.clear();
        if (woken && command.ready()) await send(['DEL', wakeKey], 'Removing the wake-up stream').catch(() => {});
      })();
      return closing;
    },
  };
}

function backoff(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** attempt);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
