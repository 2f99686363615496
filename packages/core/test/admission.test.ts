/**
 * A group's admission, in memory: the token bucket for opens, the spread of deferred clients, and
 * the bounded queue of replay turns, exact and fast over real streams on memory sinks. The same
 * behaviour on real sockets, every adapter and real clients is in test/admission.test.ts.
 */
import {
  createChannel,
  createMemoryBackplane,
  createStreamGroup,
  type Backplane,
  type BackplaneReplay,
  type SseAdmission,
  type SseStream,
} from '@ssekit/core';
import { createSseStreamFromSink, resolveAdapterOptions } from '@ssekit/core/adapter';
import { createMemorySink, eventually, type MemorySink } from '@ssekit/test-kit';

function connect(group: ReturnType<typeof createStreamGroup>, lastEventId?: string): { sink: MemorySink; stream: SseStream } {
  const sink = createMemorySink({ lastEventId, highWaterMark: 1024 });
  return { sink, stream: createSseStreamFromSink(sink, { keepAliveMs: 0, group }) };
}

/** What a deferred answer told its client: the `retry:` of its body, and its Retry-After. */
function deferralOf(sink: MemorySink): { retryMs: number; retryAfter: string | undefined } {
  const body = sink.chunks.join('');
  const match = /^retry: (\d+)\n$/.exec(body);
  if (!match) throw new Error(`not a deferral: ${JSON.stringify(body)}`);
  return { retryMs: Number(match[1]), retryAfter: sink.headers?.['retry-after'] };
}

describe('opensPerSecond', () => {
  test('a burst of opensPerSecond opens; the next is deferred: a 200 event stream of only retry:, with Retry-After, that ends', () => {
    const group = createStreamGroup({ admission: { opensPerSecond: 3 } });
    const opened = [1, 2, 3].map(() => connect(group));
    for (const { stream } of opened) stream.open();
    expect(opened.map(({ stream }) => stream.opened)).toEqual([true, true, true]);

    const { sink, stream } = connect(group);
    stream.open();
    expect(stream.closeReason).toBe('deferred');
    expect(stream.opened).toBe(false);
    expect(sink.closedBy).toBe('server');
    expect(sink.headers?.['content-type']).toBe('text/event-stream; charset=utf-8');
    const { retryMs, retryAfter } = deferralOf(sink);
    // Defaults: at least 1000 ms, plus up to 1000 ms of jitter; Retry-After is it in whole seconds.
    expect(retryMs).toBeGreaterThanOrEqual(1000);
    expect(retryMs).toBeLessThanOrEqual(2000);
    expect(retryAfter).toBe(String(Math.ceil(retryMs / 1000)));
    expect(group.size).toBe(3);
  });

  // The bucket reads performance.now(), which Jest's fake timers drive: exact, however loaded the machine.
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('tokens come back at opensPerSecond', () => {
    const group = createStreamGroup({ admission: { opensPerSecond: 10 } });
    for (let i = 0; i < 10; i++) connect(group).stream.open();
    const early = connect(group).stream;
    early.open();
    expect(early.closeReason).toBe('deferred');
    jest.advanceTimersByTime(99);
    const tooEarly = connect(group).stream;
    tooEarly.open();
    expect(tooEarly.closeReason).toBe('deferred');
    jest.advanceTimersByTime(1); // a token every 100 ms
    const later = connect(group).stream;
    later.open();
    expect(later.opened).toBe(true);
    const tooSoon = connect(group).stream;
    tooSoon.open();
    expect(tooSoon.closeReason).toBe('deferred');
  });

  test('deferred clients are told to come back one token apart, so that they return at the rate the bucket lets in', () => {
    const group = createStreamGroup({ admission: { opensPerSecond: 10, retryMs: 0, jitterMs: 0 } });
    for (let i = 0; i < 10; i++) connect(group).stream.open();
    const waits = Array.from({ length: 20 }, () => {
      const { sink, stream } = connect(group);
      stream.open();
      return deferralOf(sink).retryMs;
    });
    // The i-th deferred client waits for the i clients before it: i × 100 ms.
    expect(waits).toEqual(waits.map((_, i) => i * 100));
    // 500 ms later the bucket has five tokens again, and the backlog is five shorter.
    jest.advanceTimersByTime(500);
    const admitted = Array.from({ length: 5 }, () => connect(group).stream);
    for (const stream of admitted) stream.open();
    expect(admitted.every((stream) => stream.opened)).toBe(true);
    const { sink, stream } = connect(group);
    stream.open();
    expect(deferralOf(sink).retryMs).toBe((20 - 5) * 100);
  });

  test('status 503 answers a deferral with 503, Retry-After and a JSON body, and no event stream', () => {
    const group = createStreamGroup({ admission: { opensPerSecond: 1, status: 503, retryMs: 2500, jitterMs: 0 } });
    connect(group).stream.open();
    const { sink, stream } = connect(group);
    stream.open();
    expect(stream.closeReason).toBe('deferred');
    expect(sink.headers).toBeUndefined();
    expect(sink.rejection).toEqual({
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ error: 'deferred', retryMs: 2500 }),
      headers: { 'retry-after': '3' },
    });
  });

  test('a deferral never costs another stream its place: evict-oldest evicts only for a stream that opens', () => {
    const group = createStreamGroup({ limit: { max: 1, onExceed: 'evict-oldest' }, admission: { opensPerSecond: 1 } });
    const first = connect(group).stream;
    first.open();
    const second = connect(group).stream;
    second.open();
    expect(second.closeReason).toBe('deferred');
    expect(first.closed).toBe(false);
    expect(group.size).toBe(1);
  });

  test('a limit that rejects answers 429 before the bucket is asked: no token is spent on it', () => {
    const group = createStreamGroup({ limit: { max: 1 }, admission: { opensPerSecond: 2 } });
    const first = connect(group).stream;
    first.open();
    const rejected = connect(group);
    rejected.stream.open();
    expect(rejected.sink.rejection?.status).toBe(429);
    first.close();
    // The bucket's second token is still there: had the 429 spent it, this would be deferred.
    const third = connect(group).stream;
    third.open();
    expect(third.opened).toBe(true);
  });

  test('streams that open while the group shuts down get its goodbye, not a deferral', async () => {
    const group = createStreamGroup({ admission: { opensPerSecond: 1 } });
    connect(group).stream.open();
    await group.shutdown({ retryMs: 700 });
    const { sink, stream } = connect(group);
    stream.open();
    expect(stream.closeReason).toBe('shutdown');
    expect(sink.chunks.join('')).toBe('retry: 700\n');
  });
});

