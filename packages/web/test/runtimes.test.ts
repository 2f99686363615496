/**
 * @ssekit/web on the real runtimes: Node (through Hono's node server), Bun and Deno, each
 * running test/fixtures/server.mjs with @ssekit/web bundled as a runtime loads it. The same
 * contract as the Node adapters: exact bytes, injection, headers, keep-alive, Last-Event-ID,
 * disconnect, backpressure, overflow, pipe, large events, handler errors, limits, shutdown,
 * channels with replay, and churn that leaves nothing behind.
 * `pnpm test` builds first; run `pnpm build` yourself before running this file alone.
 */
import { EventSource } from 'eventsource';
import { readSse, untilDone } from '@ssekit/test-kit';
import { RUNTIMES, startRuntimeServer, type RuntimeServer } from './runtimes.js';

jest.setTimeout(60_000);

describe.each(RUNTIMES)('@ssekit/web on %s', (runtime) => {
  // A Cloudflare Worker's stream lives in its own request's I/O context: another request must
  // not write to it (a feed shared by many clients belongs in a Durable Object, whose requests
  // share one context), and a client that leaves an idle stream cancels that context rather than
  // the stream. So on workerd the cases that cross requests (a group's shutdown from another
  // request, a channel fed by another request, the churn of idle streams) are not asked.
  const acrossRequests = (name: string, fn: () => Promise<void>, timeoutMs?: number) => {
    if (runtime !== 'workerd') test(name, fn, timeoutMs);
  };
  let server: RuntimeServer;
  beforeAll(async () => {
    server = await startRuntimeServer(runtime);
  }, 60_000);
  afterAll(() => server?.close());

  const closeReasons = async (name: string) =>
    (await server.state()).closes.filter((close) => close.name === name).map((close) => close.reason);

  test('200 with exactly the SSE headers and the extra one, and every byte as the serializer defines it', async () => {
    const response = await fetch(`${server.url}/wire`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    expect(response.headers.get('x-extra')).toBe('yes');
    const text = await response.text();
    // A stream that ended before the head went out may be sent with its length (Bun does);
    // it is never a wrong one.
    const length = response.headers.get('content-length');
    if (length !== null) expect(Number(length)).toBe(new TextEncoder().encode(text).length);
    expect(text).toBe(
      'event: greeting\nid: 1\ndata: line one\ndata: line two\ndata: line three\ndata: line four\n\n' +
        'data:  leading space\n\n' +
        'data: \n\n' +
        'id: 2\ndata: {"json":true}\n\n' +
        ': a\n: b\n' +
        'retry: 1000\n',
    );
  });

  test('a field that could forge others throws SseError, writes nothing, and the stream goes on', async () => {
    const text = await (await fetch(`${server.url}/inject`)).text();
    expect(text).toBe(
      'data: before\n\nevent: codes\ndata: ["ERR_SSE_INVALID_FIELD","ERR_SSE_INVALID_FIELD","ERR_SSE_INVALID_FIELD","ERR_SSE_INVALID_FIELD"]\n\ndata: after\n\n',
    );
  });

  test('the eventsource package parses what the handler sent', async () => {
    const source = new EventSource(`${server.url}/pipe`);
    const received: Array<[string, string, string]> = [];
    await new Promise<void>((resolve, reject) => {
      source.addEventListener('n', (event) => {
        received.push(['n', event.lastEventId, event.data]);
        if (received.length === 5) resolve();
      });
      source.onerror = () => received.length < 5 && source.readyState === EventSource.CLOSED && reject(new Error('EventSource failed'));
    });
    source.close();
    expect(received).toEqual([1, 2, 3, 4, 5].map((n) => ['n', String(n), String(n)]));
  });

  test('an idle stream gets heartbeats, which dispatch nothing', async () => {
    const reader = await readSse(`${server.url}/keepalive`);
    await reader.waitFor(() => reader.comments.filter((comment) => comment.trim() === 'ping').length >= 3, 5000);
    expect(reader.events).toEqual([]);
    // The first line is the comment that sends the head on runtimes that wait for bytes (Bun).
    expect(reader.text()).toMatch(/^:\n(: ping\n){3,}$/);
    reader.close();
  });

  test.each([
    ['42', '42'],
    ['a b', 'a b'],
    [undefined, null],
    ['x'.repeat(129), null],
    ['a\tb', null],
  ])('Last-Event-ID %j reads as %j', async (header, expected) => {
    const response = await fetch(`${server.url}/last-event-id`, { headers: header === undefined ? {} : { 'last-event-id': header } });
    expect(JSON.parse((await response.text()).slice('data: '.length))).toEqual(expected);
  });

  test('a client that leaves closes the stream with reason client, and a send waiting for room settles false', async () => {
    const reader = await readSse(`${server.url}/hold`);
    await reader.waitForEvents(1);
    reader.pause();
    const sends = async () => (await server.state()).sends.filter((send) => String(send.name).startsWith('hold'));
    await untilDone(
      async () => (await sends()).length > 0,
      () => reader.text().length,
      { stallMs: 15_000, what: 'a send to wait' },
    );
    reader.close();
    await untilDone(
      async () => (await sends()).length === 2,
      () => 0,
      { stallMs: 10_000, what: 'the waiting send to settle' },
    );
    expect((await sends())[1]).toEqual({ name: 'hold', pendingSettled: false, closed: true, reason: 'client' });
    expect(await closeReasons('hold')).toEqual(['client']);
  });

  test('send waits while the client pauses, and every event arrives in order', async () => {
    const reader = await readSse(`${server.url}/backpressure`);
    reader.pause();
    await new Promise((resolve) => setTimeout(resolve, 500));
    reader.resume();
    await reader.ended;
    const ids = reader.events.filter((event) => event.event === undefined).map((event) => Number(event.id));
    expect(ids).toEqual(Array.from({ length: 400 }, (_, i) => i));
    const waited = Number(reader.events.find((event) => event.event === 'waited')!.data);
    expect(waited).toBeGreaterThan(0);
  });

  test('a client that stops reading is cut off at maxBufferedBytes, with reason overflow', async () => {
    const reader = await readSse(`${server.url}/overflow`);
    await reader.waitForEvents(1);
    reader.pause();
    await untilDone(
      async () => (await closeReasons('overflow')).length === 1,
      () => 0,
      { stallMs: 20_000, what: 'the overflow' },
    );
    expect(await closeReasons('overflow')).toEqual(['overflow']);
    reader.close();
  });

  test('events of 1 KiB to 1 MiB, back to back: every byte arrives, every send resolves true', async () => {
    const reader = await readSse(`${server.url}/large`);
    await reader.ended;
    const sizes = [1, 16, 64, 256, 1024, 1024, 256, 64, 16, 1].map((kib) => kib * 1024);
    expect(reader.events.map((event) => new TextEncoder().encode(`data: ${event.data}\n\n`).length)).toEqual(sizes);
    expect(reader.events.map((event) => event.data.slice(0, 4))).toEqual(sizes.map((_, i) => `#${i}:é`));
    const large = (await server.state()).sends.find((send) => send.name === 'large');
    expect(large).toEqual({ name: 'large', results: sizes.map(() => true) });
  });

  test('a handler that rejects reaches onError and closes the stream with reason error, the client sees nothing of it', async () => {
    const text = await (await fetch(`${server.url}/handler-error`)).text();
    expect(text).toBe('data: ok\n\n');
    expect(await closeReasons('handler-error')).toEqual(['error']);
    expect((await server.state()).errors).toContain('the handler broke: password hunter2');
  });

  test('a group limit answers 429 with a JSON body, never labelled an event stream', async () => {
    const first = await readSse(`${server.url}/limited`, { headers: { 'x-user': 'ann' } });
    await first.waitForEvents(1);
    const second = await fetch(`${server.url}/limited`, { headers: { 'x-user': 'ann' } });
    expect(second.status).toBe(429);
    expect(second.headers.get('content-type')).toBe('application/json');
    expect(await second.json()).toEqual({ error: 'too_many_streams', limit: 1 });
    const other = await readSse(`${server.url}/limited`, { headers: { 'x-user': 'bob' } });
    await other.waitForEvents(1);
    first.close();
    other.close();
  });

  acrossRequests("the group's shutdown ends every stream with a last event and a jittered retry", async () => {
    const readers = await Promise.all([1, 2, 3].map(() => readSse(`${server.url}/shutdown-group`)));
    await Promise.all(readers.map((reader) => reader.waitForEvents(1)));
    await fetch(`${server.url}/shutdown`, { method: 'POST' });
    await Promise.all(readers.map((reader) => reader.ended));
    for (const reader of readers) {
      expect(reader.events.map((event) => event.event)).toEqual([undefined, 'bye']);
      expect(reader.retries).toHaveLength(1);
      expect(reader.retries[0]).toBeGreaterThanOrEqual(1000);
      expect(reader.retries[0]).toBeLessThanOrEqual(2000);
    }
    // Late arrivals get the farewell at once.
    const late = await readSse(`${server.url}/shutdown-group`);
    await late.ended;
    expect(late.events.map((event) => event.event)).toEqual(['bye']);
  });

  acrossRequests('a channel replays after Last-Event-ID, without a gap or a repeat, and resets an unknown id', async () => {
    const first = await readSse(`${server.url}/channel`);
    const base = (await server.state()).channelSize;
    expect(base).toBeGreaterThan(0);
    await fetch(`${server.url}/publish`, { method: 'POST', body: JSON.stringify({ from: 1, count: 5 }) });
    const seen = await first.waitForEvents(5);
    first.close();
    const lastId = seen[2]!.id!;
    await fetch(`${server.url}/publish`, { method: 'POST', body: JSON.stringify({ from: 6, count: 3 }) });
    const resumed = await readSse(`${server.url}/channel`, { headers: { 'last-event-id': lastId } });
    const replayed = await resumed.waitForEvents(5);
    expect(replayed.map((event) => JSON.parse(event.data).n)).toEqual([4, 5, 6, 7, 8]);
    resumed.close();
    const unknown = await readSse(`${server.url}/channel`, { headers: { 'last-event-id': 'no-such-id' } });
    const [reset] = await unknown.waitForEvents(1);
    expect(reset!.event).toBe('reset');
    unknown.close();
  });

  const cycles = runtime === 'node' ? 10_000 : 1_000;
  acrossRequests(
    `${cycles.toLocaleString('en')} clients that connect and leave leave no stream, timer or listener behind`,
    async () => {
      // Streams of the tests before may still be closing: count from what is open now.
      const before = await server.state();
      for (let i = 0; i < cycles; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            const controller = new AbortController();
            const response = await fetch(`${server.url}/churn`, { signal: controller.signal });
            const reader = response.body!.getReader();
            await reader.read(); // the first event
            controller.abort();
            await reader.cancel().catch(() => undefined);
          }),
        );
      }
      const churned = async () => Object.values((await server.state()).churn).reduce((sum, count) => sum + count, 0);
      await untilDone(async () => (await churned()) === cycles, churned, { stallMs: 10_000, what: 'churned stream to close' });
      const after = await server.state();
      expect(after.churn).toEqual({ client: cycles });
      expect(after.groupSize).toBeLessThanOrEqual(before.groupSize);
      expect(after.liveTimers).toBeLessThanOrEqual(before.liveTimers);
    },
    180_000,
  );
});

