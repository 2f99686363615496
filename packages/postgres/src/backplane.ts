import { SseError, type Backplane, type BackplanePublish } from '@ssekit/core';
import { reportBackplaneEvent } from '@ssekit/core/adapter';
import { driverFor, type PostgresPool } from './client.js';
import { closedError, messageOf, PostgresBackplaneError, sqlStateOf } from './error.js';
import { payloadSuffix } from './payload.js';
import { Reader } from './reader.js';
import { ORIGIN_ID, replayAfter } from './replay.js';
import { schemaFor } from './schema.js';
import { idOf, statementsFor, type Row } from './statements.js';

/** The most rows one sweep statement deletes; a sweep sends a few when there are more. */
const SWEEP_BATCH = 10_000;
const MAX_SWEEP_STATEMENTS = 10;
/** Channel names are part of a primary key and of every notification: keep them short. */
const MAX_CHANNEL_BYTES = 1024;

/** Options of {@link createPostgresBackplane}. */
export interface PostgresBackplaneOptions {
  /**
   * A node-postgres (`pg`) `Pool` or a postgres.js (`postgres`) `sql` instance. The backplane
   * runs its statements through it and never ends it. For LISTEN it holds one connection of
   * its own per backplane: with `pg`, a client made with the pool's class and options (not one
   * of the pool's clients); with postgres.js, the one `sql.listen` opens.
   */
  pool: PostgresPool;
  /**
   * The table that holds every channel's log (`name` or `schema.name`, plain identifiers; the
   * schema must exist). The backplane creates it on first use, with `<table>_channels` beside it,
   * and NOTIFYs on a channel of the same name.
   * @default 'ssekit_events'
   */
  table?: string;
  /**
   * How many entries each channel keeps: what replay after `Last-Event-ID` can reach. Older
   * ids get the channel's reset event.
   * @default 10000
   */
  maxLen?: number;
  /**
   * How long an entry is kept, if it should not stay until `maxLen` pushes it out. A sweep
   * deletes older entries every `maxAgeMs / 2` (at least every minute, at most every 100 ms).
   * @default undefined: entries are trimmed by count only
   */
  maxAgeMs?: number;
  /**
   * How long any statement, or a wait for a connection from the pool, may take before it
   * rejects (a publish, a replay) or is tried again (a read, the start of a subscription). A
   * publish while PostgreSQL is known to be out of reach rejects at once instead.
   * @default 5000
   */
  commandTimeoutMs?: number;
  /**
   * Told when the backplane loses PostgreSQL (once per outage; it keeps retrying from the last
   * id it delivered), when an age sweep fails, and when a channel's listener throws.
   * @default a console.warn
   */
  onError?: (error: unknown) => void;
}

/**
 * A backplane on PostgreSQL: channels that share a database, a table and a name share one feed
 * across every server instance, and a client resumes on any instance with the `Last-Event-ID`
 * it got from another.
 *
 * - `publish` is one statement: it takes the channel's next id from a counter row, whose lock
 *   makes ids commit in order, inserts the entry, trims the channel to `maxLen`, and NOTIFYs.
 *   Ids are decimal integers, 1, 2, 3... per channel.
 * - One listening connection per backplane (so per process, not per client) hears every
 *   publish; each channel reads what it missed from the table, after its last delivered id, so
 *   nothing committed is skipped, even across an outage.
 * - Replay after `Last-Event-ID` is a range query; an id that was trimmed away, or is unknown,
 *   gets the channel's reset event.
 * - A publish while PostgreSQL is out of reach rejects at once with {@link PostgresBackplaneError}.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createChannel } from '@ssekit/core';
 * import { createPostgresBackplane } from '@ssekit/postgres';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const backplane = createPostgresBackplane({ pool });
 * const feed = createChannel({ name: 'feed', backplane });
 * app.get('/events', sse(), (req, res) => feed.subscribe(res.sse));
 * await feed.publish({ event: 'tick', data: { n: 1 } }); // resolves to an id such as "1"
 * // on shutdown: await feed.close(); await backplane.close(); await pool.end();
 * ```
 */