/** A memory backplane whose replays wait until `release()`, counting how many ran at once. */
function gatedBackplane(): Backplane & { release(): void; running: number; most: number } {
  const inner = createMemoryBackplane();
  let open!: () => void;
  let gate = new Promise<void>((resolve) => (open = resolve));
  const backplane = {
    running: 0,
    most: 0,
    release() {
      open();
      gate = new Promise<void>((resolve) => (open = resolve));
    },
    publish: inner.publish.bind(inner),
    subscribe: inner.subscribe.bind(inner),
    async replay(channel: string, afterId: string, limit: number): Promise<BackplaneReplay> {
      backplane.most = Math.max(backplane.most, ++backplane.running);
      try {
        await gate;
        return await inner.replay(channel, afterId, limit);
      } finally {
        backplane.running--;
      }
    },
    close: inner.close.bind(inner),
  };
  return backplane;
}

describe('concurrentReplays', () => {
  async function setUp(admission: SseAdmission) {
    const backplane = gatedBackplane();
    const channel = createChannel({ backplane });
    const ids: string[] = [];
    for (let n = 1; n <= 5; n++) ids.push(await channel.publish({ data: String(n) }));
    return { backplane, channel, group: createStreamGroup({ admission }), first: ids[0]! };
  }
  const data = (sink: MemorySink) => sink.events.map((event) => event.data);

  test('replays past the cap wait in order, with no head sent yet; past the queue they are deferred', async () => {
    const { backplane, channel, group, first } = await setUp({ concurrentReplays: 1, maxQueuedReplays: 1 });
    const running = connect(group, first);
    const queued = connect(group, first);
    const deferred = connect(group, first);
    for (const { stream } of [running, queued, deferred]) channel.subscribe(stream);

    expect(running.sink.headersSent).toBe(true);
    // The queued one has no head yet: a full queue could still have answered it with a status.
    expect(queued.sink.headersSent).toBe(false);
    expect(deferred.stream.closeReason).toBe('deferred');
    const { retryMs, retryAfter } = deferralOf(deferred.sink);
    expect(retryAfter).toBe(String(Math.ceil(retryMs / 1000)));

    await eventually(() => backplane.running === 1, 1000);
    backplane.release();
    await eventually(() => data(running.sink).length === 4, 1000);
    await eventually(() => backplane.running === 1, 1000); // the queued one's replay, now
    expect(queued.sink.headersSent).toBe(true);
    backplane.release();
    await eventually(() => data(queued.sink).length === 4, 1000);
    expect(backplane.most).toBe(1);
    // Live events reach both, once, after their replay.
    await channel.publish({ data: '6' });
    expect(data(running.sink)).toEqual(['2', '3', '4', '5', '6']);
    expect(data(queued.sink)).toEqual(['2', '3', '4', '5', '6']);
    await channel.close();
  });

  test('a client that leaves while it waits gives up its place, and the turn passes on', async () => {
    const { backplane, channel, group, first } = await setUp({ concurrentReplays: 1, maxQueuedReplays: 2 });
    const running = connect(group, first);
    const leaving = connect(group, first);
    const next = connect(group, first);
    for (const { stream } of [running, leaving, next]) channel.subscribe(stream);
    leaving.sink.leave();
    expect(leaving.stream.closeReason).toBe('client');
    await eventually(() => backplane.running === 1, 1000);
    backplane.release();
    await eventually(() => backplane.running === 1 && next.sink.headersSent, 1000);
    backplane.release();
    await eventually(() => data(next.sink).length === 4, 1000);
    expect(leaving.sink.headersSent).toBe(false);
    expect(backplane.most).toBe(1);
    await channel.close();
  });

  test('a slow client gives its turn up when its socket fills, rather than hold it until it reads', async () => {
    const backplane = createMemoryBackplane();
    const channel = createChannel({ backplane });
    const first = await channel.publish({ data: 'x'.repeat(100) });
    for (let n = 0; n < 50; n++) await channel.publish({ data: 'x'.repeat(100) });
    const group = createStreamGroup({ admission: { concurrentReplays: 1 } });
    const slow = connect(group, first);
    slow.sink.stall(); // a 1 KiB socket that nobody reads
    channel.subscribe(slow.stream);
    const quick = connect(group, first);
    channel.subscribe(quick.stream);
    await eventually(() => data(quick.sink).length === 50, 1000);
    expect(slow.stream.closed).toBe(false);
    slow.sink.drain();
    await channel.close();
  });

  test('every turn is given back: after closing streams mid-replay, the whole cap is free again', async () => {
    const { backplane, channel, group, first } = await setUp({ concurrentReplays: 2 });
    const cut = [connect(group, first), connect(group, first), connect(group, first)];
    for (const { stream } of cut) channel.subscribe(stream);
    await eventually(() => backplane.running === 2, 1000);
    for (const { stream } of cut) stream.close();
    backplane.release();
    await eventually(() => backplane.running === 0, 1000);
    const after = [connect(group, first), connect(group, first)];
    for (const { stream } of after) channel.subscribe(stream);
    await eventually(() => backplane.running === 2, 1000);
    backplane.release();
    await eventually(() => after.every(({ sink }) => data(sink).length === 4), 1000);
    await channel.close();
  });

  test('new clients (no Last-Event-ID) replay nothing and never wait for a turn', async () => {
    const { backplane, channel, group, first } = await setUp({ concurrentReplays: 1, maxQueuedReplays: 1 });
    channel.subscribe(connect(group, first).stream);
    channel.subscribe(connect(group, first).stream);
    const fresh = connect(group);
    channel.subscribe(fresh.stream);
    expect(fresh.sink.headersSent).toBe(true);
    expect(fresh.stream.closed).toBe(false);
    backplane.release();
    backplane.release();
    await channel.close();
  });
});

describe('options', () => {
  test.each<[string, SseAdmission]>([
    ['opensPerSecond 0', { opensPerSecond: 0 }],
    ['opensPerSecond NaN', { opensPerSecond: Number.NaN }],
    ['concurrentReplays 1.5', { concurrentReplays: 1.5 }],
    ['maxQueuedReplays 0', { concurrentReplays: 1, maxQueuedReplays: 0 }],
    ['maxQueuedReplays alone', { maxQueuedReplays: 4 }],
    ['retryMs -1', { retryMs: -1 }],
    ['jitterMs 0.5', { jitterMs: 0.5 }],
    ['status 429', { status: 429 as 200 }],
  ])('%s throws ERR_SSE_INVALID_OPTION', (_name, admission) => {
    expect(() => createStreamGroup({ admission })).toThrow(expect.objectContaining({ name: 'SseError', code: 'ERR_SSE_INVALID_OPTION' }));
  });

  test('an adapter given its own group and admission throws: the group carries its own', () => {
    expect(() => resolveAdapterOptions({ group: createStreamGroup(), admission: { opensPerSecond: 5 } })).toThrow(
      expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION', message: expect.stringContaining('admission') }),
    );
  });
});