// Bun.serve cuts a connection that is idle for `idleTimeout` seconds (10 by default), sooner than
// a 15 s heartbeat comes; and only what the client sends counts as activity. The README's recipe:
// `server.timeout(request, 0)` for the stream's request, or `idleTimeout: 0` for the server.
describe('Bun.serve and its idleTimeout', () => {
  const servers: RuntimeServer[] = [];
  afterAll(() => Promise.all(servers.map((server) => server.close())));

  /** Whether a stream is still open `afterMs` after it opened. */
  async function survives(idleTimeout: number, query: string, afterMs: number): Promise<boolean> {
    const server = await startRuntimeServer('bun', { BUN_IDLE_TIMEOUT: String(idleTimeout) });
    servers.push(server);
    const reader = await readSse(`${server.url}/idle?${query}`);
    const ended = await Promise.race([reader.ended.then(() => true), new Promise<false>((resolve) => setTimeout(resolve, afterMs, false))]);
    reader.close();
    return !ended;
  }

  test('the control: with idleTimeout 2, Bun cuts an idle stream', async () => {
    expect(await survives(2, 'keepAliveMs=0', 5000)).toBe(false);
  });

  test('and heartbeats do not save it: Bun counts only what the client sends', async () => {
    expect(await survives(2, 'keepAliveMs=500', 5000)).toBe(false);
  });

  test('the recipe: server.timeout(request, 0) keeps the stream open', async () => {
    expect(await survives(2, 'keepAliveMs=0&noTimeout', 5000)).toBe(true);
  });

  test('the recipe for a whole server: idleTimeout 0 keeps the stream open', async () => {
    expect(await survives(0, 'keepAliveMs=0', 5000)).toBe(true);
  });
});
