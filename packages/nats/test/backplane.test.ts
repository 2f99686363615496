/**
 * The NATS backplane against a real NATS server: the stream and subject layout, the chain of
 * `Ssekit-Prev` headers, creation of the stream by racing instances and its conflicts, replay
 * of long ranges, live gaps and the reset they lead to, outages of one connection (through a
 * proxy), consumers lost on the server, options, and what close() releases.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { createChannel, SseError, type Backplane, type BackplaneEntry, type Channel } from '@ssekit/core';
import {
  eventually,
  readSse,
  recordBackplaneDiagnostics,
  startApp,
  startTcpProxy,
  type SseReader,
  type TcpProxy,
  type TestApp,
} from '@ssekit/test-kit';
import { createNatsBackplane, NatsBackplaneError, type NatsBackplaneOptions } from '../src/index.js';
import { connectNats, consumerNames, deleteStream, disconnected, NATS_URL, requireNats, uniqueStream, until } from './nats.js';

beforeAll(() => requireNats());

let stream: string;
let manager: JetStreamManager;
let admin: NatsConnection;
const connections: NatsConnection[] = [];
const backplanes: Backplane[] = [];
const channels: Channel<any>[] = [];
const apps: TestApp[] = [];
const readers: SseReader[] = [];
const proxies: TcpProxy[] = [];

const connection = async (url = NATS_URL, options: Record<string, unknown> = {}) => {
  const made = await connectNats(url, options);
  connections.push(made);
  return made;
};
const backplane = async (options: Partial<NatsBackplaneOptions> = {}) => {
  const made = createNatsBackplane({ connection: options.connection ?? (await connection()), stream, onError() {}, ...options });
  backplanes.push(made);
  return made;
};
const proxy = async () => {
  const made = await startTcpProxy(NATS_URL);
  proxies.push(made);
  return made;
};
/** Subscribes and records what arrives, gaps included, in order. */
const collect = async (from: Backplane, channel = 'events') => {
  const entries: BackplaneEntry[] = [];
  const log: string[] = [];
  const subscription = await from.subscribe(channel, {
    entry: (entry) => (entries.push(entry), log.push(entry.id)),
    gap: () => log.push('gap'),
  });
  return { entries, log, ...subscription };
};
const message = (data: string, event?: string) => ({ id: undefined, event, data, raw: true, value: data });
/** Every message of the stream, as stored: subject, sequence, headers and payload. */
const stored = async () => {
  const info = await manager.streams.info(stream);
  const messages = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const got = await manager.streams.getMessage(stream, { seq }).catch(() => null);
    if (!got) continue;
    // The backplane's own headers (the server may keep the Nats-Expected-* ones too).
    const keys = got.header.keys().filter((key) => key.startsWith('Ssekit-'));
    const headers = Object.fromEntries(keys.map((key) => [key, got.header.get(key)]));
    messages.push({ seq: got.seq, subject: got.subject, headers, data: new TextDecoder().decode(got.data) });
  }
  return messages;
};

beforeAll(async () => {
  admin = await connectNats();
  manager = await jetstreamManager(admin);
});
afterAll(() => admin?.close());
beforeEach(() => {
  stream = uniqueStream();
});
afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  for (const channel of channels.splice(0)) await channel.close();
  for (const app of apps.splice(0)) await app.close();
  for (const made of backplanes.splice(0)) await made.close();
  for (const made of connections.splice(0)) await made.close();
  for (const made of proxies.splice(0)) await made.close();
  await deleteStream(NATS_URL, stream);
});

