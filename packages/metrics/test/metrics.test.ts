/**
 * createSseMetrics on in-memory streams: the counted sums never go down, which streams count,
 * the attributes option, a gap replay, a sink that counts no bytes, the meter it records with,
 * close(), and a run without any SDK, on the API's no-op meter.
 */
import { Buffer } from 'node:buffer';
import diagnostics_channel from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { diag, DiagLogLevel, type Attributes } from '@opentelemetry/api';
import { createChannel, createStreamGroup, SSE_DIAGNOSTICS, type SseStreamOptions } from '@ssekit/core';
import { createSseStreamFromSink, reportBackplaneEvent } from '@ssekit/core/adapter';
import { createGappingBackplane, createMemorySink, eventually, untilDone } from '@ssekit/test-kit';
import { createSseMetrics, defaultStreamAttributes, SSE_METRIC_ATTRIBUTES, SSE_METRICS, type SseMetrics } from '@ssekit/metrics';
import { VERSION } from '../src/version.js';
import { createTestMeter, type SumPoint, type TestMeter } from './meter.js';

/** A memory sink that counts the bytes written to it, as the Node and Fetch sinks do. */
function countingSink(options: Parameters<typeof createMemorySink>[0] = {}) {
  const sink = createMemorySink(options);
  return Object.defineProperty(sink, 'bytesWritten', { get: () => Buffer.byteLength(sink.chunks.join('')) });
}

const streamOn = (sink = countingSink(), options: SseStreamOptions = {}, request?: unknown) =>
  createSseStreamFromSink(sink, { keepAliveMs: 0, ...options }, request);

const sorted = (attributes: Attributes) => JSON.stringify(Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b)));
/** The value of the point of `name` with exactly these attributes, in any order. */
const valueOf = (snapshot: Awaited<ReturnType<TestMeter['read']>>, name: string, attributes: Attributes = {}) =>
  (snapshot[name]?.points as SumPoint[] | undefined)?.find((point) => sorted(point.attributes) === sorted(attributes))?.value;

/** Resolves once a channel has published `replays` replays and `resets` resets. */
function channelWork(replays: number, resets: number): Promise<void> {
  const seen = { replays: 0, resets: 0 };
  const onReplay = () => seen.replays++;
  const onReset = () => seen.resets++;
  diagnostics_channel.subscribe(SSE_DIAGNOSTICS.channelReplay, onReplay);
  diagnostics_channel.subscribe(SSE_DIAGNOSTICS.channelReset, onReset);
  return eventually(() => seen.replays === replays && seen.resets === resets, 2000, 'the replays and resets').finally(() => {
    diagnostics_channel.unsubscribe(SSE_DIAGNOSTICS.channelReplay, onReplay);
    diagnostics_channel.unsubscribe(SSE_DIAGNOSTICS.channelReset, onReset);
  });
}

let meter: TestMeter;
let recorders: SseMetrics[] = [];
const record = (options: Parameters<typeof createSseMetrics>[0] = {}) => {
  const recorder = createSseMetrics({ meterProvider: meter.meterProvider, ...options });
  recorders.push(recorder);
  return recorder;
};
/** Channels that another suite in this process still listens to: not this file's to check. */
let listenedBefore: string[] = [];
beforeEach(() => {
  meter = createTestMeter();
  listenedBefore = Object.values(SSE_DIAGNOSTICS).filter((name) => diagnostics_channel.hasSubscribers(name));
});
afterEach(async () => {
  for (const recorder of recorders) recorder.close();
  recorders = [];
  await meter.shutdown();
  for (const name of Object.values(SSE_DIAGNOSTICS)) expect(diagnostics_channel.hasSubscribers(name)).toBe(listenedBefore.includes(name));
});

test('the metric names follow OpenTelemetry: dotted, under ssekit., no unit in the name; the meter has the package version', () => {
  for (const name of Object.values(SSE_METRICS)) expect(name).toMatch(/^ssekit(\.[a-z]+)+$/);
  expect(Object.isFrozen(SSE_METRICS)).toBe(true);
  expect(Object.values(SSE_METRIC_ATTRIBUTES)).toEqual([
    'http.route',
    'ssekit.close.reason',
    'ssekit.replay.cause',
    'ssekit.defer.cause',
    'http.response.status_code',
    'ssekit.backplane',
  ]);
  const manifest = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  expect(VERSION).toBe(manifest.version);
});

