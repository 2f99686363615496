/**
 * Admission on real sockets, on every adapter (raw node:http, Express, Fastify, Koa, and
 * @ssekit/web on Hono's node server): what a deferred request is answered on the wire; that the
 * `eventsource` client, @ssekit/client and Chromium's own EventSource come back by themselves
 * when deferred; and that a reconnect wave past the caps loses and repeats nothing. The exact
 * arithmetic of the bucket and the replay queue is in packages/core/test/admission.test.ts.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { Browser, Page } from 'playwright-core';
import { EventSource } from 'eventsource';
import { createEventSource } from '@ssekit/client';
import { createChannel, SSE_DIAGNOSTICS, type Channel, type SseStreamDeferredMessage } from '@ssekit/core';
import { EARLIER_HEADER, launchChromium, readSse, untilDone, type SseReader } from '@ssekit/test-kit';
import { ADAPTER_TARGETS, startTarget, type AdapterTarget, type TargetApp } from './targets.js';

/** Every `ssekit:stream:deferred` message while it listens. */
function recordDeferrals() {
  const deferrals: SseStreamDeferredMessage[] = [];
  const listener = (message: unknown) => void deferrals.push(message as SseStreamDeferredMessage);
  diagnostics_channel.subscribe(SSE_DIAGNOSTICS.streamDeferred, listener);
  return { deferrals, stop: () => diagnostics_channel.unsubscribe(SSE_DIAGNOSTICS.streamDeferred, listener) };
}