test('publish makes the stream on first use, appends to <stream>.<channel> with the chain headers, and resolves to the sequence', async () => {
  const bus = await backplane({ maxLen: 100, maxAgeMs: 3_600_000 });
  const ids = [
    await bus.publish('events', { id: undefined, event: 'tick', data: '{"n":1}', raw: false, value: { n: 1 } }),
    await bus.publish('events', { id: undefined, event: undefined, data: undefined, raw: false, value: undefined }),
    await bus.publish('other', { id: undefined, event: 'spaced name é', data: 'plain\ntext', raw: true, value: 'plain\ntext' }),
    await bus.publish('events', { id: undefined, event: undefined, data: '', raw: true, value: '' }),
  ];
  expect(ids).toEqual(['1', '2', '3', '4']);
  expect(await stored()).toEqual([
    { seq: 1, subject: `${stream}.events`, headers: { 'Ssekit-Prev': '0', 'Ssekit-Event': 'tick' }, data: '{"n":1}' },
    { seq: 2, subject: `${stream}.events`, headers: { 'Ssekit-Prev': '1', 'Ssekit-No-Data': '1' }, data: '' },
    {
      seq: 3,
      subject: `${stream}.other`,
      headers: { 'Ssekit-Prev': '0', 'Ssekit-Event': 'spaced%20name%20%C3%A9', 'Ssekit-Raw': '1' },
      data: 'plain\ntext',
    },
    { seq: 4, subject: `${stream}.events`, headers: { 'Ssekit-Prev': '2', 'Ssekit-Raw': '1' }, data: '' },
  ]);
  const { config } = await manager.streams.info(stream);
  expect(config).toMatchObject({
    subjects: [`${stream}.>`],
    storage: 'file',
    retention: 'limits',
    discard: 'old',
    max_msgs_per_subject: 100,
    max_age: 3_600_000 * 1e6,
    allow_direct: true,
  });
});

test('channel names of any shape become one subject token each, and stay apart', async () => {
  const bus = await backplane();
  const names = ['a.b', 'a', 'b', 'a*', '>', 'with space', 'tab\tand\nline', '', '~', '~2E', 'ünï😀', 'Mixed-Case_1'];
  const subscriptions = await Promise.all(names.map((name) => collect(bus, name)));
  const ids: string[] = [];
  for (const name of names) ids.push(await bus.publish(name, message(`to ${name}`)));
  await eventually(() => subscriptions.every((subscription) => subscription.entries.length === 1), 5000, 'one entry on each channel');
  names.forEach((name, index) =>
    expect(subscriptions[index]!.entries.map((entry) => [entry.id, entry.data])).toEqual([[ids[index], `to ${name}`]]),
  );
  const subjects = (await stored()).map((one) => one.subject.slice(stream.length + 1));
  expect(subjects).toEqual([
    'a~2Eb',
    'a',
    'b',
    'a~2A',
    '~3E',
    'with~20space',
    'tab~09and~0Aline',
    '~',
    '~7E',
    '~7E2E',
    '~C3~BCn~C3~AF~F0~9F~98~80',
    'Mixed-Case_1',
  ]);
  // A name that is not well-formed, or too long for a subject: misuse, refused before anything is sent.
  for (const bad of ['lone \uD800 surrogate', 'x'.repeat(400) + '.'.repeat(300)]) {
    expect(() => bus.subscribe(bad, { entry() {}, gap() {} })).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }));
    await expect(bus.publish(bad, message('x'))).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_OPTION' });
  }
  await expect(bus.publish('events', message('x', 'lone \uDC00'))).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_FIELD' });
  // Larger than the server's max_payload (1 MiB by default): refused before it is sent.
  await expect(bus.publish('events', message('x'.repeat(2_000_000)))).rejects.toMatchObject({
    name: 'NatsBackplaneError',
    sent: false,
    message: expect.stringContaining('max_payload'),
  });
});