export function createPostgresBackplane(options: PostgresBackplaneOptions): Backplane {
  const {
    table = 'ssekit_events',
    maxLen = 10_000,
    maxAgeMs,
    commandTimeoutMs = 5000,
    onError: userOnError = (error: unknown) => console.warn('[ssekit/postgres]', messageOf(error)),
  } = options ?? ({} as PostgresBackplaneOptions);
  const schema = schemaFor(table);
  for (const [name, value] of Object.entries({ maxLen, commandTimeoutMs, ...(maxAgeMs === undefined ? {} : { maxAgeMs }) })) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new SseError('ERR_SSE_INVALID_OPTION', `${name} must be a positive integer, not ${String(value)}.`);
    }
  }
  if (typeof userOnError !== 'function') throw new SseError('ERR_SSE_INVALID_OPTION', 'onError must be a function.');
  // Everything onError hears reaches the ssekit:backplane:error diagnostic too.
  const onError = (error: unknown) => {
    reportBackplaneEvent('error', 'postgres', error);
    userOnError(error);
  };
  const statements = statementsFor(schema);
  let closed = false;
  // Whether an outage was reported and has not ended: the reconnect diagnostic pairs with it,
  // once, however often the client re-listens meanwhile (postgres.js may on a server going down).
  let lost = false;
  // The driver hands notifications to the reader, which is made with the driver: the events
  // reach it through `reader`, defined below, once they start coming.
  const driver = driverFor(options?.pool, {
    notifyChannel: schema.notifyChannel,
    listenStatement: statements.listen,
    timeoutMs: commandTimeoutMs,
    events: {
      notification: (payload) => reader.notification(payload),
      relistened: () => {
        if (lost) reportBackplaneEvent('reconnect', 'postgres');
        lost = false;
        reader.relistened();
      },
      lost: (error) => {
        lost = true;
        onError(error);
      },
    },
  });

  // The tables are created on first use, once; again if someone dropped them meanwhile.
  let created: Promise<void> | undefined;
  const tables = () =>
    (created ??= driver.transaction(schema.create, `Creating the table ${table}`).catch((error: unknown) => {
      created = undefined;
      throw error;
    }));
  const run = async (
    text: string,
    values: readonly unknown[],
    what: string,
    runOptions?: { failFast?: boolean },
  ): Promise<readonly Row[]> => {
    // Known to be out of reach: a publish must not wait for a connection from the pool.
    if (runOptions?.failFast && driver.down) {
      throw new PostgresBackplaneError(`${what} failed: PostgreSQL is out of reach (the backplane lost it, and keeps retrying).`, {
        sent: false,
      });
    }
    await tables();
    try {
      return await driver.query(text, values, what);
    } catch (error) {
      if (sqlStateOf((error as PostgresBackplaneError).cause) === '42P01') created = undefined; // undefined_table
      throw error;
    }
  };
  const reader = new Reader({ driver, statements, run, onError });

  let sweeping = false;
  const sweep = async () => {
    if (sweeping || closed || driver.down) return;
    sweeping = true;
    try {
      for (let i = 0; i < MAX_SWEEP_STATEMENTS; i++) {
        const [row] = await run(
          `WITH swept AS (${statements.sweep} RETURNING 1) SELECT count(*) AS deleted FROM swept`,
          [maxAgeMs, SWEEP_BATCH],
          `Sweeping ${table}`,
        );
        if (idOf(row?.deleted) < SWEEP_BATCH) break;
      }
    } catch (error) {
      if (!closed) onError(error);
    } finally {
      sweeping = false;
    }
  };
  const sweeper =
    maxAgeMs === undefined ? undefined : setInterval(() => void sweep(), Math.min(60_000, Math.max(100, Math.floor(maxAgeMs / 2))));
  sweeper?.unref();

  return {
    originId: ORIGIN_ID,

    publish(channel, entry) {
      if (closed) return Promise.reject(closedError());
      if (entry.id !== undefined) {
        return Promise.reject(
          new SseError(
            'ERR_SSE_INVALID_FIELD',
            `The PostgreSQL backplane assigns every id itself (1, 2, 3... per channel); publish without an id, not with ${JSON.stringify(entry.id)}.`,
          ),
        );
      }
      const invalid = invalidChannel(channel) ?? invalidText(entry);
      if (invalid) return Promise.reject(invalid);
      const { event, data, raw } = entry;
      const values = [channel, event ?? null, data ?? null, raw, maxLen, schema.notifyChannel, payloadSuffix(channel, entry)];
      return run(statements.publish, values, `Publishing to ${channel}`, { failFast: true }).then(([row]) => String(idOf(row!.id)));
    },

    subscribe(channel, listener) {
      if (closed) throw closedError();
      const invalid = invalidChannel(channel);
      if (invalid) throw invalid;
      return reader.subscribe(channel, listener);
    },

    replay(channel, afterId, limit) {
      if (closed) return Promise.reject(closedError());
      const invalid = invalidChannel(channel);
      if (invalid) return Promise.reject(invalid);
      return replayAfter((text, values, what) => run(text, values, what, { failFast: true }), statements, channel, afterId, limit);
    },

    async close() {
      if (closed) return;
      closed = true;
      if (sweeper) clearInterval(sweeper);
      reader.close();
      await driver.close();
    },
  };
}

/** PostgreSQL's text cannot hold U+0000. */
const NUL = '\0';

function invalidChannel(channel: string): SseError | undefined {
  if (typeof channel !== 'string' || channel.includes(NUL) || Buffer.byteLength(channel) > MAX_CHANNEL_BYTES) {
    return new SseError(
      'ERR_SSE_INVALID_OPTION',
      `A channel name on the PostgreSQL backplane is a string of at most ${MAX_CHANNEL_BYTES} bytes without NUL, not ${JSON.stringify(channel)}.`,
    );
  }
  return undefined;
}

function invalidText({ event, data }: BackplanePublish): SseError | undefined {
  if (event?.includes(NUL))
    return new SseError('ERR_SSE_INVALID_FIELD', 'PostgreSQL text cannot hold NUL (U+0000): the event name has one.');
  if (data?.includes(NUL)) {
    return new SseError(
      'ERR_SSE_INVALID_DATA',
      'PostgreSQL text cannot hold NUL (U+0000), and this data has one: escape it before publishing (JSON data never has one).',
    );
  }
  return undefined;
}
