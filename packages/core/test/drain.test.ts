/**
 * Waiting for a drain: a send that met a full sink resolves once the sink takes writes again,
 * and never waits for a drain that cannot come.
 */
import { createSseStreamFromSink, type SseSink } from '@ssekit/core/adapter';
import { createMemorySink } from '@ssekit/test-kit';

const big = 'x'.repeat(32 * 1024);

test('a send on a full sink resolves true on the drain, and a later send goes straight out', async () => {
  const sink = createMemorySink();
  const stream = createSseStreamFromSink(sink, { keepAliveMs: 0 });
  sink.stall();
  const sent = stream.send(big);
  let settled: boolean | undefined;
  void sent.then((result) => (settled = result));
  await new Promise((resolve) => setImmediate(resolve));
  expect(settled).toBeUndefined();
  sink.drain();
  await expect(sent).resolves.toBe(true);
  await expect(stream.send('after')).resolves.toBe(true);
  expect(sink.events.map((event) => event.data)).toEqual([big, 'after']);
});

test('a drain that nobody heard does not freeze the stream: the next keep-alive tick finds the sink empty and lets sends go on', async () => {
  const sink = createMemorySink();
  // A sink that loses the listener, as a runtime that emits its drain where nobody listens does.
  const lossy: SseSink = Object.assign(Object.create(sink) as SseSink, { onceDrain() {}, offDrain() {} });
  const stream = createSseStreamFromSink(lossy, { keepAliveMs: 50 });
  sink.stall();
  const sent = stream.send(big);
  let settled: boolean | undefined;
  void sent.then((result) => (settled = result));
  sink.drain(); // the bytes leave, and the drain goes unheard
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(settled).toBeUndefined();
  await expect(sent).resolves.toBe(true);
  expect(stream.closed).toBe(false);
  await expect(stream.send('after')).resolves.toBe(true);
  expect(sink.events.map((event) => event.data)).toEqual([big, 'after']);
  stream.close();
});

test('while bytes are still buffered, the keep-alive tick leaves a waiting send waiting', async () => {
  const sink = createMemorySink();
  const lossy: SseSink = Object.assign(Object.create(sink) as SseSink, { onceDrain() {}, offDrain() {} });
  const stream = createSseStreamFromSink(lossy, { keepAliveMs: 20 });
  sink.stall();
  const sent = stream.send(big);
  let settled: boolean | undefined;
  void sent.then((result) => (settled = result));
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(settled).toBeUndefined();
  stream.close();
  await expect(sent).resolves.toBe(false);
});