test('instances that start at once all make or accept the one stream, and racing publishers keep each channel chained', async () => {
  const buses = await Promise.all(Array.from({ length: 5 }, () => backplane()));
  const watcher = await collect(buses[0]!);
  // Every instance publishes its first entry at the same moment, on a stream none has made yet.
  const ids = (
    await Promise.all(
      buses.map(async (bus, index) => {
        const published = [];
        for (let n = 0; n < 20; n++) published.push(await bus.publish('events', message(`${index}:${n}`)));
        return published;
      }),
    )
  ).flat();
  expect(new Set(ids).size).toBe(100);
  await eventually(() => watcher.entries.length === 100, 5000, '100 entries');
  expect(watcher.log).not.toContain('gap');
  // The chain: each message names the one before it on its subject.
  const messages = (await stored()).filter((one) => one.subject === `${stream}.events`);
  expect(messages).toHaveLength(100);
  messages.forEach((one, index) => expect(one.headers['Ssekit-Prev']).toBe(index === 0 ? '0' : String(messages[index - 1]!.seq)));
  expect(watcher.entries.map((entry) => entry.id)).toEqual(messages.map((one) => String(one.seq)));
  const streams: string[] = [];
  for await (const name of manager.streams.names()) if (name === stream) streams.push(name);
  expect(streams).toEqual([stream]);
});

test('a stream that exists with other limits is refused with a clear error; a compatible one is used as it is', async () => {
  await manager.streams.add({
    name: stream,
    subjects: [`${stream}.>`],
    max_msgs_per_subject: 50,
    discard: 'old',
    description: 'made by ops',
  });
  const reported: unknown[] = [];
  const bus = await backplane({ maxLen: 100, onError: (error) => reported.push(error) });
  const error = await bus.publish('events', message('x')).catch((reason: unknown) => reason);
  expect(error).toBeInstanceOf(SseError);
  expect(error).toMatchObject({
    code: 'ERR_SSE_INVALID_OPTION',
    message: expect.stringMatching(new RegExp(`stream "${stream}" exists.*max_msgs_per_subject is 50, but maxLen is 100`)),
  });
  // A subscription keeps trying (the stream may be fixed), and says why it cannot start.
  Promise.resolve(bus.subscribe('events', { entry() {}, gap() {} })).catch(() => {}); // rejects when the test closes it
  await eventually(() => reported.length > 0, 5000, 'the conflict to be reported');
  expect(reported[0]).toMatchObject({ code: 'ERR_SSE_INVALID_OPTION' });

  // Without allow_direct (a stream made elsewhere), reads go through the leader's message API.
  const same = await backplane({ maxLen: 50 });
  const seen = await collect(same);
  const ids = [];
  for (let n = 0; n < 12; n++) ids.push(await same.publish('events', message(String(n))));
  await eventually(() => seen.entries.length === 12);
  expect(await same.replay('events', ids[0]!, 100)).toMatchObject({ found: true, entries: ids.slice(1).map((id) => ({ id })) });
  expect((await manager.streams.info(stream)).config).toMatchObject({ description: 'made by ops', allow_direct: false });
});

test('maxLen is exact, and replay of many entries follows the chain through a consumer it removes afterwards', async () => {
  const bus = await backplane({ maxLen: 60 });
  const ids: string[] = [];
  for (let n = 0; n < 80; n++) {
    ids.push(await bus.publish('events', message(String(n))));
    if (n % 4 === 0) await bus.publish('noise', message('interleaved')); // other subjects in between
  }
  const info = await manager.streams.info(stream, { subjects_filter: `${stream}.events` });
  expect(info.state.subjects).toEqual({ [`${stream}.events`]: 60 });
  const latest = { id: ids[79], position: Number(ids[79]) };
  // ids[20..79] are kept: 59 entries after ids[20].
  const all = await bus.replay('events', ids[20]!, 59);
  expect(all).toMatchObject({ found: true, position: Number(ids[20]) });
  expect(all.found && all.entries.map((entry) => [entry.id, entry.data])).toEqual(
    ids.slice(21).map((id, index) => [id, String(index + 21)]),
  );
  expect(await bus.replay('events', ids[20]!, 58)).toEqual({ found: false, latest });
  expect(await bus.replay('events', ids[19]!, 1000)).toEqual({ found: false, latest }); // trimmed
  expect(await bus.replay('events', ids[78]!, 1)).toMatchObject({ found: true, entries: [{ id: ids[79] }] });
  // A replay's consumer does not outlive it.
  await until(async () => (await consumerNames(NATS_URL, stream)).length === 0, 3000, 'no consumer left');
});

