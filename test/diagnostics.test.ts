/**
 * Diagnostics on node:diagnostics_channel: what each `ssekit:*` channel carries, checked against
 * what a scripted run did, on every adapter (raw node:http, Express, Fastify, Koa, and
 * @ssekit/web on Hono's node server), for a channel's replay and reset, and for a backplane's
 * reports. And while nobody listens, nothing is published at all.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import {
  createChannel,
  createStreamGroup,
  SSE_DIAGNOSTICS,
  type Channel,
  type SseDiagnosticsMessages,
  type SseStreamCloseMessage,
  type SseStreamOpenMessage,
} from '@ssekit/core';
import { createSseStreamFromSink, reportBackplaneEvent } from '@ssekit/core/adapter';
import { createGappingBackplane, createMemorySink, delay, eventually, readSse } from '@ssekit/test-kit';
import { ADAPTER_TARGETS, rawRequestOf, startTarget, type TargetApp } from './targets.js';

type Name = keyof SseDiagnosticsMessages;
const NAMES = Object.values(SSE_DIAGNOSTICS) as Name[];

/** Everything published on every ssekit channel while it listens, in order. */
function listen() {
  const log: Array<{ name: Name; message: unknown }> = [];
  const listeners = NAMES.map((name) => {
    const listener = (message: unknown) => void log.push({ name, message });
    diagnostics_channel.subscribe(name, listener);
    return { name, listener };
  });
  return {
    log,
    of<TName extends Name>(name: TName): Array<SseDiagnosticsMessages[TName]> {
      return log.filter((entry) => entry.name === name).map((entry) => entry.message as SseDiagnosticsMessages[TName]);
    },
    stop() {
      for (const { name, listener } of listeners) diagnostics_channel.unsubscribe(name, listener);
    },
  };
}

let listening: ReturnType<typeof listen> | undefined;
afterEach(() => {
  listening?.stop();
  listening = undefined;
});

test('the channel names are stable, and all start with ssekit:', () => {
  expect(SSE_DIAGNOSTICS).toEqual({
    streamOpen: 'ssekit:stream:open',
    streamClose: 'ssekit:stream:close',
    streamDeferred: 'ssekit:stream:deferred',
    streamOverflow: 'ssekit:stream:overflow',
    channelReplay: 'ssekit:channel:replay',
    channelReset: 'ssekit:channel:reset',
    backplaneError: 'ssekit:backplane:error',
    backplaneReconnect: 'ssekit:backplane:reconnect',
  });
  expect(Object.isFrozen(SSE_DIAGNOSTICS)).toBe(true);
});