test('events and bytes sent never go down while streams send, and move from open to closed, between collections', async () => {
  record();
  const streams = Array.from({ length: 12 }, () => streamOn());
  for (const stream of streams) stream.open();
  let events = 0;
  let bytes = 0;
  for (let round = 0; round < 12; round++) {
    for (const [index, stream] of streams.entries()) if ((index + round) % 3 !== 0) void stream.send({ data: 'x'.repeat(index + round) });
    streams[round]!.close(); // one more closes each round: its counts move to the closed totals
    const snapshot = await meter.read();
    const nowEvents = valueOf(snapshot, SSE_METRICS.eventsSent)!;
    const nowBytes = valueOf(snapshot, SSE_METRICS.bytesSent)!;
    expect(nowEvents).toBe(streams.reduce((sum, stream) => sum + stream.eventsSent, 0));
    expect(nowBytes).toBe(streams.reduce((sum, stream) => sum + stream.bytesSent!, 0));
    expect(nowEvents).toBeGreaterThanOrEqual(events);
    expect(nowBytes).toBeGreaterThan(bytes);
    expect(valueOf(snapshot, SSE_METRICS.streamsOpen)).toBe(12 - round - 1);
    events = nowEvents;
    bytes = nowBytes;
  }
});

test('streams that opened before the recording began are not counted, and their close leaves the open count alone', async () => {
  const before = streamOn();
  void before.send('early');
  record();
  const during = streamOn();
  void during.send('counted');
  before.close();
  during.close();
  const snapshot = await meter.read();
  expect(valueOf(snapshot, SSE_METRICS.streamsOpen)).toBe(0);
  expect(valueOf(snapshot, SSE_METRICS.streamsClosed, { 'ssekit.close.reason': 'server' })).toBe(1);
  expect(valueOf(snapshot, SSE_METRICS.eventsSent)).toBe(1);
});

test('the attributes option: computed once at the open, on every metric of the stream; the order of keys and empty values make no new series', async () => {
  let calls = 0;
  record({
    attributes: ({ request }) => {
      calls++;
      const { tenant } = request as { tenant: string };
      return calls % 2 ? { tenant, 'app.tier': 'free' } : { 'app.tier': 'free', tenant, absent: undefined };
    },
  });
  const feed = createChannel({ history: { maxEvents: 3 } });
  const ids: string[] = [];
  for (let n = 1; n <= 5; n++) ids.push(await feed.publish({ data: String(n) }));
  const tenant = { tenant: 'acme' };
  const written = channelWork(1, 1);
  feed.subscribe(streamOn(countingSink({ lastEventId: ids[2] }), {}, tenant)); // 3 to 5 are kept: replays 4 and 5
  feed.subscribe(streamOn(countingSink({ lastEventId: ids[0] }), {}, tenant)); // 1 is gone: a reset
  const slowSink = countingSink({ highWaterMark: 256 });
  const slow = streamOn(slowSink, { maxBufferedBytes: 512 }, tenant);
  slowSink.stall();
  for (let i = 0; i < 10 && !slow.closed; i++) void slow.send('x'.repeat(200));
  expect(slow.closeReason).toBe('overflow');
  await written;
  await feed.close();

  const attributes = { tenant: 'acme', 'app.tier': 'free' };
  const snapshot = await meter.read();
  expect(calls).toBe(3);
  for (const [name, metric] of Object.entries(snapshot)) {
    for (const point of metric.points) expect([name, point.attributes]).toEqual([name, expect.objectContaining(attributes)]);
  }
  expect(valueOf(snapshot, SSE_METRICS.streamsOpen, attributes)).toBe(0);
  expect(snapshot[SSE_METRICS.streamsOpen]!.points).toHaveLength(1);
  expect(valueOf(snapshot, SSE_METRICS.streamsClosed, { ...attributes, 'ssekit.close.reason': 'server' })).toBe(2);
  expect(valueOf(snapshot, SSE_METRICS.streamsClosed, { ...attributes, 'ssekit.close.reason': 'overflow' })).toBe(1);
  expect(valueOf(snapshot, SSE_METRICS.streamsOverflows, attributes)).toBe(1);
  expect(valueOf(snapshot, SSE_METRICS.replays, { ...attributes, 'ssekit.replay.cause': 'resume' })).toBe(1);
  expect(valueOf(snapshot, SSE_METRICS.replayEvents, { ...attributes, 'ssekit.replay.cause': 'resume' })).toBe(2);
  expect(valueOf(snapshot, SSE_METRICS.resets, attributes)).toBe(1);
});

