/**
 * The Redis backplane against a real Redis, once per client flavour: the Backplane promises
 * (publish resolves the id, subscribe delivers every later entry once and in order, replay
 * after an id), trimming, the key layout, misuse, and that close() releases what it made.
 */
import { createChannel, SseError, type Backplane, type BackplaneEntry, type Channel } from '@ssekit/core';
import { eventually, readSse, startApp, type TestApp } from '@ssekit/test-kit';
import Redis from 'ioredis';
import { createClient } from 'redis';
import { createRedisBackplane, RedisBackplaneError, type RedisBackplaneOptions } from '../src/index.js';
import {
  connect,
  connectedClients,
  deleteKeys,
  REDIS_URL,
  requireRedis,
  uniquePrefix,
  type Flavour,
  type Protocol,
  type TestClient,
} from './redis.js';

beforeAll(() => requireRedis());

/** Compares stream entry ids as Redis orders them. */
const byStreamOrder = (a: string, b: string) => {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
};

/** Every client library, and each of the reply shapes it can be set up to give. */
const VARIANTS: Array<[Flavour, Protocol]> = [
  ['ioredis', 'resp3'],
  ['ioredis', 'resp2'],
  ['ioredis', 'resp3-objects'],
  ['node-redis', 'resp3'],
  ['node-redis', 'resp2'],
];