describe.each(ADAPTER_TARGETS)('diagnostics on %s', (target) => {
  let app: TargetApp | undefined;
  let channel: Channel<any> | undefined;
  afterEach(async () => {
    await channel?.close();
    await app?.close();
    app = channel = undefined;
  });

  test('open and close carry the request, its path without the query, the group, and the events, bytes and lifetime of the run', async () => {
    const diagnostics = (listening = listen());
    app = await startTarget(target, async (stream) => {
      await stream.send({ id: '1', data: 'a' });
      await stream.send({ event: 'x', data: { n: 2 } });
      await stream.comment('not an event');
      await stream.retry(5000);
      await delay(60);
      stream.close();
    });
    const started = performance.now();
    const reader = await readSse(`${app.url}/events?token=secret`);
    await reader.ended;
    const elapsed = performance.now() - started;
    await eventually(() => diagnostics.of('ssekit:stream:close').length === 1, 5000, 'the close');

    const [stream] = app.streams;
    expect(diagnostics.of('ssekit:stream:open')).toEqual([{ stream, request: expect.anything(), path: '/events', group: app.group }]);
    const [open] = diagnostics.of('ssekit:stream:open') as [SseStreamOpenMessage];
    expect(open.group).toBe(app.group);
    expect(rawRequestOf(open.request)).toBe(app.requests[0]);
    const [close] = diagnostics.of('ssekit:stream:close') as [SseStreamCloseMessage];
    expect(close).toEqual({ stream, reason: 'server', events: 2, bytes: Buffer.byteLength(reader.text()), lifetimeMs: expect.any(Number) });
    expect(close.stream).toBe(stream);
    // The stream's own counters say the same, for metrics that read streams still open.
    expect([stream!.eventsSent, stream!.bytesSent]).toEqual([2, Buffer.byteLength(reader.text())]);
    expect(close.lifetimeMs).toBeGreaterThanOrEqual(55);
    expect(close.lifetimeMs).toBeLessThanOrEqual(elapsed);
    expect(reader.events).toHaveLength(2);
    expect(diagnostics.log.map((entry) => entry.name)).toEqual(['ssekit:stream:open', 'ssekit:stream:close']);
  });

  test('a client that leaves closes with reason client, and what it had received', async () => {
    const diagnostics = (listening = listen());
    app = await startTarget(target, async (stream) => {
      await stream.send({ data: 'x'.repeat(1000) });
    });
    const reader = await readSse(`${app.url}/events`);
    await reader.waitForEvents(1);
    await delay(50); // anything else the sink sends at open has arrived too
    reader.close();
    await eventually(() => diagnostics.of('ssekit:stream:close').length === 1, 5000, 'the close');
    expect(diagnostics.of('ssekit:stream:close')).toEqual([
      { stream: app.streams[0], reason: 'client', events: 1, bytes: Buffer.byteLength(reader.text()), lifetimeMs: expect.any(Number) },
    ]);
  });

  test('a slow client: overflow with what was buffered, then a close with reason overflow and every event written', async () => {
    const diagnostics = (listening = listen());
    const maxBufferedBytes = 256 * 1024;
    let accepted = 0;
    let clientPaused!: () => void;
    const paused = new Promise<void>((resolve) => (clientPaused = resolve));
    app = await startTarget(
      target,
      async (stream) => {
        await stream.send('start');
        accepted++;
        await paused;
        const chunk = 'z'.repeat(32 * 1024);
        for (let i = 0; i < 4000 && !stream.closed; i++) {
          void stream.send(chunk);
          if (!stream.closed) accepted++;
          if (i % 50 === 49) await delay(5);
        }
      },
      { options: { maxBufferedBytes } },
    );
    const reader = await readSse(`${app.url}/events`);
    await reader.waitForEvents(1);
    reader.pause();
    clientPaused();
    await eventually(() => diagnostics.of('ssekit:stream:close').length === 1, 20_000, 'the slow stream to close');
    const [stream] = app.streams;
    const [overflow] = diagnostics.of('ssekit:stream:overflow');
    expect(overflow).toEqual({ stream, bufferedBytes: expect.any(Number), maxBufferedBytes });
    expect(overflow!.bufferedBytes).toBeGreaterThan(maxBufferedBytes);
    expect(diagnostics.of('ssekit:stream:close')).toEqual([
      { stream, reason: 'overflow', events: accepted, bytes: expect.any(Number), lifetimeMs: expect.any(Number) },
    ]);
    // Every accepted event was handed to the sink, whole: its bytes are at least theirs.
    expect(diagnostics.of('ssekit:stream:close')[0]!.bytes).toBeGreaterThanOrEqual((accepted - 1) * (32 * 1024 + 8));
    expect(diagnostics.log.map((entry) => entry.name)).toEqual(['ssekit:stream:open', 'ssekit:stream:overflow', 'ssekit:stream:close']);
    reader.close();
  });

  test('a channel: a resume publishes its replay, an id it cannot resume from publishes its reset', async () => {
    const feed = (channel = createChannel({ name: 'prices', history: { maxEvents: 5 } }));
    app = await startTarget(target, (stream) => feed.subscribe(stream));
    const ids: string[] = [];
    for (let n = 1; n <= 8; n++) ids.push(await feed.publish({ event: 'n', data: { n } }));
    const diagnostics = (listening = listen());

    // Ids 4 to 8 are held: resuming after 5 replays 6, 7 and 8.
    const resumed = await readSse(`${app.url}/events`, { headers: { 'last-event-id': ids[4]! } });
    await resumed.waitForEvents(3);
    await eventually(() => diagnostics.of('ssekit:channel:replay').length === 1, 5000, 'the replay');
    expect(diagnostics.of('ssekit:channel:replay')).toEqual([
      { channel: 'prices', stream: app.streams[0], lastEventId: ids[4], events: 3, durationMs: expect.any(Number), cause: 'resume' },
    ]);
    expect(diagnostics.of('ssekit:channel:replay')[0]!.durationMs).toBeGreaterThanOrEqual(0);

    // Id 1 fell out of the history: the reset moves the client to the newest.
    const lost = await readSse(`${app.url}/events`, { headers: { 'last-event-id': ids[0]! } });
    await lost.waitForEvents(1);
    expect(lost.events[0]).toMatchObject({ event: 'reset', id: ids[7] });
    await eventually(() => diagnostics.of('ssekit:channel:reset').length === 1, 5000, 'the reset');
    expect(diagnostics.of('ssekit:channel:reset')).toEqual([
      { channel: 'prices', stream: app.streams[1], lastEventId: ids[0], id: ids[7] },
    ]);
    expect(diagnostics.of('ssekit:channel:replay')).toHaveLength(1);

    resumed.close();
    lost.close();
    await eventually(() => diagnostics.of('ssekit:stream:close').length === 2, 5000, 'both closes');
    // Replayed events and the reset count as events of their streams.
    expect(diagnostics.of('ssekit:stream:close').map(({ stream, events, reason }) => ({ stream, events, reason }))).toEqual(
      expect.arrayContaining([
        { stream: app.streams[0], events: 3, reason: 'client' },
        { stream: app.streams[1], events: 1, reason: 'client' },
      ]),
    );
  });
});