test('an attributes option that throws: the stream gets the default attributes, diag hears why, and nothing throws into ssekit', async () => {
  const errors: unknown[][] = [];
  diag.setLogger({ error: (...args) => void errors.push(args), warn() {}, info() {}, debug() {}, verbose() {} }, DiagLogLevel.ERROR);
  try {
    const failure = new Error('no tenant');
    record({
      attributes: () => {
        throw failure;
      },
    });
    const stream = streamOn(countingSink(), {}, { route: { path: '/rooms/:room' }, baseUrl: '' });
    expect(() => stream.open()).not.toThrow();
    stream.close();
    const snapshot = await meter.read();
    expect(valueOf(snapshot, SSE_METRICS.streamsClosed, { 'http.route': '/rooms/:room', 'ssekit.close.reason': 'server' })).toBe(1);
    expect(errors).toEqual([[expect.stringContaining('attributes option threw'), failure]]);
  } finally {
    diag.disable();
  }
});

test('a gap in live delivery is a replay with cause gap', async () => {
  record();
  const gapping = createGappingBackplane();
  const feed = createChannel({ backplane: gapping.backplane });
  const sink = countingSink();
  feed.subscribe(streamOn(sink));
  gapping.deliver(1);
  gapping.append(2);
  gapping.append(3); // never delivered live
  gapping.gap();
  gapping.deliver(4);
  await eventually(() => sink.events.length === 4, 1000, 'the events after the gap');
  const snapshot = await meter.read();
  expect(valueOf(snapshot, SSE_METRICS.replays, { 'ssekit.replay.cause': 'gap' })).toBe(1);
  expect(valueOf(snapshot, SSE_METRICS.replayEvents, { 'ssekit.replay.cause': 'gap' })).toBe(3);
  expect(snapshot[SSE_METRICS.replayDuration]!.points).toEqual([
    expect.objectContaining({ attributes: { 'ssekit.replay.cause': 'gap' }, count: 1 }),
  ]);
  await feed.close();
});

test('deferrals by admission: counted by cause and status with the request attributes; a deferred stream is no open stream', async () => {
  record({ attributes: (open) => ({ 'app.path': open.path ?? 'none' }) });
  const withPath = () => Object.defineProperty(countingSink({ lastEventId: first }), 'path', { value: '/feed' });
  const feed = createChannel();
  const first = await feed.publish({ data: '1' });
  const opens = createStreamGroup({ admission: { opensPerSecond: 1, jitterMs: 0 } });
  streamOn(withPath(), { group: opens }).open();
  streamOn(withPath(), { group: opens }).open(); // past opensPerSecond: a 200 deferral
  const unavailable = createStreamGroup({ admission: { opensPerSecond: 1, status: 503 } });
  streamOn(withPath(), { group: unavailable }).open();
  streamOn(withPath(), { group: unavailable }).open(); // a 503 deferral
  const replays = createStreamGroup({ admission: { concurrentReplays: 1, maxQueuedReplays: 1 } });
  for (let i = 0; i < 3; i++) feed.subscribe(streamOn(withPath(), { group: replays })); // the third is deferred
  const snapshot = await meter.read();
  expect(snapshot[SSE_METRICS.streamsDeferred]).toEqual({
    unit: '{stream}',
    points: [
      { attributes: { 'app.path': '/feed', 'ssekit.defer.cause': 'opens', 'http.response.status_code': 200 }, value: 1 },
      { attributes: { 'app.path': '/feed', 'ssekit.defer.cause': 'replays', 'http.response.status_code': 200 }, value: 1 },
      { attributes: { 'app.path': '/feed', 'ssekit.defer.cause': 'opens', 'http.response.status_code': 503 }, value: 1 },
    ],
  });
  // Two streams per group got in; the deferred ones never counted as open or closed.
  await untilDone(
    async () => valueOf(await meter.read(), SSE_METRICS.streamsOpen, { 'app.path': '/feed' }) === 4,
    async () => valueOf(await meter.read(), SSE_METRICS.streamsOpen, { 'app.path': '/feed' }),
    { what: 'the opens' },
  );
  expect((await meter.read())[SSE_METRICS.streamsClosed]).toBeUndefined();
  await feed.close();
  for (const group of [opens, unavailable, replays]) await group.shutdown();
});