test('a reader cut off from NATS while the channel goes on resumes with every entry, and a publish on its side rejects at once', async () => {
  const cable = await proxy();
  const nc = await connection(cable.url);
  const reported: unknown[] = [];
  const cutOff = await backplane({ connection: nc, onError: (error) => reported.push(error) });
  const other = await backplane();
  const seen = await collect(cutOff);
  const ids = [await other.publish('events', message('0'))];
  await eventually(() => seen.entries.length === 1);
  const diagnostics = recordBackplaneDiagnostics('nats');
  try {
    const noticed = disconnected(nc);
    cable.cut();
    await noticed;
    const started = performance.now();
    const error = await cutOff.publish('events', message('lost?')).catch((reason: unknown) => reason);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error).toBeInstanceOf(NatsBackplaneError);
    expect(error).toMatchObject({ code: 'ERR_SSE_BACKPLANE_UNAVAILABLE', sent: false });
    for (let n = 1; n <= 5; n++) ids.push(await other.publish('events', message(String(n))));
    cable.restore();
    const back = performance.now();
    await eventually(() => seen.entries.length === 6, 5000, 'the entries published meanwhile');
    expect(performance.now() - back).toBeLessThan(5000);
    expect(seen.log).toEqual(ids); // no gap: nothing was trimmed
    // The outage reached diagnostics as onError heard it, once, and so did its end.
    expect(reported).toHaveLength(1);
    expect(diagnostics.errors).toEqual(reported);
    expect(diagnostics.reconnects()).toBe(1);
  } finally {
    diagnostics.stop();
  }
});

test('a reader that missed entries trimmed while it was cut off calls gap(), and its channel sends reset to its subscriber', async () => {
  const cable = await proxy();
  const reader = await backplane({ connection: await connection(cable.url), maxLen: 3 });
  const writer = await backplane({ maxLen: 3 });
  const feed = createChannel<{ n: string }>({ backplane: reader });
  channels.push(feed);
  const app = await startApp('express', ({ stream: sse }) => feed.subscribe(sse));
  apps.push(app);
  const live = await readSse(`${app.url}/events`);
  readers.push(live);
  await eventually(() => feed.size === 1);
  const seen = await collect(reader); // the same feed, seen from the backplane's side
  const ids = [await writer.publish('events', message('1', 'n'))];
  await live.waitForEvents(1);

  cable.cut();
  // Five entries while the reader is away: with maxLen 3, the first two are gone when it returns.
  for (let n = 2; n <= 6; n++) ids.push(await writer.publish('events', message(String(n), 'n')));
  cable.restore();
  await eventually(() => seen.entries.length === 4, 5000, 'the entries still in the stream');
  expect(seen.log).toEqual([ids[0], 'gap', ids[3], ids[4], ids[5]]);

  // The channel could not replay from its last entry (trimmed): its subscriber is told.
  const [, reset] = await live.waitForEvents(2);
  expect(reset).toMatchObject({ event: 'reset', id: ids[5], data: JSON.stringify({ lastEventId: ids[0] }) });
  ids.push(await writer.publish('events', message('7', 'n')));
  await live.waitForEvents(3);
  expect(live.events.map((event) => [event.event, event.id])).toEqual([
    ['n', ids[0]],
    ['reset', ids[5]],
    ['n', ids[6]],
  ]);
});

test('a consumer deleted on the server is replaced at once, from the last entry delivered', async () => {
  const bus = await backplane({ heartbeatMs: 500 });
  const seen = await collect(bus);
  const ids = [await bus.publish('events', message('0'))];
  await eventually(() => seen.entries.length === 1);
  const [name] = await consumerNames(NATS_URL, stream);
  expect(name).toBeDefined();
  await manager.consumers.delete(stream, name!);
  ids.push(await bus.publish('events', message('1')), await bus.publish('events', message('2')));
  await eventually(() => seen.entries.length === 3, 5000, 'delivery through a new consumer');
  expect(seen.log).toEqual(ids);
  expect(await consumerNames(NATS_URL, stream)).not.toContain(name);
});

