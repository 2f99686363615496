/**
 * Channels in memory: real streams over in-memory sinks, so ordering, replay and backpressure
 * are exact and fast. The same guarantees are checked over real sockets in test/channel.test.ts.
 */
import {
  createChannel,
  createMemoryBackplane,
  SseError,
  type Backplane,
  type BackplaneEntry,
  type BackplaneListener,
  type BackplaneSubscription,
  type SseStream,
} from '@ssekit/core';
import { createSseStreamFromSink } from '@ssekit/core/adapter';
import { createMemorySink, eventually, type MemorySink } from '@ssekit/test-kit';

function connect(options: { lastEventId?: string; maxBufferedBytes?: number } = {}): { sink: MemorySink; stream: SseStream } {
  const sink = createMemorySink({ lastEventId: options.lastEventId });
  const stream = createSseStreamFromSink(sink, { keepAliveMs: 0, maxBufferedBytes: options.maxBufferedBytes });
  return { sink, stream };
}

const ids = (sink: MemorySink) => sink.events.map((event) => event.id);
const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A backplane whose deliveries and replays arrive late, as over a network: the hard case for resume. */
function laggingBackplane(lagMs: () => number): Backplane {
  const inner = createMemoryBackplane();
  return {
    publish: (channel, entry) => inner.publish(channel, entry),
    subscribe: async (channel, listener) => {
      let last = Promise.resolve();
      // Each delivery waits its lag but keeps log order, as one reader per process does.
      const subscription = inner.subscribe(channel, {
        entry(entry) {
          const lag = lagMs();
          last = last.then(() => new Promise<void>((resolve) => setTimeout(() => (listener.entry(entry), resolve()), lag)));
        },
        gap: () => listener.gap(),
      }) as BackplaneSubscription;
      await new Promise((resolve) => setTimeout(resolve, lagMs()));
      return subscription;
    },
    replay: async (channel, afterId, limit) => {
      await new Promise((resolve) => setTimeout(resolve, lagMs()));
      return inner.replay(channel, afterId, limit);
    },
    close: () => inner.close(),
  };
}

