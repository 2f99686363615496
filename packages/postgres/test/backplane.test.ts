/**
 * The PostgreSQL backplane against a real PostgreSQL, once per client library: the table layout
 * and its creation by racing instances, contiguous ids, exact count trimming and the age sweep,
 * entries too large for a notification, what close() releases, misuse, and the listening
 * connection lost and restored. Outages of the engine itself are in contract.test.ts and
 * outage.test.ts; readers that fall behind the trim are in gap.test.ts.
 */
import { SseError, type Backplane, type BackplaneEntry, type BackplaneListener } from '@ssekit/core';
import { eventually } from '@ssekit/test-kit';
import pg from 'pg';
import { createPostgresBackplane, type PostgresBackplaneOptions } from '../src/index.js';
import { connect, connectionsOf, dropTables, FLAVOURS, PG_URL, requirePostgres, uniqueTable, type TestPool } from './postgres.js';

beforeAll(() => requirePostgres());

/** A listener that records entries and gaps, in the order they came. */
class Recorder implements BackplaneListener {
  readonly entries: BackplaneEntry[] = [];
  readonly log: string[] = [];
  entry(entry: BackplaneEntry): void {
    this.entries.push(entry);
    this.log.push(entry.id);
  }
  gap(): void {
    this.log.push('gap');
  }
  ids(): string[] {
    return this.entries.map((entry) => entry.id);
  }
}

/** A raw entry; `event: null` for the default `message`. */
const message = (data: string, event: string | null = 'n') => ({ id: undefined, event: event ?? undefined, data, raw: true, value: data });

