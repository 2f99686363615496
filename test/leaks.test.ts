/**
 * Leaks: 20,000 connect-and-disconnect cycles on raw node:http and every adapter, each on a new
 * TCP connection to a route that subscribes its stream to a channel, with heartbeats on.
 * Afterwards nothing of those streams may remain: no subscriber, no keep-alive timer (none per
 * stream, and the shared wheel's stopped), no socket, no listener on a long-lived object, and no
 * heap growth beyond a small bound.
 */
import net, { type AddressInfo, type Server } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { createChannel, type Channel, type SseCloseReason } from '@ssekit/core';
import { FRAMEWORKS, delay, eventually, startApp, type TestApp } from '@ssekit/test-kit';

/** The count the issue fixes; never lower it to save time. */
const CYCLES = 20_000;
/** Cycles run before the baseline, so that lazy compilation and pools settle first. */
const WARM_UP = 500;
/** How many cycles are in flight at once. */
const CONCURRENCY = 100;
/** Distinctive, so that the timer census counts ssekit's keep-alive timers and nothing else. */
const KEEP_ALIVE_MS = 1_237;
/** The tick of the keep-alive wheel that every stream with KEEP_ALIVE_MS shares: a fifth of it, rounded up. */
const WHEEL_PERIOD_MS = Math.ceil(KEEP_ALIVE_MS / 5);
/** 5 MB over 20,000 cycles: under 256 bytes per cycle. */
const MAX_HEAP_GROWTH_BYTES = 5 * 1024 * 1024;

// jest gives no way to start its workers with --expose-gc; a context created after the flag is
// set gets `gc` as a global all the same.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Heap in use after full collections, once finalizers and weak callbacks have run. */
async function heapUsedAfterGc(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await settle();
  }
  return process.memoryUsage().heapUsed;
}

/** Active handles and requests by type, as Node reports them (ref'd timers only). */
function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/**
 * The fewest resources of each type seen over `ms`. jest's own reporter, which shares this
 * process, arms a short ref'd timer now and then; the minimum leaves it out of the baseline
 * rather than letting it loosen the bound.
 */
async function baselineResources(ms = 300): Promise<Record<string, number>> {
  const fewest = activeResources();
  for (const deadline = Date.now() + ms; Date.now() < deadline;) {
    await delay(5);
    const now = activeResources();
    for (const type of Object.keys(fewest)) fewest[type] = Math.min(fewest[type]!, now[type] ?? 0);
  }
  return Object.fromEntries(Object.entries(fewest).filter(([, count]) => count > 0));
}

/**
 * The first snapshot at or below `baseline`, polled for at most `timeoutMs`: sockets close a
 * moment after their streams, and jest's reporter timer comes and goes. A leak never settles,
 * and its last snapshot is returned for the assertion to show.
 */
async function settledResources(baseline: Record<string, number>, timeoutMs = 10_000): Promise<Record<string, number>> {
  for (const deadline = Date.now() + timeoutMs; ; await delay(5)) {
    const now = activeResources();
    if (Object.keys(grownPast(baseline, now)).length === 0 || Date.now() > deadline) return now;
  }
}

/** The resource types whose count grew past the baseline, with their new count. */
function grownPast(baseline: Record<string, number>, now: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(now).filter(([type, count]) => count > (baseline[type] ?? 0)));
}

function listenerCounts(emitter: NodeJS.EventEmitter): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of emitter.eventNames()) counts[String(name)] = emitter.listenerCount(name);
  return counts;
}

/**
 * The listening server behind `url`. The test kit does not hand it out, so it is found among
 * the process's active handles by its port.
 */
function serverOf(url: string): Server {
  const port = Number(new URL(url).port);
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const server = handles.find(
    (handle): handle is Server => handle instanceof net.Server && (handle.address() as AddressInfo | null)?.port === port,
  );
  if (!server) throw new Error(`no listening server on port ${port}`);
  return server;
}

const connectionsOf = (server: Server) =>
  new Promise<number>((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));

