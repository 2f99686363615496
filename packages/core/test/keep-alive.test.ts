/**
 * The keep-alive wheel: every stream of a process that shares a `keepAliveMs` is kept alive by
 * one timer, and each still gets its heartbeat between `keepAliveMs` and 1.2 × `keepAliveMs`
 * after its last write, never sooner. Under Jest's fake clock, so that the bounds are exact.
 *
 * Each test takes a `keepAliveMs` of its own: the wheels live as long as the process, one per
 * period, and a wheel whose timer was made on the real clock would not tick on the fake one.
 */
import { createSseStreamFromSink } from '@ssekit/core/adapter';
import { createMemorySink } from '@ssekit/test-kit';

let nextKeepAliveMs = 1000; // apart from the periods of the first test
const uniqueKeepAliveMs = () => (nextKeepAliveMs += 7);
/** The longest idle gap the wheel allows: six ticks of a fifth of keepAliveMs, rounded up to whole ms. */
const maxGapMs = (keepAliveMs: number) => 6 * Math.ceil(keepAliveMs / 5);

beforeEach(() => jest.useFakeTimers());
afterEach(() => {
  jest.clearAllTimers();
  jest.useRealTimers();
});

/** A stream on a memory sink that notes when each heartbeat arrived. */
function open(keepAliveMs: number) {
  const sink = createMemorySink();
  const heartbeats: number[] = [];
  const write = sink.write.bind(sink);
  sink.write = (chunk: string) => {
    if (chunk === ': ping\n') heartbeats.push(Date.now());
    return write(chunk);
  };
  const stream = createSseStreamFromSink(sink, { keepAliveMs });
  stream.open();
  return { sink, stream, heartbeats };
}