describe.each(FLAVOURS)('the PostgreSQL backplane on %s', (flavour) => {
  const tables = new Set<string>();
  const pools: TestPool[] = [];
  const backplanes: Backplane[] = [];
  let table: string;
  let applicationName: string;

  const pool = async (name = applicationName) => {
    const made = await connect(flavour, PG_URL, name);
    pools.push(made);
    return made;
  };
  const backplane = async (options: Partial<PostgresBackplaneOptions> = {}, on?: TestPool) => {
    const made = createPostgresBackplane({ pool: (on ?? (await pool())).pool, table, onError: () => {}, ...options });
    if (options.table) tables.add(options.table);
    backplanes.push(made);
    return made;
  };
  const listen = async (on: Backplane, channel = 'events') => {
    const recorder = new Recorder();
    const subscription = await on.subscribe(channel, recorder);
    return Object.assign(recorder, { subscription });
  };

  beforeEach(() => {
    table = uniqueTable(flavour);
    tables.add(table);
    applicationName = `ssekit-${table}`;
  });
  afterEach(async () => {
    for (const made of backplanes.splice(0)) await made.close();
    for (const made of pools.splice(0)) await made.close();
  });
  afterAll(async () => {
    for (const name of tables) await dropTables(name);
  });

  test('the first publish creates the table and its counters; ids are 1, 2, 3... per channel', async () => {
    const db = await pool();
    const bus = await backplane({}, db);
    expect(await bus.publish('events', { id: undefined, event: 'tick', data: '{"n":1}', raw: false, value: { n: 1 } })).toBe('1');
    expect(await bus.publish('events', message('plain\ntext', null))).toBe('2');
    expect(await bus.publish('other', { id: undefined, event: undefined, data: undefined, raw: false, value: undefined })).toBe('1');
    expect(await bus.publish('events', message(''))).toBe('3');
    const rows = await db.query(`SELECT channel, id::text, event, data, raw FROM "${table}" e ORDER BY channel, e.id`);
    expect(rows).toEqual([
      { channel: 'events', id: '1', event: 'tick', data: '{"n":1}', raw: false },
      { channel: 'events', id: '2', event: null, data: 'plain\ntext', raw: true },
      { channel: 'events', id: '3', event: 'n', data: '', raw: true },
      { channel: 'other', id: '1', event: null, data: null, raw: false },
    ]);
    // created_at is taken after the counter's lock: it increases with the id.
    const [order] = await db.query<{ ordered: boolean }>(
      `SELECT bool_and(created_at >= previous AND created_at <= clock_timestamp()) AS ordered FROM ` +
        `(SELECT created_at, lag(created_at) OVER (PARTITION BY channel ORDER BY id) AS previous FROM "${table}") e WHERE previous IS NOT NULL`,
    );
    expect(order).toEqual({ ordered: true });
    expect(await db.query(`SELECT channel, last_id::text FROM "${table}_channels" ORDER BY channel`)).toEqual([
      { channel: 'events', last_id: '3' },
      { channel: 'other', last_id: '1' },
    ]);
    const columns = await db.query(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`,
      [table],
    );
    expect(columns).toEqual([
      { column_name: 'channel', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'id', data_type: 'bigint', is_nullable: 'NO' },
      { column_name: 'event', data_type: 'text', is_nullable: 'YES' },
      { column_name: 'data', data_type: 'text', is_nullable: 'YES' },
      { column_name: 'raw', data_type: 'boolean', is_nullable: 'NO' },
      { column_name: 'created_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
    ]);
  });

  test('instances that start at once on a new table all create it safely, and their racing publishes get ids 1..n', async () => {
    const buses = await Promise.all(Array.from({ length: 8 }, () => backplane()));
    const ids = await Promise.all(buses.map((bus, n) => bus.publish('events', message(String(n)))));
    expect(ids.map(Number).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('the table may live in a schema of its own', async () => {
    const db = await pool();
    const schema = `s_${table}`.slice(0, 40);
    await db.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    try {
      const bus = await backplane({ table: `${schema}.events` }, db);
      const seen = await listen(bus);
      expect(await bus.publish('events', message('a'))).toBe('1');
      await eventually(() => seen.entries.length === 1);
      expect(await db.query(`SELECT id::text FROM "${schema}"."events"`)).toEqual([{ id: '1' }]);
      await bus.close();
    } finally {
      await db.query(`DROP SCHEMA "${schema}" CASCADE`);
    }
  });

  test('tables dropped while the backplane runs are created again on the next use', async () => {
    const db = await pool();
    const bus = await backplane({}, db);
    expect(await bus.publish('events', message('1'))).toBe('1');
    await dropTables(table);
    await expect(bus.publish('events', message('lost'))).rejects.toMatchObject({ name: 'PostgresBackplaneError', sent: false });
    expect(await bus.publish('events', message('1 again'))).toBe('1');
  });

  test('notifications on its channel that no backplane wrote are ignored', async () => {
    const db = await pool();
    const bus = await backplane({}, db);
    const seen = await listen(bus);
    for (const payload of ['garbage', '1 not json', '1 {}', '0 ["events"]', '1 ["events", 5, null, 1]', 'x ["events"]']) {
      await db.query('SELECT pg_notify($1, $2)', [table, payload]);
    }
    expect(await bus.publish('events', message('real'))).toBe('1');
    await eventually(() => seen.entries.length === 1, 5000, 'the real entry');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen.log).toEqual(['1']);
  });

  test('each channel keeps exactly maxLen entries', async () => {
    const db = await pool();
    const bus = await backplane({ maxLen: 3 }, db);
    for (let n = 1; n <= 10; n++) await bus.publish('events', message(String(n)));
    await bus.publish('other', message('x'));
    const rows = await db.query<{ channel: string; id: string }>(`SELECT channel, id::text FROM "${table}" e ORDER BY channel, e.id`);
    expect(rows).toEqual([
      { channel: 'events', id: '8' },
      { channel: 'events', id: '9' },
      { channel: 'events', id: '10' },
      { channel: 'other', id: '1' },
    ]);
    expect(await bus.replay('events', '7', 100)).toEqual({ found: false, latest: { id: '10', position: 10 } });
    expect(await bus.replay('events', '8', 100)).toMatchObject({ found: true, position: 8, entries: [{ id: '9' }, { id: '10' }] });
  });

  test('maxAgeMs: a sweep deletes entries older than that, oldest first, and keeps each channel’s newest', async () => {
    const db = await pool();
    const bus = await backplane({ maxAgeMs: 300 }, db);
    for (let n = 1; n <= 4; n++) await bus.publish('events', message(String(n)));
    await bus.publish('other', message('x'));
    const remaining = async () =>
      (await db.query<{ channel: string; id: string }>(`SELECT channel, id::text FROM "${table}" e ORDER BY channel, e.id`)).map(
        ({ channel, id }) => `${channel}:${id}`,
      );
    // Sweeps run every 150 ms; entries are 300 ms old after at least 300 ms.
    let rows = await remaining();
    for (let i = 0; i < 100 && rows.length > 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      rows = await remaining();
    }
    expect(rows).toEqual(['events:4', 'other:1']);
    // The newest stays a resume point; the swept ones are gone.
    expect(await bus.replay('events', '4', 100)).toEqual({ found: true, position: 4, entries: [] });
    expect(await bus.replay('events', '2', 100)).toEqual({ found: false, latest: { id: '4', position: 4 } });
    // A young entry is not swept.
    await bus.publish('events', message('5'));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await remaining()).toEqual(['events:5', 'other:1']);
  });

  test('entries too large for a notification go by reference, and arrive in order among small ones', async () => {
    const [a, b] = [await backplane(), await backplane()];
    const seen = await listen(b);
    const large = 'x'.repeat(100_000);
    const multibyte = '\u00e9'.repeat(3600); // 7200 bytes: over the inline limit, under it in characters
    const sent = ['small', large, 'small again', multibyte, large + 'y', 'last'];
    const ids = [];
    for (const data of sent) ids.push(await a.publish('events', message(data)));
    await eventually(() => seen.entries.length === sent.length, 5000, 'every entry');
    expect(seen.entries.map((entry) => entry.data)).toEqual(sent);
    expect(seen.ids()).toEqual(ids);
    expect(seen.log).not.toContain('gap');
  });

  test('a publish carrying an id, a NUL in the data or a bad channel name rejects; after close() everything does', async () => {
    const bus = await backplane();
    await expect(bus.publish('events', { ...message('x'), id: '7' })).rejects.toMatchObject({
      name: 'SseError',
      code: 'ERR_SSE_INVALID_FIELD',
      message: expect.stringContaining('assigns every id itself'),
    });
    await expect(bus.publish('events', message('a\0b'))).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_DATA' });
    await expect(bus.publish('events', message('a', 'e\0'))).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_FIELD' });
    await expect(bus.publish('a\0b', message('x'))).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_OPTION' });
    expect(() => bus.subscribe('x'.repeat(2000), new Recorder())).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }));
    await bus.close();
    await expect(bus.publish('events', message('x'))).rejects.toMatchObject({ code: 'ERR_SSE_CLOSED' });
    await expect(bus.replay('events', '1', 10)).rejects.toMatchObject({ code: 'ERR_SSE_CLOSED' });
    expect(() => bus.subscribe('events', new Recorder())).toThrow(SseError);
  });

  test('options are checked at creation', async () => {
    const db = await pool();
    for (const bad of [
      { maxLen: 0 },
      { maxAgeMs: -1 },
      { commandTimeoutMs: 1.5 },
      { table: 'events; DROP TABLE x' },
      { table: 'Robert"s' },
      { table: 'a.b.c' },
      { table: 'x'.repeat(60) },
      { table: 5 as unknown as string },
    ]) {
      expect(() => createPostgresBackplane({ pool: db.pool, ...bad })).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }));
    }
    expect(() => createPostgresBackplane({ pool: {} as never })).toThrow(/node-postgres .* or a postgres\.js/);
    expect(() => createPostgresBackplane({ pool: 'postgres://localhost' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }),
    );
  });

  test('close() ends the one listening connection it opened, and leaves the pool open and as it was', async () => {
    const db = await pool();
    const before = await connectionsOf(applicationName);
    const errorListeners = flavour === 'pg' ? (db.pool as pg.Pool).listenerCount('error') : 0;
    const bus = await backplane({}, db);
    const seen = await listen(bus);
    await listen(bus, 'other');
    await bus.publish('events', message('x'));
    await eventually(() => seen.entries.length === 1);
    // One listening connection for both channels, beside the pool's own.
    const listening = async () =>
      Number(
        (
          await db.query<{ count: string }>(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%'`, [
            applicationName,
          ])
        )[0]!.count,
      );
    expect(await listening()).toBe(1);
    await bus.close();
    let left = await listening();
    for (let i = 0; i < 50 && left !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      left = await listening();
    }
    expect(left).toBe(0);
    expect(await connectionsOf(applicationName)).toBeGreaterThanOrEqual(before);
    expect(await db.query('SELECT 1 AS one')).toEqual([{ one: 1 }]); // still the application's, still open
    if (flavour === 'pg') expect((db.pool as pg.Pool).listenerCount('error')).toBe(errorListeners);
  });

  test('the listening connection, killed by the server, comes back: entries published meanwhile arrive, in order, without a gap', async () => {
    const db = await pool();
    const [reader, writer] = [await backplane({}, db), await backplane({}, await pool(`${applicationName}-w`))];
    const seen = await listen(reader);
    const ids = [await writer.publish('events', message('0'))];
    await eventually(() => seen.entries.length === 1);
    for (let round = 1; round <= 3; round++) {
      const killed = await db.query<{ pid: number }>(
        `SELECT pg_terminate_backend(pid), pid FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%'`,
        [applicationName],
      );
      expect(killed).toHaveLength(1);
      for (let n = 0; n < 5; n++) ids.push(await writer.publish('events', message(`${round}.${n}`)));
      await eventually(() => seen.entries.length === ids.length, 10_000, `round ${round}: ${ids.length} entries`);
    }
    expect(seen.ids()).toEqual(ids);
    expect(seen.log).not.toContain('gap');
  });
});
