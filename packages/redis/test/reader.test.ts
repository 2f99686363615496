/**
 * The backplane's reader where it is hardest: a connection that goes silent without closing
 * (a dead peer behind a NAT, a half-open TCP connection), and a long run of large entries,
 * which must cost no memory once delivered. Once per client flavour.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { createChannel, type Backplane } from '@ssekit/core';
import { createSseStreamFromSink } from '@ssekit/core/adapter';
import { createMemorySink, eventually, recordBackplaneDiagnostics, startTcpProxy } from '@ssekit/test-kit';
import { createRedisBackplane } from '../src/index.js';
import { connect, deleteKeys, FLAVOURS, REDIS_URL, requireRedis, uniquePrefix, type TestClient } from './redis.js';

// jest gives no way to start its workers with --expose-gc; a context created after the flag is
// set gets `gc` as a global all the same.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

beforeAll(() => requireRedis());

describe.each(FLAVOURS)('the reader on %s', (flavour) => {
  let prefix: string;
  const clients: TestClient[] = [];
  const backplanes: Backplane[] = [];
  beforeEach(() => {
    prefix = uniquePrefix(`reader-${flavour}`);
  });
  afterEach(async () => {
    for (const backplane of backplanes.splice(0)) await backplane.close();
    for (const client of clients.splice(0)) await client.close();
    await deleteKeys(REDIS_URL, prefix);
  });

  test('an XREAD on a connection that went silent is given up after blockMs + commandTimeoutMs, and a new connection delivers what it missed', async () => {
    const proxy = await startTcpProxy(REDIS_URL);
    const diagnostics = recordBackplaneDiagnostics('redis');
    try {
      const viaProxy = await connect(flavour, proxy.url);
      const direct = await connect(flavour, REDIS_URL);
      clients.push(viaProxy, direct);
      const errors: string[] = [];
      const reading = createRedisBackplane({
        client: viaProxy.client,
        prefix,
        blockMs: 300,
        commandTimeoutMs: 300,
        onError: (error) => errors.push(String(error)),
      });
      const publishing = createRedisBackplane({ client: direct.client, prefix });
      backplanes.push(reading, publishing);
      const seen: string[] = [];
      await reading.subscribe('events', { entry: (entry) => seen.push(entry.data!), gap() {} });
      await publishing.publish('events', { id: undefined, event: undefined, data: 'before', raw: true, value: 'before' });
      await eventually(() => seen.length === 1, 3000, 'the first entry');

      // The reader's connection, and the client's own, stop answering; neither is closed. A new
      // connection (the reader's replacement) goes through.
      proxy.silence();
      const silencedAt = Date.now();
      await publishing.publish('events', { id: undefined, event: undefined, data: 'while silent', raw: true, value: 'while silent' });
      await eventually(() => seen.length === 2, 10_000, 'the entry published while the connection was silent');
      expect(seen).toEqual(['before', 'while silent']);
      // Not before the XREAD it abandoned could still have returned by itself.
      expect(Date.now() - silencedAt).toBeGreaterThanOrEqual(300);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/did not return/);
      // Diagnostics heard what onError heard, and the reader's return.
      expect(diagnostics.errors.map(String)).toEqual(errors);
      expect(diagnostics.reconnects()).toBe(1);
    } finally {
      diagnostics.stop();
      await proxy.close();
    }
  });

  test('entries trimmed while the reader was away are a gap: its channel replays, and sends reset for what is gone', async () => {
    const proxy = await startTcpProxy(REDIS_URL);
    try {
      const viaProxy = await connect(flavour, proxy.url);
      const direct = await connect(flavour, REDIS_URL);
      clients.push(viaProxy, direct);
      const options = { prefix, maxLen: 5, trimExactly: true, blockMs: 300, commandTimeoutMs: 300, onError() {} };
      const reading = createRedisBackplane({ ...options, client: viaProxy.client });
      const publishing = createRedisBackplane({ ...options, client: direct.client });
      backplanes.push(reading, publishing);
      const gaps: number[] = [];
      const counted: Backplane = {
        ...reading,
        subscribe: (channel, listener) =>
          reading.subscribe(channel, { entry: (entry) => listener.entry(entry), gap: () => (gaps.push(1), listener.gap()) }),
      };
      const channel = createChannel({ name: 'events', backplane: counted });
      const sink = createMemorySink();
      channel.subscribe(createSseStreamFromSink(sink, { keepAliveMs: 0 }));
      const first = await publishing.publish('events', { id: undefined, event: undefined, data: 'first', raw: true, value: 'first' });
      await eventually(() => sink.events.length === 1, 3000, 'the first entry');

      // The reader goes silent; meanwhile twelve entries pass, and the stream keeps five.
      // The connection opened last: the reader's own, which it opens after the injected client's.
      proxy.silence('newest');
      const ids: string[] = [];
      for (let n = 0; n < 12; n++)
        ids.push(await publishing.publish('events', { id: undefined, event: undefined, data: String(n), raw: true, value: String(n) }));
      await eventually(() => sink.events.length >= 2, 10_000, 'the reset after the gap');
      const last = await publishing.publish('events', { id: undefined, event: undefined, data: 'last', raw: true, value: 'last' });
      await eventually(() => sink.events.length >= 3, 5000, 'the entry after the reset');
      await channel.close();
      expect(sink.events.map(({ event, id, data }) => ({ event, id, data }))).toEqual([
        { event: undefined, id: first, data: 'first' },
        { event: 'reset', id: ids.at(-1), data: JSON.stringify({ lastEventId: first }) },
        { event: undefined, id: last, data: 'last' },
      ]);
      expect(gaps).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  test('a long run of large entries costs no memory once delivered', async () => {
    const client = await connect(flavour, REDIS_URL);
    clients.push(client);
    // The stream keeps only the newest entries, so Redis holds little of what passes through.
    const backplane = createRedisBackplane({ client: client.client, prefix, maxLen: 50, readCount: 50 });
    backplanes.push(backplane);
    let delivered = 0;
    await backplane.subscribe('events', { entry: () => void delivered++, gap() {} });
    const data = 'x'.repeat(20 * 1024);
    const publish = () => backplane.publish('events', { id: undefined, event: undefined, data, raw: true, value: undefined });
    // A first round lets the heap settle at its working size.
    for (let i = 0; i < 100; i++) await publish();
    await eventually(() => delivered === 100, 10_000, 'the warm-up entries');
    // Several collections, with turns between for what waits on one: a single gc() leaves
    // garbage of the last turns behind, megabytes of it on a loaded machine.
    const settledHeap = async () => {
      for (let i = 0; i < 4; i++) {
        gc();
        await new Promise((resolve) => setImmediate(resolve));
      }
      return process.memoryUsage().heapUsed;
    };
    const before = await settledHeap();
    const count = 1500; // 30 MB of entry data
    for (let i = 0; i < count; i++) await publish();
    await eventually(() => delivered === 100 + count, 30_000, 'every entry');
    const grown = (await settledHeap()) - before;
    // A reader that kept each XREAD's reply would hold the 30 MB.
    expect(grown).toBeLessThan(10 * 1024 * 1024);
  }, 60_000);
});
