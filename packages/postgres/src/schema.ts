import { SseError } from '@ssekit/core';

/** A plain SQL identifier: what PostgreSQL keeps as written once it is quoted. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** PostgreSQL cuts identifiers (and LISTEN channel names) at 63 bytes. */
const MAX_IDENTIFIER_BYTES = 63;
const COUNTERS_SUFFIX = '_channels';
const INDEX_SUFFIX = '_created_at';
/**
 * The first key of the advisory lock that creates the tables, so that it cannot meet a lock of
 * the application's own that happens to use the table name's hash alone.
 */
const LOCK_NAMESPACE = 0x55e_c17;

/** Where a backplane keeps its log, as quoted SQL names. */
export interface Schema {
  /** The entries: one row per entry of every channel. */
  readonly events: string;
  /** The counters: one row per channel, with the last id it assigned. */
  readonly counters: string;
  /** The index that the age sweep reads. */
  readonly createdAtIndex: string;
  /** The NOTIFY channel: the table name as given, one per table. */
  readonly notifyChannel: string;
  /** The statements that create the tables, run in one transaction on first use. */
  readonly create: ReadonlyArray<readonly [string, readonly unknown[]]>;
}

const quote = (name: string) => `"${name}"`;

/**
 * Checks `table` (`name` or `schema.name`, each a plain identifier) and names everything the
 * backplane keeps after it. The schema must exist; the tables are created on first use.
 */
export function schemaFor(table: unknown): Schema {
  if (typeof table !== 'string') throw new SseError('ERR_SSE_INVALID_OPTION', `table must be a string, not ${typeof table}.`);
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `table must be a plain identifier such as "ssekit_events", optionally with a schema ("app.ssekit_events"), not ${JSON.stringify(table)}.`,
    );
  }
  const name = parts.at(-1)!;
  if (name.length + COUNTERS_SUFFIX.length > MAX_IDENTIFIER_BYTES || table.length > MAX_IDENTIFIER_BYTES) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `table ${JSON.stringify(table)} is too long: PostgreSQL cuts names at ${MAX_IDENTIFIER_BYTES} bytes, and the backplane adds "${COUNTERS_SUFFIX}" to it.`,
    );
  }
  const prefix = parts.length === 2 ? `${quote(parts[0]!)}.` : '';
  const events = `${prefix}${quote(name)}`;
  const counters = `${prefix}${quote(name + COUNTERS_SUFFIX)}`;
  const createdAtIndex = quote(name + INDEX_SUFFIX);
  return {
    events,
    counters,
    createdAtIndex,
    notifyChannel: table,
    create: [
      // CREATE TABLE IF NOT EXISTS alone races: two sessions that both find no table both
      // insert it into the catalog, and one fails on a unique violation. The lock serializes
      // them until commit, and the second then finds the tables there.
      ['SELECT pg_advisory_xact_lock($1::int4, hashtext($2::text))', [LOCK_NAMESPACE, table]],
      [
        `CREATE TABLE IF NOT EXISTS ${events} (` +
          'channel text NOT NULL, id bigint NOT NULL, event text, data text, raw boolean NOT NULL, ' +
          'created_at timestamptz NOT NULL, PRIMARY KEY (channel, id))',
        [],
      ],
      [`CREATE TABLE IF NOT EXISTS ${counters} (channel text PRIMARY KEY, last_id bigint NOT NULL)`, []],
      [`CREATE INDEX IF NOT EXISTS ${createdAtIndex} ON ${events} (created_at)`, []],
    ],
  };
}