test('a stream deleted under running instances is made again; readers start over on it and report the gap', async () => {
  const bus = await backplane();
  const seen = await collect(bus);
  const old = [await bus.publish('events', message('a')), await bus.publish('events', message('b'))];
  await eventually(() => seen.entries.length === 2);
  await manager.streams.delete(stream);
  // The first publish may meet no stream at all: the backplane then looks for it, and makes it, again.
  let id: string | undefined;
  for (let attempt = 0; id === undefined; attempt++) {
    id = await bus.publish('events', message('c')).catch((error: unknown) => {
      if (attempt >= 20) throw error;
      return undefined;
    });
  }
  expect(id).toBe('1'); // sequences start over
  await eventually(() => seen.entries.length === 3, 5000, 'the first entry of the new stream');
  expect(seen.log).toEqual([...old, 'gap', '1']);
  expect(await bus.replay('events', old[1]!, 100)).toEqual({ found: false, latest: { id: '1', position: 1 } });
});

test('a connection that goes silent without dropping is caught by missed heartbeats, and delivery resumes after it', async () => {
  const cable = await proxy();
  const bus = await backplane({ connection: await connection(cable.url), heartbeatMs: 500, timeoutMs: 1000 });
  const other = await backplane();
  const seen = await collect(bus);
  const ids = [await other.publish('events', message('0'))];
  await eventually(() => seen.entries.length === 1);
  const [before] = await consumerNames(NATS_URL, stream);
  // Nothing passes for 2.5 s, and the client's pings (every 5 s) do not notice: only heartbeats can.
  cable.hold();
  for (let n = 1; n <= 3; n++) ids.push(await other.publish('events', message(String(n))));
  await new Promise((resolve) => setTimeout(resolve, 2500));
  cable.restore();
  await eventually(() => seen.entries.length === 4, 5000, 'the entries published while the connection was silent');
  ids.push(await other.publish('events', message('4')));
  await eventually(() => seen.entries.length === 5, 5000, 'the next entry');
  expect(seen.log).toEqual(ids);
  // A new consumer reads now; the silent one is gone, or going (the server drops an idle one after 30 s).
  await until(async () => (await consumerNames(NATS_URL, stream)).some((name) => name !== before), 5000, 'a new consumer');
});

test('a publish in flight when the connection drops rejects then, and one that NATS does not answer rejects after timeoutMs', async () => {
  const cable = await proxy();
  const bus = await backplane({ connection: await connection(cable.url), timeoutMs: 300 });
  await bus.publish('events', message('ready'));
  cable.hold();
  let started = performance.now();
  const timedOut = await bus.publish('events', message('stalled')).catch((reason: unknown) => reason);
  expect(performance.now() - started).toBeGreaterThanOrEqual(250);
  expect(timedOut).toMatchObject({ name: 'NatsBackplaneError', sent: true, message: expect.stringContaining('within 300 ms') });
  const inFlight = bus.publish('events', message('dropped')).catch((reason: unknown) => reason);
  await new Promise((resolve) => setTimeout(resolve, 50));
  started = performance.now();
  cable.cut();
  expect(await inFlight).toMatchObject({ name: 'NatsBackplaneError', sent: true, message: expect.stringContaining('dropped') });
  expect(performance.now() - started).toBeLessThan(1000);
});

test('with maxAgeMs, entries age out; a live reader takes the next one without a gap, and the origin never resumes', async () => {
  const bus = await backplane({ maxAgeMs: 1000 });
  const seen = await collect(bus);
  expect(seen.start).toBeUndefined();
  const first = await bus.publish('events', message('old'));
  await eventually(() => seen.entries.length === 1);
  // The origin would resume even if everything had aged out in between: only an id does.
  expect(await bus.replay('events', '0', 100)).toEqual({ found: false, latest: { id: first, position: Number(first) } });
  await until(async () => (await manager.streams.info(stream)).state.messages === 0, 5000, 'the entry to age out');
  expect(await bus.replay('events', '0', 100)).toEqual({ found: false, latest: undefined });
  expect(await bus.replay('events', first, 100)).toEqual({ found: false, latest: undefined });
  const next = await bus.publish('events', message('new'));
  await eventually(() => seen.entries.length === 2);
  expect(seen.log).toEqual([first, next]);
});

