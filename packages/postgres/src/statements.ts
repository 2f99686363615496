import type { BackplaneEntry } from '@ssekit/core';
import type { Schema } from './schema.js';

/** A row of the log as the read statements return it. */
export interface Row {
  readonly [column: string]: unknown;
}

/** The statements of one backplane, written once for its table. */
export interface Statements {
  /**
   * Appends one entry: `$1` channel, `$2` event, `$3` data, `$4` raw, `$5` maxLen, `$6` the
   * NOTIFY channel, `$7` the payload after the id. Returns the row `{ id }`.
   */
  readonly publish: string;
  /** The last id of channel `$1` (no row when it never had an entry). */
  readonly lastId: string;
  /** At most `$3` entries of channel `$1` after id `$2`, oldest first. */
  readonly after: string;
  /**
   * For replay, in one snapshot: `last_id`, `oldest` and `newest` of channel `$1`, and at most
   * `$3` entries after id `$2` (one row of nulls when there are none).
   */
  readonly replay: string;
  /** Deletes entries older than `$1` ms, as a prefix of each channel's log, at most `$2` rows. */
  readonly sweep: string;
  /** `LISTEN` on the notify channel. */
  readonly listen: string;
}

export function statementsFor({ events, counters, notifyChannel }: Schema): Statements {
  return {
    // One statement, so one transaction in autocommit. The upsert takes the counter row's lock
    // and holds it until commit: a second publisher of the channel waits there, and gets the
    // next id only once the first has committed. Ids therefore commit in order, and so do the
    // NOTIFYs, which PostgreSQL delivers in commit order: a reader that sees id n knows that
    // every id below n is committed and visible. `created_at` is read after the lock, so that
    // it increases with the id. The count trim keeps `maxLen` entries, deleting by id, never
    // leaving a hole.
    publish:
      `WITH counter AS (` +
      `INSERT INTO ${counters} AS c (channel, last_id) VALUES ($1::text, 1) ` +
      `ON CONFLICT (channel) DO UPDATE SET last_id = c.last_id + 1 RETURNING last_id), ` +
      `entry AS (INSERT INTO ${events} (channel, id, event, data, raw, created_at) ` +
      `SELECT $1::text, last_id, $2::text, $3::text, $4::boolean, clock_timestamp() FROM counter RETURNING id), ` +
      `trimmed AS (DELETE FROM ${events} WHERE channel = $1::text AND id <= (SELECT last_id FROM counter) - $5::bigint) ` +
      `SELECT id, pg_notify($6::text, id::text || $7::text) FROM entry`,
    lastId: `SELECT last_id FROM ${counters} WHERE channel = $1::text`,
    after: `SELECT id, event, data, raw FROM ${events} WHERE channel = $1::text AND id > $2::bigint ORDER BY id LIMIT $3::int8`,
    replay:
      `SELECT head.last_id, head.oldest, head.newest, e.id, e.event, e.data, e.raw FROM (SELECT ` +
      `(SELECT last_id FROM ${counters} WHERE channel = $1::text) AS last_id, ` +
      `(SELECT min(id) FROM ${events} WHERE channel = $1::text) AS oldest, ` +
      `(SELECT max(id) FROM ${events} WHERE channel = $1::text) AS newest) head ` +
      `LEFT JOIN LATERAL (SELECT id, event, data, raw FROM ${events} ` +
      `WHERE channel = $1::text AND id > $2::bigint ORDER BY id LIMIT $3::int8) e ON true ORDER BY e.id`,
    // Deletes a prefix of each channel's log: every entry up to the newest one that is too
    // old, so that no hole opens even where the clock stepped back, but never the channel's
    // last entry, which stays as the place a client that has seen everything resumes from.
    // Rows are locked in (channel, id) order, the order in which publishers' count trims lock
    // them too, so that sweeps on several instances and publishers never deadlock.
    sweep:
      `DELETE FROM ${events} WHERE (channel, id) IN (SELECT e.channel, e.id FROM ${events} e JOIN (` +
      `SELECT channel, max(id) AS upto FROM ${events} WHERE created_at < clock_timestamp() - $1::int8 * interval '1 millisecond' ` +
      `GROUP BY channel) old ON e.channel = old.channel AND e.id <= old.upto JOIN ${counters} c ON c.channel = e.channel ` +
      `WHERE e.id < c.last_id ORDER BY e.channel, e.id LIMIT $2::int8 FOR UPDATE OF e)`,
    listen: `LISTEN "${notifyChannel}"`,
  };
}

/**
 * An id column as a number. Drivers return bigint columns as strings (pg, postgres.js), or as
 * numbers or bigints when the application asked for that; ids stay far below 2^53.
 */
export function idOf(value: unknown): number {
  return Number(value);
}

/** A row of `after` or `replay` as the channel takes it. */
export function entryOf(row: Row): BackplaneEntry {
  const id = idOf(row.id);
  return {
    id: String(id),
    position: id,
    event: (row.event as string | null) ?? undefined,
    data: (row.data as string | null) ?? undefined,
    raw: row.raw === true,
  };
}