describe('replay filters, gaps and backplanes', () => {
  test('replay counts only the events the filter let through', async () => {
    const feed = createChannel();
    for (let n = 1; n <= 6; n++) await feed.publish({ event: 'n', data: { n } });
    const diagnostics = (listening = listen());
    const sink = createMemorySink({ lastEventId: '1' });
    const stream = createSseStreamFromSink(sink, { keepAliveMs: 0 });
    feed.subscribe(stream, { filter: (event) => (event.data as { n: number }).n % 2 === 0 });
    await eventually(() => diagnostics.of('ssekit:channel:replay').length === 1, 5000, 'the replay');
    expect(sink.events.map((event) => event.id)).toEqual(['2', '4', '6']);
    expect(diagnostics.of('ssekit:channel:replay')).toEqual([
      { channel: 'events', stream, lastEventId: '1', events: 3, durationMs: expect.any(Number), cause: 'resume' },
    ]);
    await feed.close();
  });

  test('a gap in live delivery publishes a replay with cause gap', async () => {
    const gapping = createGappingBackplane();
    const feed = createChannel({ backplane: gapping.backplane });
    const sink = createMemorySink();
    const stream = createSseStreamFromSink(sink, { keepAliveMs: 0 });
    feed.subscribe(stream);
    gapping.deliver(1);
    const diagnostics = (listening = listen());
    gapping.append(2);
    gapping.append(3); // never delivered live: the backplane lost them
    gapping.gap();
    gapping.deliver(4);
    await eventually(() => diagnostics.of('ssekit:channel:replay').length === 1, 5000, 'the replay after the gap');
    expect(sink.events.map((event) => event.id)).toEqual(['1', '2', '3', '4']);
    expect(diagnostics.of('ssekit:channel:replay')).toEqual([
      { channel: 'events', stream, lastEventId: '1', events: 3, durationMs: expect.any(Number), cause: 'gap' },
    ]);
    await feed.close();
  });

  test('reportBackplaneEvent publishes errors and reconnects under their own names', () => {
    const diagnostics = (listening = listen());
    const error = new Error('down');
    reportBackplaneEvent('error', 'redis', error);
    reportBackplaneEvent('reconnect', 'redis');
    expect(diagnostics.log).toEqual([
      { name: 'ssekit:backplane:error', message: { backplane: 'redis', error } },
      { name: 'ssekit:backplane:reconnect', message: { backplane: 'redis' } },
    ]);
  });
});

describe('while nobody listens', () => {
  // Core's own handles are these very objects: diagnostics_channel keeps one per name.
  const spies = () => NAMES.map((name) => jest.spyOn(diagnostics_channel.channel(name), 'publish'));
  afterEach(() => jest.restoreAllMocks());

  /** A run that would publish on every channel: open, overflow, close, deferral, replay, reset, backplane. */
  async function everything(): Promise<{ pathReads: number }> {
    let pathReads = 0;
    const countingPath = <TSink extends object>(sink: TSink) =>
      Object.defineProperty(sink, 'path', {
        get: () => (pathReads++, '/events'),
      });
    const sink = countingPath(createMemorySink({ highWaterMark: 1024 }));
    const slow = createSseStreamFromSink(sink, { keepAliveMs: 0, maxBufferedBytes: 2048 });
    sink.stall();
    for (let i = 0; i < 10 && !slow.closed; i++) void slow.send('x'.repeat(1000));
    expect(slow.closeReason).toBe('overflow');
    const admitting = createStreamGroup({ admission: { opensPerSecond: 1 } });
    createSseStreamFromSink(createMemorySink(), { keepAliveMs: 0, group: admitting }).open();
    const deferred = createSseStreamFromSink(countingPath(createMemorySink()), { keepAliveMs: 0, group: admitting });
    deferred.open();
    expect(deferred.closeReason).toBe('deferred');
    await admitting.shutdown();
    const feed = createChannel({ history: { maxEvents: 2 } });
    for (let n = 1; n <= 4; n++) await feed.publish({ data: String(n) });
    const resumed = createSseStreamFromSink(createMemorySink({ lastEventId: '3' }), { keepAliveMs: 0 });
    const reset = createSseStreamFromSink(createMemorySink({ lastEventId: '1' }), { keepAliveMs: 0 });
    feed.subscribe(resumed);
    feed.subscribe(reset);
    await delay(20);
    await feed.close();
    reportBackplaneEvent('error', 'test', new Error('x'));
    reportBackplaneEvent('reconnect', 'test');
    return { pathReads };
  }

  test('nothing is published, and nothing is built for it', async () => {
    for (const name of NAMES) expect(diagnostics_channel.hasSubscribers(name)).toBe(false);
    const publishes = spies();
    const { pathReads } = await everything();
    expect(publishes.map((spy) => spy.mock.calls.length)).toEqual(NAMES.map(() => 0));
    expect(pathReads).toBe(0);
  });

  test('the same run with a listener publishes on every channel: the check above can fail', async () => {
    listening = listen();
    const publishes = spies();
    const { pathReads } = await everything();
    expect(Object.fromEntries(NAMES.map((name, i) => [name, publishes[i]!.mock.calls.length > 0]))).toEqual(
      Object.fromEntries(NAMES.map((name) => [name, true])),
    );
    expect(pathReads).toBe(2); // the overflowing stream's open, the deferral
  });
});
