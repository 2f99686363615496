/**
 * A reader that misses entries because they were trimmed before it could read them calls
 * `gap()` before the first entry after them, and a channel on it then sends its reset event to
 * its clients. Two ways to get there, each through a TCP proxy in front of the reader only:
 * - it falls behind the trim: what PostgreSQL sends it is held back while another instance
 *   publishes entries too large to travel in a notification, past `maxLen`;
 * - its entries are deleted while its connections are cut: a network partition, during which
 *   another instance publishes past `maxLen`.
 */
import { createChannel, type Backplane, type BackplaneEntry, type BackplaneListener, type Channel } from '@ssekit/core';
import { eventually, readSse, startApp, startTcpProxy, type SseReader, type TcpProxy, type TestApp } from '@ssekit/test-kit';
import { createPostgresBackplane } from '../src/index.js';
import { connect, dropTables, FLAVOURS, PG_URL, requirePostgres, uniqueTable, type TestPool } from './postgres.js';

jest.setTimeout(60_000);
beforeAll(() => requirePostgres());

/** Entries and gaps, in the order they came. */
class Recorder implements BackplaneListener {
  readonly log: string[] = [];
  entry(entry: BackplaneEntry): void {
    this.log.push(entry.id);
  }
  gap(): void {
    this.log.push('gap');
  }
}

/** Too large for a notification: readers must fetch it from the table. */
const LARGE = 'x'.repeat(20_000);

const WAYS = ['falls behind the trim', 'loses its connections while entries are deleted'] as const;
type Way = (typeof WAYS)[number];

describe.each(FLAVOURS)('a reader on %s that misses trimmed entries', (flavour) => {
  const tables: string[] = [];
  const pools: TestPool[] = [];
  const backplanes: Backplane[] = [];
  const proxies: TcpProxy[] = [];
  const channels: Channel<any>[] = [];
  const apps: TestApp[] = [];
  const streams: SseReader[] = [];

  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    for (const channel of channels.splice(0)) await channel.close();
    for (const app of apps.splice(0)) await app.close();
    for (const backplane of backplanes.splice(0)) await backplane.close();
    for (const pool of pools.splice(0)) await pool.close();
    for (const proxy of proxies.splice(0)) await proxy.close();
  });
  afterAll(async () => {
    for (const table of tables) await dropTables(table);
  });

  /** A reader behind a proxy and a writer straight on PostgreSQL, both with `maxLen: 3`. */
  const setUp = async () => {
    const table = uniqueTable(`gap-${flavour}`);
    tables.push(table);
    const proxy = await startTcpProxy(PG_URL);
    proxies.push(proxy);
    const [readerPool, writerPool] = [await connect(flavour, proxy.url), await connect(flavour)];
    pools.push(readerPool, writerPool);
    const [reader, writer] = [readerPool, writerPool].map((pool) =>
      createPostgresBackplane({ pool: pool.pool, table, maxLen: 3, commandTimeoutMs: 2000, onError: () => {} }),
    ) as [Backplane, Backplane];
    backplanes.push(reader, writer);
    return { proxy, reader, writer };
  };

  /** Makes the reader miss entries 2..7 of which only 5..7 remain, by `way`. */
  const missEntries = async (way: Way, proxy: TcpProxy, writer: Backplane) => {
    if (way === 'falls behind the trim') {
      proxy.hold('from-server');
      for (let n = 2; n <= 7; n++) await writer.publish('events', { id: undefined, event: 'n', data: LARGE, raw: true, value: LARGE });
      proxy.restore();
    } else {
      proxy.cut();
      for (let n = 2; n <= 7; n++) await writer.publish('events', { id: undefined, event: 'n', data: String(n), raw: true, value: n });
      // Long enough for the reader to notice and try to come back, in vain.
      await new Promise((resolve) => setTimeout(resolve, 500));
      proxy.restore();
    }
  };

  test.each(WAYS)('when it %s, it calls gap() right before the first entry after them', async (way) => {
    const { proxy, reader, writer } = await setUp();
    const seen = new Recorder();
    await reader.subscribe('events', seen);
    expect(await writer.publish('events', { id: undefined, event: 'n', data: '1', raw: true, value: 1 })).toBe('1');
    await eventually(() => seen.log.length === 1, 5000, 'the first entry');
    await missEntries(way, proxy, writer);
    await eventually(() => seen.log.length >= 5, 15_000, `the gap and entries 5..7 (have ${seen.log.join(' ')})`);
    expect(seen.log).toEqual(['1', 'gap', '5', '6', '7']);
    // And it goes on from there.
    await writer.publish('events', { id: undefined, event: 'n', data: '8', raw: true, value: 8 });
    await eventually(() => seen.log.length === 6, 5000, 'entry 8');
    expect(seen.log.at(-1)).toBe('8');
  });

  test.each(WAYS)('when it %s, a channel on it sends reset to its client, and then goes on', async (way) => {
    const { proxy, reader, writer } = await setUp();
    const feed = createChannel<{ n: number }>({ backplane: reader });
    channels.push(feed);
    const app = await startApp('express', ({ stream }) => feed.subscribe(stream));
    apps.push(app);
    const client = await readSse(`${app.url}/events`);
    streams.push(client);
    // The id-only block with the origin id says that the channel's subscription has started.
    await client.waitFor(() => client.lastEventId() === '0', 10_000);
    await writer.publish('events', { id: undefined, event: 'n', data: '1', raw: false, value: 1 });
    await client.waitForEvents(1, 10_000);
    await missEntries(way, proxy, writer);
    // The channel replays from entry 1, which was trimmed: the client is told to refetch.
    await client.waitForEvents(2, 15_000);
    expect(client.events[1]).toMatchObject({ event: 'reset', id: '7', data: JSON.stringify({ lastEventId: '1' }) });
    await writer.publish('events', { id: undefined, event: 'n', data: '8', raw: false, value: 8 });
    await client.waitForEvents(3, 10_000);
    expect(client.events.map((event) => [event.event, event.id])).toEqual([
      ['n', '1'],
      ['reset', '7'],
      ['n', '8'],
    ]);
  });
});