describe.each(VARIANTS)('the Redis backplane on %s (%s)', (flavour, protocol) => {
  let prefix: string;
  const clients: TestClient[] = [];
  const backplanes: Backplane[] = [];
  const channels: Channel<any>[] = [];
  const apps: TestApp[] = [];

  const client = async () => {
    const made = await connect(flavour, REDIS_URL, protocol);
    clients.push(made);
    return made;
  };
  const backplane = async (options: Partial<RedisBackplaneOptions> = {}, on?: TestClient) => {
    const made = createRedisBackplane({ client: (on ?? (await client())).client, prefix, ...options });
    backplanes.push(made);
    return made;
  };
  /** Subscribes and collects what arrives. */
  const collect = async (from: Backplane, channel = 'events') => {
    const entries: BackplaneEntry[] = [];
    const { unsubscribe: stop, start } = await from.subscribe(channel, { entry: (entry) => entries.push(entry), gap() {} });
    return { entries, stop, start };
  };

  beforeEach(() => {
    prefix = uniquePrefix(flavour);
  });
  afterEach(async () => {
    for (const channel of channels.splice(0)) await channel.close();
    for (const app of apps.splice(0)) await app.close();
    for (const made of backplanes.splice(0)) await made.close();
    for (const made of clients.splice(0)) await made.close();
    await deleteKeys(REDIS_URL, prefix);
  });

  test('publish appends to <prefix><channel> and resolves to the Redis entry id', async () => {
    const redis = await client();
    const bus = await backplane({}, redis);
    const id = await bus.publish('events', { id: undefined, event: 'tick', data: '{"n":1}', raw: false, value: { n: 1 } });
    expect(id).toMatch(/^\d+-\d+$/);
    await bus.publish('events', { id: undefined, event: undefined, data: undefined, raw: false, value: undefined });
    await bus.publish('events', { id: undefined, event: undefined, data: 'plain\ntext', raw: true, value: 'plain\ntext' });
    const range = (await redis.command('XRANGE', `${prefix}events`, '-', '+')) as Array<[string, string[]]>;
    expect(range.map(([, fields]) => fields)).toEqual([
      ['e', 'tick', 'd', '{"n":1}', 'r', '0'],
      ['r', '0'],
      ['d', 'plain\ntext', 'r', '1'],
    ]);
    expect(range[0]![0]).toBe(id);
    expect(await redis.command('TYPE', `${prefix}events`)).toBe('stream');
  });

  test('a subscriber gets every entry published after subscribe resolved, once, in order, from every instance', async () => {
    const [a, b, c] = await Promise.all([backplane(), backplane(), backplane()]);
    await a.publish('events', { id: undefined, event: 'before', data: 'x', raw: true, value: 'x' });
    await new Promise((resolve) => setTimeout(resolve, 200)); // a subscription starts up to 100 ms before it is made
    const [onA, onB] = await Promise.all([collect(a), collect(b)]);
    // Three publishers race each other.
    const ids = (
      await Promise.all(
        [a, b, c].map(async (from, index) => {
          const published: string[] = [];
          for (let n = 0; n < 50; n++)
            published.push(await from.publish('events', { id: undefined, event: 'n', data: `${index}:${n}`, raw: true, value: undefined }));
          return published;
        }),
      )
    ).flat();
    const ordered = [...ids].sort(byStreamOrder);
    await eventually(() => onA.entries.length >= 150 && onB.entries.length >= 150, 5000, '150 entries on both instances');
    for (const { entries } of [onA, onB]) {
      expect(entries.map((entry) => entry.id)).toEqual(ordered);
      // Positions are bigints that increase strictly in log order.
      for (let i = 1; i < entries.length; i++) expect(entries[i]!.position > entries[i - 1]!.position).toBe(true);
      expect(entries[0]).toMatchObject({ event: 'n', raw: true });
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(onA.entries).toHaveLength(150); // and nothing more, such as the entry from before
    onA.stop();
    await a.publish('events', { id: undefined, event: 'after', data: 'y', raw: true, value: 'y' });
    await eventually(() => onB.entries.length === 151);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(onA.entries).toHaveLength(150);
  });

  test('a subscription starts when subscribe() is called, even when Redis answers it much later', async () => {
    const slow = await client();
    const bus = await backplane({}, slow);
    const other = await backplane();
    // The injected connection is busy for 500 ms: subscribe's own commands wait behind this one.
    const busy = slow.command('BLPOP', `${prefix}nothing`, '0.5');
    const subscribed = collect(bus);
    const ids: string[] = [];
    for (let n = 0; n < 3; n++)
      ids.push(await other.publish('events', { id: undefined, event: undefined, data: String(n), raw: true, value: undefined }));
    await busy;
    const { entries } = await subscribed;
    await eventually(() => entries.length === 3, 3000, 'the entries published before Redis answered');
    expect(entries.map((entry) => entry.id)).toEqual(ids);
  });

  test('a channel subscribed while the reader is blocked on another is served at once', async () => {
    const bus = await backplane({ blockMs: 30_000 });
    const first = await collect(bus, 'first');
    await new Promise((resolve) => setTimeout(resolve, 100)); // the reader now blocks on `first`
    const started = Date.now();
    const second = await collect(bus, 'second');
    await bus.publish('second', { id: undefined, event: undefined, data: 'hello', raw: true, value: 'hello' });
    await eventually(() => second.entries.length === 1, 3000, 'the entry on the new channel');
    expect(Date.now() - started).toBeLessThan(2000);
    await bus.publish('first', { id: undefined, event: undefined, data: 'still', raw: true, value: 'still' });
    await eventually(() => first.entries.length === 1);
  });

  test('replay returns what followed an id, and answers not found for unknown, malformed, trimmed or too-far ids', async () => {
    const bus = await backplane({ maxLen: 5, trimExactly: true });
    const publish = (n: number) => bus.publish('events', { id: undefined, event: 'n', data: String(n), raw: false, value: n });
    expect(await bus.replay('events', '0-0', 100)).toEqual({ found: true, position: 0n, entries: [] });
    expect(await bus.replay('events', '1-0', 100)).toEqual({ found: false, latest: undefined });
    const ids: string[] = [];
    for (let n = 1; n <= 8; n++) ids.push(await publish(n));
    const latest = { id: ids[7], position: expect.any(BigInt) };

    const tail = await bus.replay('events', ids[4]!, 100);
    expect(tail).toMatchObject({ found: true, entries: [{ id: ids[5], data: '6', raw: false }, { id: ids[6] }, { id: ids[7] }] });
    expect(typeof (tail as { position: unknown }).position).toBe('bigint');
    expect(await bus.replay('events', ids[7]!, 100)).toMatchObject({ found: true, entries: [] });
    // Exactly `limit` behind still resumes; one more does not.
    expect(await bus.replay('events', ids[4]!, 3)).toMatchObject({ found: true });
    expect(await bus.replay('events', ids[4]!, 2)).toEqual({ found: false, latest });
    // ids[0..2] were trimmed (MAXLEN = 5 keeps ids[3..7]).
    expect(await bus.replay('events', ids[2]!, 100)).toEqual({ found: false, latest });
    for (const bad of ['nope', '12', '1-2-3', '01-0', '-1-0', ' 1-0', '99999999999999999999999-0']) {
      expect(await bus.replay('events', bad, 100)).toEqual({ found: false, latest });
    }
    // Made up, between two real ids, or past the newest.
    const [ms, seq] = ids[5]!.split('-');
    expect(await bus.replay('events', `${ms}-${Number(seq) + 1000}`, 100)).toEqual({ found: false, latest });
    expect(await bus.replay('events', `${Number(ids[7]!.split('-')[0]) + 1000}-0`, 100)).toEqual({ found: false, latest });
    // The origin resumes only while the stream is empty: anything in it may have been missed.
    expect(await bus.replay('events', '0-0', 100)).toEqual({ found: false, latest });
    expect(await bus.replay('other', '0-0', 100)).toEqual({ found: true, position: 0n, entries: [] });
  });

  test('MAXLEN ~ keeps about maxLen entries', async () => {
    const redis = await client();
    const bus = await backplane({ maxLen: 100 }, redis);
    for (let n = 0; n < 1000; n++)
      await bus.publish('events', { id: undefined, event: undefined, data: String(n), raw: true, value: undefined });
    const length = Number(await redis.command('XLEN', `${prefix}events`));
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(300);
  });

  test('publish rejects an id of its own, and anything after close', async () => {
    const bus = await backplane();
    await expect(bus.publish('events', { id: '7', event: undefined, data: 'x', raw: true, value: 'x' })).rejects.toMatchObject({
      name: 'SseError',
      code: 'ERR_SSE_INVALID_FIELD',
      message: expect.stringContaining('assigns every id itself'),
    });
    await bus.close();
    await expect(bus.publish('events', { id: undefined, event: undefined, data: 'x', raw: true, value: 'x' })).rejects.toMatchObject({
      code: 'ERR_SSE_CLOSED',
    });
    await expect(bus.subscribe('events', { entry() {}, gap() {} })).rejects.toThrow(SseError);
  });

  test('publish on a client that is not connected rejects at once, and says the entry was not sent', async () => {
    const redis = await client();
    const bus = await backplane({}, redis);
    await bus.publish('events', { id: undefined, event: undefined, data: 'ok', raw: true, value: 'ok' });
    await redis.close();
    await eventually(() => !redis.ready(), 1000, 'the client to disconnect');
    const started = Date.now();
    const error = await bus
      .publish('events', { id: undefined, event: undefined, data: 'lost?', raw: true, value: 'lost?' })
      .catch((reason: unknown) => reason);
    expect(Date.now() - started).toBeLessThan(200);
    expect(error).toBeInstanceOf(RedisBackplaneError);
    expect(error).toBeInstanceOf(SseError);
    expect(error).toMatchObject({ code: 'ERR_SSE_BACKPLANE_UNAVAILABLE', sent: false, message: expect.stringContaining('not connected') });
  });

  test('options are checked, and a client with a key prefix of its own is refused', async () => {
    const redis = await client();
    for (const bad of [
      { maxLen: 0 },
      { blockMs: -1 },
      { readCount: 1.5 },
      { commandTimeoutMs: Number.NaN },
      { prefix: 5 as unknown as string },
    ]) {
      expect(() => createRedisBackplane({ client: redis.client, ...bad })).toThrow(
        expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }),
      );
    }
    expect(() => createRedisBackplane({ client: {} as never })).toThrow(/ioredis or a node-redis/);
    // The client's own key prefix would apply to some keys of XREAD and not others.
    const prefixed =
      flavour === 'ioredis'
        ? new Redis(REDIS_URL, { keyPrefix: 'app:', lazyConnect: true })
        : createClient({ url: REDIS_URL, keyPrefix: 'app:' });
    expect(() => createRedisBackplane({ client: prefixed })).toThrow(
      expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION', message: expect.stringMatching(/keyPrefix/) }),
    );
  });

  test('close() ends the reader connection it opened, adds no listener to the injected client, and never closes it', async () => {
    const redis = await client();
    const listenersBefore = redis.errorListeners();
    const connectionsBefore = await connectedClients();
    const bus = await backplane({}, redis);
    const { entries } = await collect(bus);
    await collect(bus, 'other');
    await bus.publish('events', { id: undefined, event: undefined, data: 'x', raw: true, value: 'x' });
    await eventually(() => entries.length === 1);
    expect(await connectedClients()).toBe(connectionsBefore + 1); // the one reader for both channels
    expect(redis.errorListeners()).toBe(listenersBefore);
    await bus.close();
    let now = await connectedClients();
    for (let i = 0; i < 50 && now !== connectionsBefore; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      now = await connectedClients();
    }
    expect(now).toBe(connectionsBefore);
    expect(redis.errorListeners()).toBe(listenersBefore);
    expect(await redis.command('PING')).toBe('PONG'); // still the user's, still open
    // The wake-up stream is gone too: nothing under the prefix but the channel's stream.
    const keys = (await redis.command('KEYS', `${prefix}*`)) as string[];
    expect(keys).toEqual([`${prefix}events`]);
  });

  test('a channel on the backplane: publish, live delivery, replay on another instance, and the reset for a trimmed id', async () => {
    const busA = await backplane({ maxLen: 5, trimExactly: true });
    const busB = await backplane({ maxLen: 5, trimExactly: true });
    const feedA = createChannel<{ n: number }>({ backplane: busA });
    const feedB = createChannel<{ n: number }>({ backplane: busB });
    channels.push(feedA, feedB);
    const [appA, appB] = await Promise.all([
      startApp('node', ({ stream }) => feedA.subscribe(stream)),
      startApp('fastify', ({ stream }) => feedB.subscribe(stream)),
    ]);
    apps.push(appA, appB);
    const live = await readSse(`${appB.url}/events`);
    await eventually(() => feedB.size === 1);
    const ids: string[] = [];
    for (let n = 1; n <= 3; n++) ids.push(await feedA.publish({ event: 'n', data: n }));
    await live.waitForEvents(3);
    expect(live.events.map((event) => [event.id, event.event, event.data])).toEqual(ids.map((id, index) => [id, 'n', String(index + 1)]));

    // Resume on the other instance, from the first id.
    const resumed = await readSse(`${appA.url}/events`, { headers: { 'last-event-id': ids[0]! } });
    await resumed.waitForEvents(2);
    expect(resumed.events.map((event) => event.id)).toEqual(ids.slice(1));

    // Five more: ids[0..2] are trimmed now, so resuming from ids[0] gets the reset signal.
    for (let n = 4; n <= 8; n++) ids.push(await feedB.publish({ event: 'n', data: n }));
    const trimmed = await readSse(`${appB.url}/events`, { headers: { 'last-event-id': ids[0]! } });
    const [reset] = await trimmed.waitForEvents(1);
    expect(reset).toMatchObject({ event: 'reset', id: ids[7], data: JSON.stringify({ lastEventId: ids[0] }) });
    ids.push(await feedA.publish({ event: 'n', data: 9 }));
    await trimmed.waitForEvents(2);
    expect(trimmed.events[1]).toMatchObject({ id: ids[8], data: '9' });
    for (const reader of [live, resumed, trimmed]) reader.close();
  });
});