test('streams on a sink that counts no bytes record no ssekit.bytes.sent, rather than a false 0', async () => {
  record();
  const stream = streamOn(createMemorySink());
  void stream.send('x');
  const snapshot = await meter.read();
  expect(valueOf(snapshot, SSE_METRICS.eventsSent)).toBe(1);
  expect(snapshot[SSE_METRICS.bytesSent]).toBeUndefined();
  stream.close();
});

test('the meter: @ssekit/metrics at its version from the provider, or the one given, as is', async () => {
  record();
  const own = meter.meterProvider.getMeter('my-app', '2.0.0');
  record({ meter: own });
  const stream = streamOn();
  stream.open();
  stream.close();
  const scopes = await meter.scopes();
  expect(scopes).toEqual([
    { name: '@ssekit/metrics', version: VERSION },
    { name: 'my-app', version: '2.0.0' },
  ]);
});

test('close() stops recording, once; two recorders count independently', async () => {
  const first = record();
  const second = record();
  streamOn().open();
  first.close();
  first.close();
  streamOn().open();
  reportBackplaneEvent('error', 'redis', new Error('down'));
  second.close();
  streamOn().open();
  const snapshot = await meter.read();
  // Both record into the same provider here: the first counted one stream, the second two.
  expect(valueOf(snapshot, SSE_METRICS.streamsOpen)).toBe(3);
  expect(valueOf(snapshot, SSE_METRICS.backplaneErrors, { 'ssekit.backplane': 'redis' })).toBe(1);
});

test('without an SDK, on the API no-op meter, a whole run records nothing and breaks nothing', async () => {
  const recorder = createSseMetrics();
  recorders.push(recorder);
  const feed = createChannel({ history: { maxEvents: 3 } });
  const ids: string[] = [];
  for (let n = 1; n <= 5; n++) ids.push(await feed.publish({ data: String(n) }));
  const resumed = streamOn(countingSink({ lastEventId: ids[2] }));
  const reset = streamOn(countingSink({ lastEventId: ids[0] }));
  const written = channelWork(1, 1);
  feed.subscribe(resumed);
  feed.subscribe(reset);
  const slowSink = countingSink({ highWaterMark: 256 });
  const slow = streamOn(slowSink, { maxBufferedBytes: 512 });
  slowSink.stall();
  for (let i = 0; i < 10 && !slow.closed; i++) void slow.send('x'.repeat(200));
  expect(slow.closeReason).toBe('overflow');
  reportBackplaneEvent('error', 'redis', new Error('down'));
  reportBackplaneEvent('reconnect', 'redis');
  await written;
  resumed.close();
  await feed.close();
  recorder.close();
  expect(defaultStreamAttributes({ stream: slow, request: undefined, path: '/events', group: undefined })).toEqual({});
});

test('on a Node without process.getBuiltinModule, where core cannot publish, it warns once that the metrics stay at zero', () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
  const descriptor = Object.getOwnPropertyDescriptor(process, 'getBuiltinModule');
  Object.defineProperty(process, 'getBuiltinModule', { value: undefined, configurable: true, writable: true });
  try {
    record();
    record();
    expect(warn.mock.calls).toEqual([
      [expect.stringContaining('every ssekit metric stays at zero'), { code: 'SSEKIT_METRICS_NO_DIAGNOSTICS' }],
    ]);
  } finally {
    if (descriptor) Object.defineProperty(process, 'getBuiltinModule', descriptor);
    warn.mockRestore();
  }
});