test('options are checked, and a connection that would not survive an outage is reported', async () => {
  const nc = await connection();
  for (const bad of [
    { maxLen: 0 },
    { maxAgeMs: -1 },
    { timeoutMs: 1.5 },
    { heartbeatMs: 100 },
    { stream: 'has.dot' },
    { stream: '' },
    { onError: 'loud' as never },
  ]) {
    expect(() => createNatsBackplane({ connection: nc, ...bad })).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }));
  }
  expect(() => createNatsBackplane({ connection: {} as never })).toThrow(/NATS connection/);
  expect(() => createNatsBackplane(undefined as never)).toThrow(/NATS connection/);
  const reported: unknown[] = [];
  const slow = await connection(NATS_URL, { maxReconnectAttempts: 10, reconnectTimeWait: 2000 });
  await backplane({ connection: slow, onError: (error) => reported.push(error) });
  expect(reported).toEqual([
    expect.objectContaining({ message: expect.stringMatching(/maxReconnectAttempts is 10.*reconnectTimeWait is 2000 ms/) }),
  ]);
});

test('a connection closed for good is reported, and publishes on it reject at once', async () => {
  const nc = await connection();
  const reported: unknown[] = [];
  const bus = await backplane({ connection: nc, onError: (error) => reported.push(error) });
  const seen = await collect(bus);
  await bus.publish('events', message('x'));
  await eventually(() => seen.entries.length === 1);
  await nc.close();
  await eventually(() => reported.length > 0, 2000, 'the close to be reported');
  expect(reported).toEqual([expect.objectContaining({ name: 'NatsBackplaneError', message: expect.stringContaining('closed for good') })]);
  const started = performance.now();
  await expect(bus.publish('events', message('y'))).rejects.toMatchObject({ code: 'ERR_SSE_BACKPLANE_UNAVAILABLE', sent: false });
  expect(performance.now() - started).toBeLessThan(1000);
});

test('publish rejects an id of its own, and everything after close', async () => {
  const bus = await backplane();
  await expect(bus.publish('events', { id: '7', event: undefined, data: 'x', raw: true, value: 'x' })).rejects.toMatchObject({
    name: 'SseError',
    code: 'ERR_SSE_INVALID_FIELD',
    message: expect.stringContaining('assigns every id itself'),
  });
  await bus.close();
  await expect(bus.publish('events', message('x'))).rejects.toMatchObject({ code: 'ERR_SSE_CLOSED' });
  await expect(bus.subscribe('events', { entry() {}, gap() {} })).rejects.toMatchObject({ code: 'ERR_SSE_CLOSED' });
  await expect(bus.replay('events', '0', 10)).rejects.toMatchObject({ code: 'ERR_SSE_CLOSED' });
});

test('close() removes the consumers it made and its status listener, and leaves the connection open', async () => {
  const nc = await connection();
  const listeners = () => (nc as unknown as { protocol: { listeners: unknown[] } }).protocol.listeners.length;
  const before = listeners();
  const bus = await backplane({ connection: nc });
  const seen = await collect(bus);
  await collect(bus, 'other');
  await bus.publish('events', message('x'));
  await eventually(() => seen.entries.length === 1);
  expect(await consumerNames(NATS_URL, stream)).toHaveLength(2); // one per channel, not per listener
  await bus.close();
  expect(await consumerNames(NATS_URL, stream)).toEqual([]);
  await eventually(() => listeners() === before, 1000, 'the status listeners to go');
  expect(nc.isClosed()).toBe(false);
  await nc.flush(); // still the user's, still open
});
