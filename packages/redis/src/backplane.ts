import { randomUUID } from 'node:crypto';
import { SseError, type Backplane } from '@ssekit/core';
import { reportBackplaneEvent } from '@ssekit/core/adapter';
import { wrapClient, type RedisClient } from './client.js';
import { Commands } from './commands.js';
import { fieldsOf, ORIGIN_ID } from './entry.js';
import { closedError } from './error.js';
import { StreamReader } from './reader.js';
import { replayAfter } from './replay.js';
import { bulkString } from './reply.js';

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
    onError: userOnError = (error: unknown) => console.warn('[ssekit/redis]', error instanceof Error ? error.message : error),
  } = options ?? ({} as RedisBackplaneOptions);
  // Everything onError hears reaches the ssekit:backplane:error diagnostic too.
  const onError = (error: unknown) => {
    reportBackplaneEvent('error', 'redis', error);
    userOnError(error);
  };
  if (typeof prefix !== 'string') throw new SseError('ERR_SSE_INVALID_OPTION', `prefix must be a string, not ${typeof prefix}.`);
  for (const [name, value] of Object.entries({ maxLen, blockMs, readCount, commandTimeoutMs })) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new SseError('ERR_SSE_INVALID_OPTION', `${name} must be a positive integer, not ${String(value)}.`);
    }
  }
  const client = options?.client;
  const commands = new Commands(wrapClient(client), commandTimeoutMs);
  // The key layout: one stream per channel, and one wake-up stream per backplane.
  const keyOf = (channel: string) => `${prefix}${channel}`;
  const wakeKey = `${prefix}~wake:${randomUUID()}`;
  const reader = new StreamReader({ client, commands, wakeKey, blockMs, readCount, commandTimeoutMs, onError });
  let closed = false;

  return {
    originId: ORIGIN_ID,

    publish(channel, entry) {
      if (closed) return Promise.reject(closedError());
      if (entry.id !== undefined) {
        return Promise.reject(
          new SseError(
            'ERR_SSE_INVALID_FIELD',
            `The Redis backplane assigns every id itself (the stream entry id, such as "1718000000000-0"); publish without an id, not with ${JSON.stringify(entry.id)}.`,
          ),
        );
      }
      const key = keyOf(channel);
      const args = ['XADD', key, 'MAXLEN', trimExactly ? '=' : '~', String(maxLen), '*', ...fieldsOf(entry)];
      return commands.send(args, `Publishing to ${key}`, { failFast: true }).then(bulkString);
    },

    subscribe(channel, listener) {
      if (closed) return Promise.reject(closedError());
      return reader.subscribe(keyOf(channel), listener);
    },

    replay(channel, afterId, limit) {
      if (closed) return Promise.reject(closedError());
      return replayAfter(commands, keyOf(channel), afterId, limit);
    },

    close() {
      closed = true;
      return reader.close();
    },
  };
}