describe('createChannel', () => {
  test('a stream subscribes once: a second subscribe throws, and unsubscribing or closing frees it', async () => {
    const channel = createChannel();
    const { sink, stream } = connect();
    const unsubscribe = channel.subscribe(stream);
    expect(() => channel.subscribe(stream)).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }));
    await channel.publish({ data: 'once' });
    expect(sink.events.filter((event) => event.data === 'once')).toHaveLength(1);
    unsubscribe();
    expect(channel.size).toBe(0);
    channel.subscribe(stream); // allowed again after unsubscribing
    expect(channel.size).toBe(1);
    const closedWith: unknown[] = [];
    stream.onClose((reason, closed) => closedWith.push(reason, closed));
    stream.close();
    expect(channel.size).toBe(0);
    expect(closedWith).toEqual(['server', stream]);
    await channel.close();
  });

  test('serializes each publish once and writes the same text to every subscriber', async () => {
    const serialize = jest.fn(JSON.stringify);
    const channel = createChannel({ serialize });
    const clients = [connect(), connect(), connect()];
    for (const { stream } of clients) channel.subscribe(stream);
    expect(channel.size).toBe(3);
    await channel.publish({ event: 'price', data: { symbol: 'ACME', value: 42 } });
    expect(serialize).toHaveBeenCalledTimes(1);
    for (const { sink } of clients) {
      expect(sink.headers?.['content-type']).toBe('text/event-stream; charset=utf-8');
      // First the id-only block that marks where a new client stands, then the event.
      expect(sink.chunks).toEqual(['id: 0\n\n', 'event: price\nid: 1\ndata: {"symbol":"ACME","value":42}\n\n']);
    }
  });

  test('a new client is marked with the current id, so a drop before its first event loses nothing', async () => {
    const channel = createChannel();
    const early = connect();
    channel.subscribe(early.stream); // nothing published yet: marked with the origin
    await channel.publish({ data: 'a' });
    await channel.publish({ data: 'b' });
    const late = connect();
    channel.subscribe(late.stream);
    expect(late.sink.chunks).toEqual(['id: 2\n\n']);
    expect(late.sink.events).toEqual([]); // an id-only block dispatches nothing
    // The early client dropped before it read anything: it comes back with the origin id.
    const again = connect({ lastEventId: early.sink.chunks[0]!.slice('id: '.length, -2) });
    channel.subscribe(again.stream);
    await eventually(() => again.sink.events.length === 2);
    expect(ids(again.sink)).toEqual(['1', '2']);
  });

  test('assigns monotonic ids, keeps ids given to it, and rejects a repeated one', async () => {
    const channel = createChannel();
    await expect(channel.publish({ data: 'a' })).resolves.toBe('1');
    await expect(channel.publish({ data: 'b', id: 'order-7' })).resolves.toBe('order-7');
    await expect(channel.publish({ data: 'c' })).resolves.toBe('3');
    await expect(channel.publish({ data: 'd', id: 'order-7' })).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_FIELD' });
  });

  test.each([
    ['an event name with a line break', { event: 'a\nb', data: 'x' }, 'ERR_SSE_INVALID_FIELD'],
    ['an id with a line break', { id: '1\n2', data: 'x' }, 'ERR_SSE_INVALID_FIELD'],
    ['data the serializer cannot take', { data: { big: 1n } }, 'ERR_SSE_INVALID_DATA'],
  ])('publishing %s throws synchronously and reaches no one', async (_name, message, code) => {
    const channel = createChannel();
    const { sink, stream } = connect();
    channel.subscribe(stream);
    expect(() => channel.publish(message as never)).toThrow(expect.objectContaining({ code }));
    await channel.publish({ data: 'fine' });
    expect(ids(sink)).toEqual(['1']);
  });

  test('resumes after Last-Event-ID: replays what was missed, then goes live, no gap and no repeat', async () => {
    const channel = createChannel();
    for (let n = 1; n <= 5; n++) await channel.publish({ data: `n${n}` });
    const { sink, stream } = connect({ lastEventId: '2' });
    channel.subscribe(stream);
    await channel.publish({ data: 'n6' }); // published while the replay is under way
    await eventually(() => sink.events.length === 4);
    await channel.publish({ data: 'n7' });
    expect(ids(sink)).toEqual(['3', '4', '5', '6', '7']);
  });

  test('a replay that meets a full socket waits for drain, while live events queue behind it', async () => {
    const channel = createChannel();
    for (let n = 1; n <= 50; n++) await channel.publish({ data: 'x'.repeat(1000) });
    const sink = createMemorySink({ lastEventId: '10', highWaterMark: 4096 });
    const stream = createSseStreamFromSink(sink, { keepAliveMs: 0 });
    sink.stall();
    channel.subscribe(stream);
    await flush();
    const writtenWhileStalled = sink.chunks.length;
    expect(writtenWhileStalled).toBeLessThan(40);
    for (let n = 51; n <= 55; n++) await channel.publish({ data: 'live' });
    for (let i = 0; i < 20 && sink.events.length < 45; i++) {
      sink.drain();
      await flush();
    }
    expect(ids(sink)).toEqual(Array.from({ length: 45 }, (_, i) => String(i + 11)));
  });

  test('an unknown Last-Event-ID gets the reset event, with the newest id, then live events', async () => {
    const channel = createChannel();
    for (let n = 1; n <= 3; n++) await channel.publish({ data: `n${n}` });
    const { sink, stream } = connect({ lastEventId: 'someone-elses-id' });
    channel.subscribe(stream);
    await eventually(() => sink.events.length === 1);
    await channel.publish({ data: 'n4' });
    expect(sink.events).toEqual([
      { event: 'reset', id: '3', data: '{"lastEventId":"someone-elses-id"}' },
      { event: undefined, id: '4', data: 'n4' },
    ]);
  });

  test('a client further behind than maxReplayEvents gets the reset event instead of a long replay', async () => {
    const channel = createChannel({ maxReplayEvents: 5, resetEvent: 'resync' });
    for (let n = 1; n <= 20; n++) await channel.publish({ data: `n${n}` });
    const { sink, stream } = connect({ lastEventId: '10' });
    channel.subscribe(stream);
    await eventually(() => sink.events.length === 1);
    expect(sink.events[0]).toMatchObject({ event: 'resync', id: '20' });
  });

  test('an id that fell out of a bounded history gets the reset event', async () => {
    const channel = createChannel({ history: { maxEvents: 3 } });
    for (let n = 1; n <= 6; n++) await channel.publish({ data: `n${n}` });
    const { sink, stream } = connect({ lastEventId: '2' });
    channel.subscribe(stream);
    await eventually(() => sink.events.length === 1);
    expect(sink.events[0]).toMatchObject({ event: 'reset', id: '6' });
  });

  test('a filter holds for replay too: another user\u2019s Last-Event-ID reaches none of their events', async () => {
    type Events = { note: { user: string; text: string } };
    const channel = createChannel<Events>();
    const mine = (user: string) => (event: { data: { user: string } }) => event.data.user === user;
    await channel.publish({ event: 'note', data: { user: 'alice', text: 'a1' } }); // 1
    await channel.publish({ event: 'note', data: { user: 'bob', text: 'b1' } }); // 2
    await channel.publish({ event: 'note', data: { user: 'alice', text: 'a2' } }); // 3
    await channel.publish({ event: 'note', data: { user: 'bob', text: 'b2' } }); // 4
    // Bob replays from alice's first event id.
    const { sink, stream } = connect({ lastEventId: '1' });
    channel.subscribe(stream, { filter: mine('bob') });
    await channel.publish({ event: 'note', data: { user: 'alice', text: 'a3' } }); // 5
    await channel.publish({ event: 'note', data: { user: 'bob', text: 'b3' } }); // 6
    await eventually(() => sink.events.length === 3);
    expect(sink.events.map((event) => JSON.parse(event.data).text)).toEqual(['b1', 'b2', 'b3']);
    expect(sink.chunks.join('')).not.toContain('alice');
  });

  test('a filter that throws closes only its own stream and reports the error', async () => {
    const errors: unknown[] = [];
    const channel = createChannel({ onError: (error) => errors.push(error) });
    const good = connect();
    const bad = connect();
    channel.subscribe(good.stream);
    channel.subscribe(bad.stream, {
      filter: () => {
        throw new Error('filter bug');
      },
    });
    await channel.publish({ data: 'x' });
    expect(ids(good.sink)).toEqual(['1']);
    expect(bad.stream.closed).toBe(true);
    expect(errors).toHaveLength(1);
    expect(channel.size).toBe(1);
  });

  test('a slow subscriber is cut off at maxBufferedBytes without slowing the others, then resumes with nothing lost', async () => {
    const channel = createChannel();
    const fast = connect();
    const slow = connect({ maxBufferedBytes: 8 * 1024 });
    channel.subscribe(fast.stream);
    channel.subscribe(slow.stream);
    for (let n = 1; n <= 10; n++) await channel.publish({ data: 'y'.repeat(500) });
    slow.sink.stall();
    for (let n = 11; n <= 100; n++) await channel.publish({ data: 'y'.repeat(500) });
    expect(ids(slow.sink)).toHaveLength(10);
    expect(slow.stream.closeReason).toBe('overflow');
    expect(slow.sink.bufferedBytes).toBeLessThanOrEqual(8 * 1024 + 600);
    expect(ids(fast.sink)).toHaveLength(100);
    expect(channel.size).toBe(1);
    // The client saw only what reached it before the cut; it reconnects from its last id.
    const lastSeen = slow.sink.events.at(-1)!.id;
    const again = connect({ lastEventId: lastSeen });
    channel.subscribe(again.stream);
    await eventually(() => slow.sink.events.length + again.sink.events.length === 100);
    expect([...ids(slow.sink), ...ids(again.sink)]).toEqual(Array.from({ length: 100 }, (_, i) => String(i + 1)));
  });

  test('unsubscribes by itself when the stream closes, and on demand', async () => {
    const channel = createChannel();
    const a = connect();
    const b = connect();
    channel.subscribe(a.stream);
    const unsubscribe = channel.subscribe(b.stream);
    expect(channel.size).toBe(2);
    a.sink.leave();
    expect(channel.size).toBe(1);
    unsubscribe();
    expect(channel.size).toBe(0);
    await channel.publish({ data: 'after' });
    expect(b.sink.events).toEqual([]);
  });

  test('close() ends every subscribed stream; using the channel afterwards throws ERR_SSE_CLOSED', async () => {
    const channel = createChannel();
    const { stream } = connect();
    channel.subscribe(stream);
    await channel.close();
    expect(stream.closeReason).toBe('server');
    expect(() => channel.publish({ data: 'x' })).toThrow(SseError);
    expect(() => channel.subscribe(connect().stream)).toThrow(expect.objectContaining({ code: 'ERR_SSE_CLOSED' }));
    await channel.close();
  });

  test('over a lagging backplane, resumes at random moments still give every event exactly once, in order', async () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const channel = createChannel({ backplane: laggingBackplane(() => Math.floor(random() * 4)) });
    const total = 300;
    const clients = Array.from({ length: 8 }, () => ({
      seen: [] as string[],
      before: [] as string[],
      current: undefined as ReturnType<typeof connect> | undefined,
    }));
    // Each client keeps a running log: what earlier connections delivered, then the current one.
    const record = (client: (typeof clients)[number]) => {
      const current = ids(client.current!.sink).filter((id): id is string => id !== undefined);
      client.seen = [...client.before, ...current];
    };
    const reconnect = (client: (typeof clients)[number]) => {
      if (client.current) record(client);
      client.current?.sink.leave();
      client.before = client.seen;
      client.current = connect({ lastEventId: client.seen.at(-1) });
      channel.subscribe(client.current.stream);
    };
    for (const client of clients) reconnect(client);
    for (let n = 1; n <= total; n++) {
      await channel.publish({ data: `n${n}` });
      if (random() < 0.2) await new Promise((resolve) => setTimeout(resolve, 1));
      if (random() < 0.05) reconnect(clients[Math.floor(random() * clients.length)]!);
    }
    await eventually(() => clients.every((client) => (record(client), client.seen.length >= total)), 10_000, 'every client to catch up');
    const expected = Array.from({ length: total }, (_, i) => String(i + 1));
    for (const client of clients) expect(client.seen).toEqual(expected);
    await channel.close();
  });
});

