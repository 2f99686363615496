/**
 * maxLifetimeMs: a stream ends a set time after it opened (plus jitter), with a short `retry`
 * first, so that its client comes straight back with its Last-Event-ID and goes through the
 * handler's authorization again. On a channel nothing is lost or repeated across the cut; a
 * token that expired meanwhile gets its 401. Checked on a memory sink with fake timers, with the
 * `eventsource` client on every adapter, and with Chromium's own EventSource.
 */
import type { Browser, Page } from 'playwright-core';
import { EventSource } from 'eventsource';
import { createSseResponse } from '@ssekit/web';
import { sse as expressSse } from '@ssekit/express';
import ssePlugin from '@ssekit/fastify';
import { sse as koaSse } from '@ssekit/koa';
import Fastify from 'fastify';
import { createChannel, SseError, type Channel, type SseCloseReason, type SseStreamOptions } from '@ssekit/core';
import { createSseStreamFromSink, resolveStreamOptions } from '@ssekit/core/adapter';
import { createMemorySink, launchChromium, untilDone } from '@ssekit/test-kit';
import { ADAPTER_TARGETS, startTarget, type AdapterTarget, type TargetApp } from './targets.js';

describe('options', () => {
  const invalid = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1000'];
  test.each(['maxLifetimeMs', 'lifetimeJitterMs', 'lifetimeRetryMs'])('%s must be a non-negative integer', (option) => {
    for (const value of invalid) {
      const options = { maxLifetimeMs: 60_000, [option]: value } as unknown as SseStreamOptions;
      const attempts = [
        () => resolveStreamOptions(options),
        () => createSseStreamFromSink(createMemorySink(), options),
        () => expressSse(options),
        () => koaSse(options),
        () => createSseResponse(new Request('http://localhost/events'), () => {}, options),
      ];
      for (const attempt of attempts) {
        expect(attempt).toThrow(SseError);
        expect(attempt).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION', message: expect.stringContaining(option) }));
      }
    }
  });

  test('Fastify refuses them at registration', async () => {
    const app = Fastify();
    await expect(app.register(ssePlugin, { maxLifetimeMs: -5 }).ready()).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_OPTION' });
    await app.close();
  });

  test('defaults: off; when on, a tenth of it as jitter and a retry of 1000 ms', () => {
    expect(resolveStreamOptions({})).toMatchObject({ maxLifetimeMs: 0 });
    expect(resolveStreamOptions({ maxLifetimeMs: 60_000 })).toMatchObject({
      maxLifetimeMs: 60_000,
      lifetimeJitterMs: 6000,
      lifetimeFarewell: 'retry: 1000\n',
    });
    expect(resolveStreamOptions({ maxLifetimeMs: 999, lifetimeJitterMs: 0, lifetimeRetryMs: 0 })).toMatchObject({
      lifetimeJitterMs: 0,
      lifetimeFarewell: 'retry: 0\n',
    });
  });
});

describe('on a stream', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  const open = (options: SseStreamOptions) => {
    const sink = createMemorySink();
    const stream = createSseStreamFromSink(sink, options);
    const reasons: SseCloseReason[] = [];
    stream.onClose((reason) => reasons.push(reason));
    stream.open();
    return { sink, stream, reasons };
  };

  test('ends at maxLifetimeMs after it opened, with the retry line last, reason lifetime, and the response ended', () => {
    jest.advanceTimersByTime(500); // the clock at open is what counts, not at creation
    const { sink, stream, reasons } = open({ keepAliveMs: 0, maxLifetimeMs: 1000, lifetimeJitterMs: 0, lifetimeRetryMs: 250 });
    void stream.send({ id: '7', data: 'x' });
    jest.advanceTimersByTime(999);
    expect(stream.closed).toBe(false);
    jest.advanceTimersByTime(1);
    expect(reasons).toEqual(['lifetime']);
    expect(stream.closeReason).toBe('lifetime');
    expect(sink.chunks.join('')).toBe('id: 7\ndata: x\n\nretry: 250\n');
    expect(sink.closedBy).toBe('server');
    expect(jest.getTimerCount()).toBe(0);
  });

  test.each([
    [0, 1000, 1000],
    [0.5, 1000, 1050],
    [0.99999, 1000, 1100],
  ])('jitter: with Math.random() at %d, a lifetime of %d ms with the default jitter ends at %d ms', (random, maxLifetimeMs, endsAt) => {
    jest.spyOn(Math, 'random').mockReturnValue(random);
    const { stream } = open({ keepAliveMs: 0, maxLifetimeMs });
    jest.advanceTimersByTime(endsAt - 1);
    expect(stream.closed).toBe(false);
    jest.advanceTimersByTime(1);
    expect(stream.closeReason).toBe('lifetime');
  });

  test('heartbeats come from the shared keep-alive wheel, the lifetime from a timer of its own; writes keep the stream from idling, not from ending', () => {
    const { sink, stream } = open({ keepAliveMs: 300, maxLifetimeMs: 1000, lifetimeJitterMs: 0 });
    expect(jest.getTimerCount()).toBe(2);
    // The wheel ticks every 60 ms; idle since its head, the stream is due at its sixth tick.
    jest.advanceTimersByTime(900);
    expect(sink.chunks.join('')).toBe(': ping\n: ping\n');
    void stream.send('busy');
    jest.advanceTimersByTime(99);
    expect(stream.closed).toBe(false);
    jest.advanceTimersByTime(1);
    expect(stream.closeReason).toBe('lifetime');
    expect(sink.chunks.join('')).toBe(': ping\n: ping\ndata: busy\n\nretry: 1000\n');
    // The wheel stops at its first tick without a stream.
    jest.advanceTimersByTime(60);
    expect(jest.getTimerCount()).toBe(0);
  });

  test('a busy stream ends on time too', () => {
    const { stream } = open({ keepAliveMs: 300, maxLifetimeMs: 1000, lifetimeJitterMs: 0 });
    for (let t = 0; t < 999; t += 10) {
      void stream.send({ data: String(t) });
      jest.advanceTimersByTime(10);
    }
    expect(stream.closeReason).toBe('lifetime');
  });

  test('without keep-alive the lifetime has the timer to itself; without either there is none', () => {
    open({ keepAliveMs: 0, maxLifetimeMs: 1000 });
    expect(jest.getTimerCount()).toBe(1);
    open({ keepAliveMs: 0 });
    expect(jest.getTimerCount()).toBe(1);
  });

  test('a stream that closes first takes its timer with it, and a lifetime longer than a timer can wait still ends', () => {
    const { stream } = open({ keepAliveMs: 0, maxLifetimeMs: 1000 });
    stream.close();
    expect(jest.getTimerCount()).toBe(0);
    const days = 30 * 24 * 3600 * 1000; // past 2^31 - 1 ms, the longest single timer
    const { stream: long } = open({ keepAliveMs: 0, maxLifetimeMs: days, lifetimeJitterMs: 0 });
    jest.advanceTimersByTime(days - 1);
    expect(long.closed).toBe(false);
    jest.advanceTimersByTime(1);
    expect(long.closeReason).toBe('lifetime');
  });
});