// The gap's bound is 1.2 × keepAliveMs, plus at most 6 ms of rounding (which matter only for tiny periods).
test.each([15_000, 40, 7, 1])(
  'keepAliveMs %d: every heartbeat comes between keepAliveMs and 1.2 × keepAliveMs after the last write',
  (keepAliveMs) => {
    const start = Date.now();
    const streams = Array.from({ length: 20 }, () => open(keepAliveMs));
    // Writes at scattered times, so that the streams sit in every bucket of the wheel.
    const lastWrites = streams.map(() => [start]);
    let random = 12345;
    const next = () => (random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const end = start + keepAliveMs * 12;
    while (Date.now() < end) {
      const step = Math.max(1, Math.floor(next() * keepAliveMs * 0.4));
      jest.advanceTimersByTime(step);
      const i = Math.floor(next() * streams.length);
      if (next() < 0.3) {
        void streams[i]!.stream.send({ data: 'x' });
        lastWrites[i]!.push(Date.now());
      }
    }
    let heartbeatsSeen = 0;
    streams.forEach(({ heartbeats }, i) => {
      // Each heartbeat is a write too: the next one counts from it.
      const writes = [...lastWrites[i]!, ...heartbeats].sort((a, b) => a - b);
      for (const at of heartbeats) {
        const before = writes.filter((time) => time < at).at(-1)!;
        expect(at - before).toBeGreaterThanOrEqual(keepAliveMs);
        expect(at - before).toBeLessThanOrEqual(maxGapMs(keepAliveMs));
      }
      heartbeatsSeen += heartbeats.length;
      // And no idle gap ever went past the bound without one.
      for (let k = 1; k < writes.length; k++) expect(writes[k]! - writes[k - 1]!).toBeLessThanOrEqual(maxGapMs(keepAliveMs));
      expect(end - writes.at(-1)!).toBeLessThanOrEqual(maxGapMs(keepAliveMs));
    });
    expect(maxGapMs(keepAliveMs)).toBeLessThanOrEqual(Math.max(keepAliveMs * 1.2 + 6, keepAliveMs * 1.25));
    expect(heartbeatsSeen).toBeGreaterThan(20);
    for (const { stream } of streams) stream.close();
  },
);

test('a thousand streams with one keepAliveMs share one timer, and their heartbeats of one tick go out in one pass', () => {
  const keepAliveMs = uniqueKeepAliveMs();
  const streams = Array.from({ length: 1000 }, () => open(keepAliveMs));
  expect(jest.getTimerCount()).toBe(1);
  // Opened together, they are due together: one tick sends all 1000 heartbeats.
  jest.advanceTimersByTime(maxGapMs(keepAliveMs));
  const times = new Set(streams.flatMap(({ heartbeats }) => heartbeats));
  expect(streams.every(({ heartbeats }) => heartbeats.length === 1)).toBe(true);
  expect(times.size).toBe(1);
  for (const { stream } of streams) stream.close();
});

test('a round larger than one pass yields the event loop between passes of 1000 heartbeats, and every stream still gets its heartbeat in time', () => {
  const keepAliveMs = uniqueKeepAliveMs();
  const streams = Array.from({ length: 2500 }, () => open(keepAliveMs));
  const yields = jest.spyOn(global, 'setTimeout');
  let between: number[] = [];
  const counts = () => streams.reduce((n, { heartbeats }) => n + heartbeats.length, 0);
  // Runs when the event loop gets a turn, as an accept or a request would.
  const probe = () => {
    between.push(counts());
    if (between.length < 5) setTimeout(probe, 0);
  };
  jest.advanceTimersByTime(maxGapMs(keepAliveMs) - 1);
  expect(counts()).toBe(0);
  setTimeout(probe, 0);
  between = [];
  // Each later pass comes a turn later: a millisecond on Jest's clock, as on Node's.
  jest.advanceTimersByTime(1);
  expect(counts()).toBe(1000);
  jest.advanceTimersByTime(5);
  expect(yields.mock.calls.filter((call) => call[1] === 0 && call[0] !== probe)).toHaveLength(2);
  expect(counts()).toBe(2500);
  expect(streams.every(({ heartbeats }) => heartbeats.length === 1)).toBe(true);
  // Someone else ran after the first pass of 1000 and before the last of 500.
  expect(between.some((n) => n === 1000 || n === 2000)).toBe(true);
  yields.mockRestore();
  for (const { stream } of streams) stream.close();
});

test('a stream that closes leaves the wheel: no heartbeat after, and the timer stops once the last one has gone', () => {
  const keepAliveMs = uniqueKeepAliveMs();
  const a = open(keepAliveMs);
  const b = open(keepAliveMs);
  a.stream.close();
  jest.advanceTimersByTime(maxGapMs(keepAliveMs));
  expect(a.heartbeats).toEqual([]);
  expect(b.heartbeats).toHaveLength(1);
  expect(a.sink.chunks.join('')).toBe('');
  b.stream.close();
  jest.advanceTimersByTime(keepAliveMs);
  expect(jest.getTimerCount()).toBe(0);
  expect(b.heartbeats).toHaveLength(1);
  // A later stream starts it again.
  const c = open(keepAliveMs);
  expect(jest.getTimerCount()).toBe(1);
  jest.advanceTimersByTime(maxGapMs(keepAliveMs));
  expect(c.heartbeats).toHaveLength(1);
  c.stream.close();
});

test('streams that close during a round, their own heartbeat or another close closing them, are skipped and stay out', () => {
  const keepAliveMs = uniqueKeepAliveMs();
  const streams = Array.from({ length: 10 }, () => open(keepAliveMs));
  // The third stream's heartbeat closes the fifth and the third itself.
  const closer = streams[2]!;
  const write = closer.sink.write;
  closer.sink.write = (chunk: string) => {
    streams[4]!.stream.close();
    closer.stream.close();
    return write(chunk);
  };
  jest.advanceTimersByTime(maxGapMs(keepAliveMs));
  expect(streams.map(({ stream }) => stream.closed)).toEqual(streams.map((_, i) => i === 2 || i === 4));
  expect(streams[4]!.heartbeats).toEqual([]);
  jest.advanceTimersByTime(keepAliveMs * 5);
  expect(streams.map(({ heartbeats }) => heartbeats.length)).toEqual(streams.map((_, i) => (i === 4 ? 0 : i === 2 ? 1 : 5)));
  for (const { stream } of streams) stream.close();
  jest.advanceTimersByTime(keepAliveMs);
  expect(jest.getTimerCount()).toBe(0);
});

test('a stream with bytes still buffered gets no heartbeat on top of them', () => {
  const keepAliveMs = uniqueKeepAliveMs();
  const { sink, stream, heartbeats } = open(keepAliveMs);
  sink.stall();
  void stream.send({ data: 'x'.repeat(64 * 1024) });
  jest.advanceTimersByTime(keepAliveMs * 3);
  expect(heartbeats).toEqual([]);
  stream.close();
});

test('keepAliveMs: 0 makes no timer at all', () => {
  const { stream } = open(0);
  expect(jest.getTimerCount()).toBe(0);
  stream.close();
});