describe.each(ADAPTER_TARGETS)('admission on %s', (target) => {
  let app: TargetApp | undefined;
  let channel: Channel<any> | undefined;
  const readers: SseReader[] = [];
  const sources: Array<{ close(): void }> = [];
  let recording: ReturnType<typeof recordDeferrals> | undefined;
  afterEach(async () => {
    for (const source of sources.splice(0)) source.close();
    for (const reader of readers.splice(0)) reader.close();
    recording?.stop();
    await channel?.close();
    await app?.close();
    app = channel = recording = undefined;
  });
  const read = async (url: string, headers?: Record<string, string>) => {
    const reader = await readSse(url, { headers });
    readers.push(reader);
    return reader;
  };

  test('past opensPerSecond: a 200 event stream of only a jittered retry:, with Retry-After, that ends; the rate lets the next in later', async () => {
    recording = recordDeferrals();
    app = await startTarget(target, (stream) => void stream.send('hello'), {
      admission: { opensPerSecond: 2, retryMs: 1000, jitterMs: 500 },
    });
    const admitted = [await read(`${app.url}/events`), await read(`${app.url}/events`)];
    await Promise.all(admitted.map((reader) => reader.waitForEvents(1)));

    const deferred = await read(`${app.url}/events?token=t`);
    await deferred.ended;
    expect(deferred.status).toBe(200);
    expect(deferred.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const [retryMs] = deferred.retries;
    expect(deferred.text()).toBe(`retry: ${retryMs}\n`);
    expect(retryMs).toBeGreaterThanOrEqual(1000);
    expect(retryMs).toBeLessThanOrEqual(1500);
    expect(deferred.headers['retry-after']).toBe(String(Math.ceil(retryMs! / 1000)));
    if (target !== 'web') expect(deferred.headers[EARLIER_HEADER.name]).toBe(EARLIER_HEADER.value);
    expect(app.group.size).toBe(2);
    expect(recording.deferrals).toEqual([
      { stream: expect.anything(), request: expect.anything(), path: '/events', group: app.group, status: 200, retryMs, cause: 'opens' },
    ]);
    expect(recording.deferrals[0]!.stream.closeReason).toBe('deferred');

    await new Promise((resolve) => setTimeout(resolve, 600)); // a token every 500 ms
    const later = await read(`${app.url}/events`);
    await later.waitForEvents(1);
    expect(app.group.size).toBe(3);
  });

  test('status 503: a deferral is a 503 with Retry-After and a JSON body, and earlier headers kept', async () => {
    app = await startTarget(target, (stream) => void stream.send('hello'), {
      admission: { opensPerSecond: 1, status: 503, retryMs: 1500, jitterMs: 0 },
    });
    await (await read(`${app.url}/events`)).waitForEvents(1);
    const response = await fetch(`${app.url}/events`, { headers: { accept: 'text/event-stream' } });
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('retry-after')).toBe('2');
    if (target !== 'web') expect(response.headers.get(EARLIER_HEADER.name)).toBe(EARLIER_HEADER.value);
    expect(await response.json()).toEqual({ error: 'deferred', retryMs: 1500 });
    expect(app.group.size).toBe(1);
  });

  test('@ssekit/client waits out a deferral, 200 or 503, then opens', async () => {
    for (const status of [200, 503] as const) {
      app = await startTarget(target, (stream) => void stream.send('hello'), {
        admission: { opensPerSecond: 1, status, retryMs: 700, jitterMs: 0 },
      });
      await (await read(`${app.url}/events`)).waitForEvents(1);
      const started = performance.now();
      const source = createEventSource(`${app.url}/events`, { retry: { minMs: 1, maxMs: 10 } });
      sources.push(source);
      const opened = new Promise<number>((resolve) => source.on('message', () => resolve(performance.now())));
      // Its own backoff would be back within 10 ms: the server's answer is what it waits for.
      // 200: `retry: 700`; 503: Retry-After, 1 s (plus jitter).
      expect((await opened) - started).toBeGreaterThanOrEqual(status === 200 ? 690 : 990);
      source.close();
      await app.close();
      app = undefined;
    }
  });

  test('a reconnect wave past the caps: the eventsource client comes back by itself, and every event arrives once, in order', async () => {
    const clients = 8;
    recording = recordDeferrals();
    const feed = (channel = createChannel({ history: { maxEvents: 10_000 } }));
    app = await startTarget(target, (stream) => feed.subscribe(stream), {
      // retryMs: every admitted client is told to come back at once when its stream is cut.
      options: { retryMs: 50 },
      admission: { opensPerSecond: 4, concurrentReplays: 1, maxQueuedReplays: 1, retryMs: 100, jitterMs: 300 },
    });
    const seen = Array.from({ length: clients }, () => [] as number[]);
    for (const received of seen) {
      const source = new EventSource(`${app.url}/events`);
      sources.push(source);
      source.addEventListener('n', (event) => received.push((JSON.parse(event.data) as { n: number }).n));
    }
    await untilDone(
      () => app!.group.size === clients,
      () => app!.group.size,
      { what: 'every client in' },
    );
    const deferredAtFirst = recording.deferrals.length;
    // Four tokens for eight clients that came at once.
    expect(deferredAtFirst).toBeGreaterThanOrEqual(3);

    let n = 0;
    const publish = () => feed.publish({ event: 'n', data: { n: ++n } });
    for (let i = 0; i < 3; i++) await publish();
    await untilDone(
      () => seen.every((received) => received.length === 3),
      () => seen,
      { what: 'the first events' },
    );
    // A crash, as the clients see it: every stream cut at once, no goodbye. They come back
    // together with their Last-Event-ID while events keep coming.
    for (const stream of app.streams) stream.close();
    for (let i = 0; i < 20; i++) {
      await publish();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await untilDone(
      () => seen.every((received) => received.length === n),
      () => seen.map((received) => received.length),
      { stallMs: 10_000, what: 'every event at every client' },
    );
    for (const received of seen) expect(received).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(recording.deferrals.length - deferredAtFirst).toBeGreaterThanOrEqual(3);
    for (const deferral of recording.deferrals) expect(deferral.status).toBe(200);
  }, 60_000);
});

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script>
  window.received = [[], [], []];
  window.sources = window.received.map((received) => {
    const source = new EventSource('/events');
    source.addEventListener('message', (event) => received.push(event.data));
    return source;
  });
</script>`;

const CHROMIUM_TARGETS: AdapterTarget[] = ['express', 'web'];

describe('Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(() => browser?.close());

  describe.each(CHROMIUM_TARGETS)('on %s', (target) => {
    let app: TargetApp | undefined;
    afterEach(async () => {
      await app?.close();
      app = undefined;
    });

    const pageState = (page: Page) =>
      page.evaluate(() => {
        const state = globalThis as unknown as { received: string[][]; sources: Array<{ readyState: number }> };
        return { received: state.received, readyStates: state.sources.map((source) => source.readyState) };
      });

    test('EventSource, deferred with a 200, follows the retry: and gets in; a 503 would have stopped it for good', async () => {
      app = await startTarget(target, (stream) => void stream.send('in'), {
        admission: { opensPerSecond: 1, retryMs: 200, jitterMs: 300 },
        page: PAGE,
      });
      const page = await browser.newPage();
      try {
        await page.goto(`${app.url}/page`);
        await untilDone(
          async () => (await pageState(page)).received.every((received) => received.length > 0),
          () => pageState(page),
          { stallMs: 10_000, what: 'every EventSource in' },
        );
        const { received, readyStates } = await pageState(page);
        expect(received).toEqual([['in'], ['in'], ['in']]);
        expect(readyStates).toEqual([1, 1, 1]); // OPEN
        // Three came at once, one token a second: two were deferred, and came back.
        expect(app.statuses.length).toBeGreaterThanOrEqual(3);
        expect(app.group.size).toBe(3);
      } finally {
        await page.close();
      }
    }, 60_000);
  });
});