/** What an `eventsource` client saw: events, the count at each open, and how it ended. */
function watch(source: EventSource) {
  const seen = {
    received: [] as Array<{ id: string; n: number }>,
    receivedAtOpen: [] as number[],
    errorCode: undefined as number | undefined,
  };
  source.addEventListener('open', () => seen.receivedAtOpen.push(seen.received.length));
  source.addEventListener('n', (event) => seen.received.push({ id: event.lastEventId, n: (JSON.parse(event.data) as { n: number }).n }));
  source.addEventListener('error', (event) => {
    if (source.readyState === EventSource.CLOSED) seen.errorCode = (event as { code?: number }).code;
  });
  return seen;
}

/**
 * Publishes one event every few ms through the lifetime cut, and 20 more once the client's
 * second stream is open; resolves to the ids in publish order.
 */
async function publishThroughCut(feed: Channel<any>, app: TargetApp): Promise<string[]> {
  const ids: string[] = [];
  let afterReturn = 0;
  while (afterReturn < 20) {
    ids.push(await feed.publish({ event: 'n', data: { n: ids.length + 1 } }));
    if (app.streams.length >= 2) afterReturn++;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return ids;
}

describe.each(ADAPTER_TARGETS)('the eventsource client on %s', (target) => {
  let app: TargetApp | undefined;
  let channel: Channel<any> | undefined;
  let source: EventSource | undefined;
  afterEach(async () => {
    source?.close();
    await channel?.close();
    await app?.close();
    app = channel = source = undefined;
  });

  test('a valid token comes back once at the lifetime cut, and every event arrives once, in order', async () => {
    const feed = (channel = createChannel({ history: { maxEvents: 10_000 } }));
    app = await startTarget(target, (stream) => feed.subscribe(stream), {
      options: { maxLifetimeMs: 1500, lifetimeJitterMs: 0, lifetimeRetryMs: 20 },
      authorize: (url) => url.searchParams.get('token') === 'good',
    });
    source = new EventSource(`${app.url}/events?token=good`);
    const seen = watch(source);
    await untilDone(
      () => seen.receivedAtOpen.length === 1,
      () => seen,
      { what: 'the first open' },
    );

    const ids = await publishThroughCut(feed, app);
    await untilDone(
      () => seen.received.length >= ids.length,
      () => seen.received.length,
      { what: 'events' },
    );
    source.close();

    expect(seen.received.map((event) => event.id)).toEqual(ids);
    expect(seen.received.map((event) => event.n)).toEqual(ids.map((_, i) => i + 1));
    expect(app.statuses).toEqual([200, 200]);
    expect(seen.receivedAtOpen).toHaveLength(2);
    expect(app.streams[0]!.closeReason).toBe('lifetime');
    // It came back with the id of the last event it had, and replay filled in the rest.
    const before = seen.receivedAtOpen[1]!;
    expect(before).toBeGreaterThan(0);
    expect(app.lastEventIds).toEqual([undefined, seen.received[before - 1]!.id]);
  });

  test('a token that expired meanwhile is refused with 401 at the cut, and the client stops', async () => {
    const feed = (channel = createChannel());
    let expired = false;
    app = await startTarget(target, (stream) => feed.subscribe(stream), {
      options: { maxLifetimeMs: 600, lifetimeJitterMs: 0, lifetimeRetryMs: 20 },
      authorize: (url) => url.searchParams.get('token') === 'good' && !expired,
    });
    source = new EventSource(`${app.url}/events?token=good`);
    const seen = watch(source);
    await untilDone(
      () => seen.receivedAtOpen.length === 1,
      () => seen,
      { what: 'the first open' },
    );
    await feed.publish({ event: 'n', data: { n: 1 } });
    await untilDone(
      () => seen.received.length === 1,
      () => seen,
      { what: 'the first event' },
    );
    // The open stream is not checked again: only the cut makes the client ask anew.
    expired = true;
    await feed.publish({ event: 'n', data: { n: 2 } });
    await untilDone(
      () => source!.readyState === EventSource.CLOSED,
      () => [seen, app!.statuses],
      { what: 'the refusal' },
    );

    expect(seen.errorCode).toBe(401);
    expect(app.statuses).toEqual([200, 401]);
    expect(app.streams).toHaveLength(1);
    expect(app.streams[0]!.closeReason).toBe('lifetime');
    expect(seen.received.map((event) => event.n)).toEqual([1, 2]);
  });
});

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script>
  window.received = [];
  window.opens = [];
  const source = (window.source = new EventSource('/events' + location.search));
  source.addEventListener('open', () => window.opens.push(window.received.length));
  source.addEventListener('n', (event) => window.received.push({ id: event.lastEventId, n: JSON.parse(event.data).n }));
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
    let channel: Channel<any> | undefined;
    afterEach(async () => {
      await channel?.close();
      await app?.close();
      app = channel = undefined;
    });

    const pageState = async (page: Page) =>
      page.evaluate(() => {
        const state = globalThis as unknown as {
          received: Array<{ id: string; n: number }>;
          opens: number[];
          source: { readyState: number };
        };
        return { received: state.received, opens: state.opens, readyState: state.source.readyState };
      });

    test('EventSource comes back once at the lifetime cut with its Last-Event-ID, and every event arrives once, in order', async () => {
      const feed = (channel = createChannel({ history: { maxEvents: 10_000 } }));
      app = await startTarget(target, (stream) => feed.subscribe(stream), {
        options: { maxLifetimeMs: 2000, lifetimeJitterMs: 0, lifetimeRetryMs: 20 },
        authorize: (url) => url.searchParams.get('token') === 'good',
        page: PAGE,
      });
      const page = await browser.newPage();
      try {
        await page.goto(`${app.url}/page?token=good`);
        await untilDone(
          async () => (await pageState(page)).opens.length === 1,
          () => pageState(page),
          { what: 'the first open' },
        );
        const ids = await publishThroughCut(feed, app);
        await untilDone(
          async () => (await pageState(page)).received.length >= ids.length,
          () => pageState(page),
          {
            stallMs: 10_000,
            what: 'events in the page',
          },
        );
        const { received, opens } = await pageState(page);
        expect(received.map((event) => event.id)).toEqual(ids);
        expect(received.map((event) => event.n)).toEqual(ids.map((_, i) => i + 1));
        expect(app.statuses).toEqual([200, 200]);
        expect(opens).toHaveLength(2);
        expect(app.streams[0]!.closeReason).toBe('lifetime');
        expect(app.lastEventIds).toEqual([undefined, received[opens[1]! - 1]!.id]);
      } finally {
        await page.close();
      }
    }, 90_000);

    test('EventSource whose token expired meanwhile gets 401 at the cut and stops for good', async () => {
      const feed = (channel = createChannel());
      let expired = false;
      app = await startTarget(target, (stream) => feed.subscribe(stream), {
        options: { maxLifetimeMs: 800, lifetimeJitterMs: 0, lifetimeRetryMs: 20 },
        authorize: (url) => url.searchParams.get('token') === 'good' && !expired,
        page: PAGE,
      });
      const page = await browser.newPage();
      try {
        await page.goto(`${app.url}/page?token=good`);
        await untilDone(
          async () => (await pageState(page)).opens.length === 1,
          () => pageState(page),
          { what: 'the first open' },
        );
        await feed.publish({ event: 'n', data: { n: 1 } });
        await untilDone(
          async () => (await pageState(page)).received.length === 1,
          () => pageState(page),
          { what: 'the first event' },
        );
        expired = true;
        await untilDone(
          async () => (await pageState(page)).readyState === 2,
          () => pageState(page),
          {
            stallMs: 10_000,
            what: 'the refusal',
          },
        );
        await new Promise((resolve) => setTimeout(resolve, 300)); // room for a retry it must not make
        expect(app.statuses).toEqual([200, 401]);
        expect(app.streams[0]!.closeReason).toBe('lifetime');
        expect((await pageState(page)).received.map((event) => event.n)).toEqual([1]);
      } finally {
        await page.close();
      }
    }, 90_000);
  });
});
