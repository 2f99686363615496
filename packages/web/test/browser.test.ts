/**
 * Headless Chromium's native EventSource against a Hono app on Hono's node server: the server
 * drops the stream twice, the browser reconnects with Last-Event-ID, and the channel's replay
 * leaves the page with every event exactly once.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { Browser } from 'playwright-core';
import { createChannel, createSseResponse, type SseStream } from '@ssekit/web';
import { launchChromium, untilDone } from '@ssekit/test-kit';

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script>
  window.received = [];
  window.opens = 0;
  const source = new EventSource('/events');
  source.addEventListener('open', () => window.opens++);
  source.addEventListener('tick', (event) => window.received.push({ id: event.lastEventId, n: JSON.parse(event.data).n }));
</script>`;

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(() => browser?.close());

test('EventSource through Hono reconnects after dropped streams, sends Last-Event-ID, and ends with every event exactly once', async () => {
  const feed = createChannel<{ tick: { n: number } }>();
  const lastEventIds: Array<string | null> = [];
  const streams: SseStream[] = [];
  const app = new Hono();
  app.get('/page', (c) => c.html(PAGE));
  app.get('/events', (c) => {
    lastEventIds.push(c.req.header('last-event-id') ?? null);
    return createSseResponse(
      c.req.raw,
      (stream) => {
        streams.push(stream);
        feed.subscribe(stream);
        // Drop the first two connections mid-stream, as a deploy or a flaky proxy would.
        if (streams.length <= 2) setTimeout(() => stream.close(), 150);
      },
      { retryMs: 100 },
    );
  });
  const server: ServerType = await new Promise((resolve) => {
    const listening = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(listening));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const page = await browser.newPage();
  try {
    await page.goto(`${url}/page`);
    const state = () =>
      page.evaluate(() => {
        const page = globalThis as unknown as { received: Array<{ id: string; n: number }>; opens: number };
        return { received: page.received, opens: page.opens };
      });
    await untilDone(async () => (await state()).opens === 1, state, { what: 'the first open' });
    const total = 80;
    for (let n = 1; n <= total; n++) {
      await feed.publish({ event: 'tick', data: { n } });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await untilDone(async () => (await state()).received.length >= total, state, {
      stallMs: 10_000,
      what: 'event or reconnect in the page',
    });
    await new Promise((resolve) => setTimeout(resolve, 100)); // room for a stray duplicate to show up
    const { received, opens } = await state();
    expect(opens).toBeGreaterThanOrEqual(3);
    expect(lastEventIds[0]).toBeNull();
    for (const id of lastEventIds.slice(1)) expect(id).toMatch(/^\d+$/);
    expect(received.map((event) => event.n)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(received.map((event) => event.id)).toEqual(Array.from({ length: total }, (_, i) => String(i + 1)));
  } finally {
    await page.close();
    await feed.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}, 90_000);
