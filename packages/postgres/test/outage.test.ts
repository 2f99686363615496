/**
 * PostgreSQL going away and coming back, on a server of this file's own: a publish rejects at
 * once even when the application holds every connection of its pool, a subscription made while
 * the server is down starts once it is back, replay rejects at once meanwhile, `onError` hears
 * of each outage once, and a crash (immediate shutdown) loses nothing that was acknowledged.
 */
import { SseError, type Backplane, type BackplaneEntry, type BackplaneListener } from '@ssekit/core';
import { eventually, recordBackplaneDiagnostics, type BackplaneDiagnostics } from '@ssekit/test-kit';
import pg from 'pg';
import { createPostgresBackplane, PostgresBackplaneError } from '../src/index.js';
import { connect, FLAVOURS, startPrivatePostgres, uniqueTable, type PrivatePostgres, type TestPool } from './postgres.js';

jest.setTimeout(60_000);

class Recorder implements BackplaneListener {
  readonly entries: BackplaneEntry[] = [];
  gaps = 0;
  entry(entry: BackplaneEntry): void {
    this.entries.push(entry);
  }
  gap(): void {
    this.gaps++;
  }
}

const message = (n: number) => ({ id: undefined, event: 'n', data: String(n), raw: false, value: n });

/** Tries `attempt` until it resolves, for at most `timeoutMs`. */
async function retry<T>(attempt: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

let server: PrivatePostgres;
beforeAll(async () => {
  server = await startPrivatePostgres();
}, 60_000);
afterAll(() => server?.close(), 60_000);

describe.each(FLAVOURS)('PostgreSQL going away, on %s', (flavour) => {
  const pools: TestPool[] = [];
  const backplanes: Backplane[] = [];
  const table = uniqueTable(`outage-${flavour}`);

  const backplane = async (onError: (error: unknown) => void = () => {}) => {
    const pool = await connect(flavour, server.url);
    pools.push(pool);
    const made = createPostgresBackplane({ pool: pool.pool, table, onError });
    backplanes.push(made);
    return made;
  };

  /** Stopped after each test, failed or not: a listener left behind would be heard by later suites. */
  let diagnostics: BackplaneDiagnostics | undefined;
  afterEach(async () => {
    diagnostics?.stop();
    diagnostics = undefined;
    await server.start().catch(() => {}); // a failed test may leave it stopped
    for (const made of backplanes.splice(0)) await made.close();
    for (const pool of pools.splice(0)) await pool.close();
  });

  test('while it is down, publish and replay reject at once, onError hears of it once, and a crash loses nothing acknowledged', async () => {
    const reported: unknown[] = [];
    const bus = await backplane((error) => reported.push(error));
    const seen = new Recorder();
    await bus.subscribe('events', seen);
    const ids = [await bus.publish('events', message(1)), await bus.publish('events', message(2))];
    await eventually(() => seen.entries.length === 2);
    diagnostics = recordBackplaneDiagnostics('postgres');

    await server.stop('immediate'); // a crash: PostgreSQL recovers from its WAL on start
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const attempt of [
      (): Promise<unknown> => bus.publish('events', message(-1)),
      () => bus.publish('events', message(-2)),
      async () => bus.replay('events', '1', 10),
    ]) {
      const started = Date.now();
      const error = await Promise.resolve()
        .then(attempt)
        .then(
          () => new Error('it resolved while PostgreSQL was down'),
          (reason: unknown) => reason,
        );
      expect(Date.now() - started).toBeLessThan(1000);
      expect(error).toBeInstanceOf(PostgresBackplaneError);
      expect(error).toBeInstanceOf(SseError);
      expect(error).toMatchObject({ code: 'ERR_SSE_BACKPLANE_UNAVAILABLE' });
    }
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the backplane keeps trying meanwhile
    await server.start();
    ids.push(await retry(() => bus.publish('events', message(3))));
    await eventually(() => seen.entries.length === 3, 5000, 'delivery to resume');
    expect(seen.entries.map((entry) => entry.id)).toEqual(ids);
    expect(ids).toEqual(['1', '2', '3']);
    expect(seen.gaps).toBe(0);
    expect(reported).toEqual([
      expect.objectContaining({ name: 'PostgresBackplaneError', message: expect.stringContaining('keeps retrying') }),
    ]);
    // Diagnostics heard the outage as onError did, and its end once LISTEN was back.
    await eventually(() => diagnostics!.reconnects() === 1, 5000, 'the reconnect');
    expect(diagnostics.errors).toEqual(reported);
  });

  test('a subscription made while it is down starts once it is back, and misses nothing after its start', async () => {
    const writer = await backplane();
    await writer.publish('events', message(0));
    await server.stop();
    const reader = await backplane();
    const seen = new Recorder();
    const subscribing = Promise.resolve(reader.subscribe('events', seen));
    await new Promise((resolve) => setTimeout(resolve, 500));
    await server.start();
    const { start } = await subscribing;
    const ids = [await retry(() => writer.publish('events', message(1)))];
    for (let n = 2; n <= 5; n++) ids.push(await writer.publish('events', message(n)));
    await eventually(() => seen.entries.length === ids.length, 5000, 'every entry after the start');
    expect(start?.id).toBe(String(Number(ids[0]) - 1));
    expect(seen.entries.map((entry) => entry.id)).toEqual(ids);
  });

  if (flavour === 'pg') {
    test('a publish rejects at once even when the application holds every client of the pool: the backplane knows, it never waits', async () => {
      const pool = new pg.Pool({ connectionString: server.url, max: 1 });
      pool.on('error', () => {});
      const bus = createPostgresBackplane({ pool, table, onError: () => {} });
      backplanes.push(bus);
      expect(await bus.publish('events', message(1))).toMatch(/^\d+$/);
      const held = await pool.connect();
      held.on('error', () => {});
      try {
        await server.stop();
        await new Promise((resolve) => setTimeout(resolve, 200));
        const started = Date.now();
        await expect(bus.publish('events', message(2))).rejects.toMatchObject({ name: 'PostgresBackplaneError', sent: false });
        expect(Date.now() - started).toBeLessThan(1000);
      } finally {
        held.release(true);
        await server.start();
        await pool.end();
      }
    });
  }
});