/**
 * Counts ssekit's keep-alive timers honestly. They are unref'd, and Node's resource census
 * lists only ref'd timers, so the census is taken where they would be made: the global
 * setTimeout (a timer per stream, which there must not be), and setInterval and clearInterval
 * (the wheel's one timer). A plain wrapper rather than jest.spyOn, whose mock would keep
 * every call's arguments, and so every stream, alive.
 */
function takeTimerCensus() {
  const realSetTimeout = globalThis.setTimeout;
  const realSetInterval = globalThis.setInterval;
  const realClearInterval = globalThis.clearInterval;
  const census = { perStream: 0, wheelStarted: 0, wheelStopped: 0, restore };
  globalThis.setTimeout = Object.assign(function setTimeout(callback: (...args: any[]) => void, ms?: number, ...args: any[]) {
    if (ms === KEEP_ALIVE_MS) census.perStream++;
    return realSetTimeout(callback, ms, ...args);
  }, realSetTimeout) as typeof globalThis.setTimeout;
  globalThis.setInterval = Object.assign(function setInterval(callback: (...args: any[]) => void, ms?: number, ...args: any[]) {
    if (ms === WHEEL_PERIOD_MS) census.wheelStarted++;
    return realSetInterval(callback, ms, ...args);
  }, realSetInterval) as typeof globalThis.setInterval;
  globalThis.clearInterval = function clearInterval(timer: Parameters<typeof realClearInterval>[0]) {
    if ((timer as { _idleTimeout?: number } | undefined)?._idleTimeout === WHEEL_PERIOD_MS) census.wheelStopped++;
    return realClearInterval(timer);
  };
  function restore() {
    globalThis.setTimeout = realSetTimeout;
    globalThis.setInterval = realSetInterval;
    globalThis.clearInterval = realClearInterval;
  }
  return census;
}

/**
 * The client, run on a worker thread so that it has a core of its own while this thread serves.
 * One cycle is a new TCP connection, a GET, the response head, and then the client leaves.
 */
const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { url, count, concurrency } = workerData;
const cycle = () =>
  new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers: { accept: 'text/event-stream' } });
    request.setTimeout(10000, () => request.destroy(new Error('no response head within 10 s')));
    request.once('error', reject);
    request.once('response', (response) => {
      request.off('error', reject);
      request.on('error', () => {});
      response.on('error', () => {});
      if (response.statusCode !== 200) return reject(new Error('status ' + response.statusCode));
      request.destroy();
      resolve();
    });
  });
