/**
 * Ids commit in the order they are assigned, so a reader never skips one: publishers in
 * several processes race on one channel, and readers on every client library must get ids
 * 1..n, each once, in order, without a gap. Then a publisher whose transaction commits late
 * (the backplane's own publish statement, held open) must hold the others back instead of
 * letting them commit past it, which is what would make a reader skip its id.
 */
import type { Backplane, BackplaneEntry, BackplaneListener } from '@ssekit/core';
import { eventually } from '@ssekit/test-kit';
import pg from 'pg';
import { createPostgresBackplane } from '../src/index.js';
import { payloadSuffix } from '../src/payload.js';
import { schemaFor } from '../src/schema.js';
import { statementsFor } from '../src/statements.js';
import { byId, startInstance, type Instance } from './instances.js';
import { connect, dropTables, FLAVOURS, PG_URL, requirePostgres, uniqueTable, type TestPool } from './postgres.js';

jest.setTimeout(90_000);
beforeAll(() => requirePostgres());

class Recorder implements BackplaneListener {
  readonly entries: BackplaneEntry[] = [];
  gaps = 0;
  entry(entry: BackplaneEntry): void {
    this.entries.push(entry);
  }
  gap(): void {
    this.gaps++;
  }
  ids(): string[] {
    return this.entries.map((entry) => entry.id);
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, n) => String(from + n));

describe('racing publishers in several processes', () => {
  const table = uniqueTable('order');
  const instances: Instance[] = [];
  const pools: TestPool[] = [];
  const backplanes: Backplane[] = [];
  const readers: Array<{ flavour: string; recorder: Recorder }> = [];

  beforeAll(async () => {
    await requirePostgres();
    // Four processes, on every library, each publishing from several concurrent loops.
    const flavours = [...FLAVOURS, 'pg'] as const;
    instances.push(...(await Promise.all(flavours.map((flavour, n) => startInstance(`publisher-${n}`, 'node', flavour, PG_URL, table)))));
    // A reader on every library, in this process.
    for (const flavour of FLAVOURS) {
      const pool = await connect(flavour);
      pools.push(pool);
      const backplane = createPostgresBackplane({ pool: pool.pool, table, onError: () => {} });
      backplanes.push(backplane);
      const recorder = new Recorder();
      await backplane.subscribe('events', recorder);
      readers.push({ flavour, recorder });
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.close()));
    for (const backplane of backplanes) await backplane.close();
    for (const pool of pools) await pool.close();
    await dropTables(table);
  }, 60_000);

  const expectEveryReader = async (ids: string[]) => {
    await eventually(
      () => readers.every(({ recorder }) => recorder.entries.length >= ids.length),
      20_000,
      `every reader to get ${ids.length} entries`,
    ).catch((error) => {
      throw new Error(
        `${(error as Error).message}: ${readers.map(({ flavour, recorder }) => `${flavour} has ${recorder.entries.length}`).join(', ')}`,
      );
    });
    for (const { recorder } of readers) {
      expect(recorder.ids()).toEqual(ids);
      expect(recorder.gaps).toBe(0);
    }
  };

  test('400 racing publishes from 4 processes: ids 1..400, and every reader gets each once, in order, without a gap', async () => {
    const results = await Promise.all(instances.map((instance) => instance.publish(100, 0, 4)));
    expect(results.flatMap((result) => result.failures)).toEqual([]);
    const ids = results.flatMap((result) => result.ids).sort(byId);
    expect(ids).toEqual(range(1, 400));
    await expectEveryReader(ids);
  });

  test('a publish whose transaction commits late holds back the racing ones: no reader skips its id', async () => {
    const before = readers[0]!.recorder.entries.length;
    const { publish } = statementsFor(schemaFor(table));
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      await client.query('BEGIN');
      const entry = { event: 'n', data: 'late', raw: true };
      const { rows } = await client.query<{ id: string }>(publish, [
        'events',
        entry.event,
        entry.data,
        entry.raw,
        10_000,
        table,
        payloadSuffix('events', entry),
      ]);
      const late = rows[0]!.id;
      expect(late).toBe(String(before + 1));
      // The others race now, and wait for the counter row that the open transaction holds.
      const racing = Promise.all(instances.map((instance) => instance.publish(25, 0, 2)));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const { recorder } of readers) expect(recorder.entries.length).toBe(before);
      await client.query('COMMIT');
      const results = await racing;
      expect(results.flatMap((result) => result.failures)).toEqual([]);
      const ids = [late, ...results.flatMap((result) => result.ids)].sort(byId);
      expect(ids).toEqual(range(before + 1, before + 101));
      await expectEveryReader(range(1, before + 101));
      for (const { recorder } of readers) expect(recorder.entries[before]).toMatchObject({ id: late, data: 'late' });
    } finally {
      await client.end();
    }
  });
});