/** A memory backplane whose live delivery can drop entries and then report the gap, as a reader that fell behind would. */
function droppingBackplane(options: Parameters<typeof createMemoryBackplane>[0] = {}) {
  const inner = createMemoryBackplane(options);
  let dropping = false;
  let gapPending = false;
  const backplane: Backplane = {
    originId: inner.originId,
    publish: (channel, entry) => inner.publish(channel, entry),
    subscribe(channel, listener: BackplaneListener) {
      return inner.subscribe(channel, {
        entry(entry) {
          if (dropping) return void (gapPending = true);
          if (gapPending) listener.gap();
          gapPending = false;
          listener.entry(entry);
        },
        gap: () => listener.gap(),
      });
    },
    replay: (channel, afterId, limit) => inner.replay(channel, afterId, limit),
    close: () => inner.close(),
  };
  return {
    backplane,
    drop: (on: boolean) => void (dropping = on),
  };
}

describe('a gap in live delivery', () => {
  test('live subscribers replay what the backplane skipped, once, with no reset, while it is still in history', async () => {
    const { backplane, drop } = droppingBackplane();
    const channel = createChannel({ backplane });
    const clients = [connect(), connect()];
    for (const { stream } of clients) channel.subscribe(stream);
    await channel.publish({ data: 'a' });
    drop(true);
    await channel.publish({ data: 'b' });
    await channel.publish({ data: 'c' });
    drop(false);
    await channel.publish({ data: 'd' });
    for (const { sink } of clients) {
      await eventually(() => sink.events.length === 4);
      expect(sink.events.map((event) => [event.event, event.data])).toEqual([
        [undefined, 'a'],
        [undefined, 'b'],
        [undefined, 'c'],
        [undefined, 'd'],
      ]);
    }
  });

  test('what fell out of history gets the reset event, with the newest id, and delivery goes on', async () => {
    const { backplane, drop } = droppingBackplane({ history: { maxEvents: 2 } });
    const channel = createChannel({ backplane });
    const { sink, stream } = connect();
    channel.subscribe(stream);
    const a = await channel.publish({ data: 'a' });
    drop(true);
    for (const data of ['b', 'c', 'd']) await channel.publish({ data });
    drop(false);
    const e = await channel.publish({ data: 'e' });
    const f = await channel.publish({ data: 'f' });
    await eventually(() => sink.events.length === 3);
    // e arrived with the gap, and the reset that carries its id covers it.
    expect(sink.events.map((event) => [event.event, event.id, event.data])).toEqual([
      [undefined, a, 'a'],
      ['reset', e, JSON.stringify({ lastEventId: a })],
      [undefined, f, 'f'],
    ]);
  });

  test('a subscriber still catching up is closed, and its client resumes with its own Last-Event-ID', async () => {
    const { backplane, drop } = droppingBackplane();
    const channel = createChannel({ backplane });
    await channel.publish({ data: 'a' });
    const { sink, stream } = connect({ lastEventId: '0' });
    channel.subscribe(stream); // its replay has not run yet
    drop(true);
    await channel.publish({ data: 'b' });
    drop(false);
    await channel.publish({ data: 'c' });
    await eventually(() => sink.closedBy !== undefined);
    expect(stream.closed).toBe(true);
  });
});

describe('typing', () => {
  test('entries from other processes are decoded once for filters', async () => {
    const deserialize = jest.fn(JSON.parse);
    const inner = createMemoryBackplane();
    // Strip the published value, as an entry from another process arrives without it.
    const remote: Backplane = {
      ...inner,
      subscribe: (channel, listener) =>
        inner.subscribe(channel, {
          entry: ({ value: _value, ...entry }: BackplaneEntry) => listener.entry(entry),
          gap: () => listener.gap(),
        }),
    };
    const channel = createChannel<{ tick: { n: number } }>({ backplane: remote, deserialize });
    const filters = [jest.fn(() => true), jest.fn(() => true)];
    for (const filter of filters) channel.subscribe(connect().stream, { filter });
    await channel.publish({ event: 'tick', data: { n: 1 } });
    expect(deserialize).toHaveBeenCalledTimes(1);
    for (const filter of filters) expect(filter).toHaveBeenCalledWith({ id: '1', event: 'tick', data: { n: 1 } });
  });
});