let started = 0;
let done = 0;
const worker = async () => {
  while (started < count) {
    started++;
    await cycle();
    if (++done % 1000 === 0) parentPort.postMessage({ done });
  }
};
Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker)).then(
  () => parentPort.postMessage({ finished: done }),
  (error) => parentPort.postMessage({ error: String(error && error.stack || error) }),
);
`;

/** Runs `count` cycles with at most CONCURRENCY in flight; `each` runs after every 1,000. */
function runCycles(url: string, count: number, each: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const client = new Worker(CLIENT, { eval: true, workerData: { url, count, concurrency: CONCURRENCY } });
    client.on('message', (message: { done?: number; finished?: number; error?: string }) => {
      if (message.done !== undefined) each();
      else if (message.finished !== undefined) {
        void client.terminate();
        if (message.finished === count) resolve();
        else reject(new Error(`the client ran ${message.finished} cycles, not ${count}`));
      } else if (message.error !== undefined) {
        void client.terminate();
        reject(new Error(message.error));
      }
    });
    client.once('error', reject);
    client.once('exit', (code) => reject(new Error(`the client exited with code ${code} before it finished`)));
  });
}

describe.each(FRAMEWORKS)('leaks on %s', (framework) => {
  let app: TestApp | undefined;
  let channel: Channel | undefined;
  let census: ReturnType<typeof takeTimerCensus> | undefined;
  afterEach(async () => {
    census?.restore();
    await channel?.close();
    await app?.close();
    app = channel = census = undefined;
  });

  test(`${CYCLES.toLocaleString('en')} connect-and-disconnect cycles leave no subscriber, timer, socket, listener or heap behind`, async () => {
    const feed = (channel = createChannel());
    app = await startApp(framework, ({ stream }) => feed.subscribe(stream), { options: { keepAliveMs: KEEP_ALIVE_MS } });
    const { url: origin, streams, errors } = app;
    const url = `${origin}/events`;
    const server = serverOf(origin);

    // The test kit keeps every stream it hands out. Sweep the closed ones into a tally as we
    // go, so that its bookkeeping neither holds 20,000 streams nor hides a leak of ssekit's.
    const reasons: Partial<Record<SseCloseReason, number>> = {};
    const sweep = () => {
      let kept = 0;
      for (const stream of streams) {
        if (stream.closed) reasons[stream.closeReason!] = (reasons[stream.closeReason!] ?? 0) + 1;
        else streams[kept++] = stream;
      }
      streams.length = kept;
    };
    const settled = async (what: string) => {
      await eventually(() => feed.size === 0 && streams.every((stream) => stream.closed), 10_000, what);
      sweep();
    };

    await runCycles(url, WARM_UP, sweep);
    await settled('the warm-up streams to close');
    await eventually(() => activeResources()['TCPSocketWrap'] === undefined, 10_000, 'the warm-up sockets to go');
    for (const key of Object.keys(reasons)) delete reasons[key as SseCloseReason];

    const before = {
      heap: await heapUsedAfterGc(),
      resources: await baselineResources(),
      serverListeners: listenerCounts(server),
      processListeners: listenerCounts(process),
      connections: await connectionsOf(server),
    };
    census = takeTimerCensus();
    // A sample of the streams, held weakly: each must become garbage once it has closed.
    const sampled: Array<WeakRef<object>> = [];
    const sample = () => {
      const stream = streams.at(-1);
      if (stream) sampled.push(new WeakRef(stream));
    };

    const started = performance.now();
    await runCycles(url, CYCLES, () => {
      sample();
      sweep();
    });
    const cyclesMs = performance.now() - started;
    await settled('every stream to close');
    // The wheel stops at its first tick without a stream.
    await new Promise((resolve) => setTimeout(resolve, WHEEL_PERIOD_MS * 2));
    census.restore();

    const after = {
      resources: await settledResources(before.resources),
      heap: await heapUsedAfterGc(),
      serverListeners: listenerCounts(server),
      processListeners: listenerCounts(process),
      connections: await connectionsOf(server),
    };
    const heapPerCycle = (after.heap - before.heap) / CYCLES;
    console.info(
      `[${framework}] ${CYCLES} cycles in ${(cyclesMs / 1000).toFixed(1)} s (${((cyclesMs * 1000) / CYCLES).toFixed(0)} µs per cycle, ` +
        `${CONCURRENCY} in flight); heap ${(before.heap / 2 ** 20).toFixed(1)} → ${(after.heap / 2 ** 20).toFixed(1)} MB, ` +
        `${heapPerCycle.toFixed(1)} bytes per cycle; keep-alive timers per stream ${census.perStream}, wheel started ${census.wheelStarted}, stopped ${census.wheelStopped}`,
    );

    expect(errors).toEqual([]);
    // Every stream subscribed, and every one left the channel when its client left.
    expect(feed.size).toBe(0);
    expect(streams).toEqual([]);
    expect(reasons).toEqual({ client: CYCLES });
    // No stream made a timer of its own: one wheel kept them all alive, and stopped with the last.
    expect(census.perStream).toBe(0);
    expect(census.wheelStarted).toBeLessThanOrEqual(2);
    expect(census.wheelStopped).toBeGreaterThanOrEqual(1);
    // Nothing else remains: sockets, ref'd timers, or the connections the server tracks.
    expect(grownPast(before.resources, after.resources)).toEqual({});
    expect(after.resources['TCPServerWrap']).toBe(1);
    expect(after.resources['TCPSocketWrap']).toBeUndefined();
    expect(after.connections).toBe(0);
    // Long-lived emitters carry exactly the listeners they had.
    expect(after.serverListeners).toEqual(before.serverListeners);
    expect(after.processListeners).toEqual(before.processListeners);
    // Closed streams become garbage, and the heap is back where it was.
    expect(sampled.length).toBeGreaterThanOrEqual(CYCLES / 1000 - 1);
    expect(sampled.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
    expect(after.heap - before.heap).toBeLessThan(MAX_HEAP_GROWTH_BYTES);
  }, 180_000);
});
