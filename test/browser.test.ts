/**
 * A real browser: headless Chromium's native EventSource, driven by playwright-core. The
 * server drops the connection mid-stream; the browser reconnects by itself, sending
 * Last-Event-ID, and the channel's replay must leave the page with every event exactly once.
 * Chromium comes from Debian's package (`apt-get install -y chromium`); .ci/run installs it.
 */
import type { Browser } from 'playwright-core';
import { createChannel, type Channel } from '@ssekit/core';
import { FRAMEWORKS, launchChromium, startApp, untilDone, type TestApp } from '@ssekit/test-kit';

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script>
  window.received = [];
  window.opens = 0;
  const source = new EventSource('/events');
  source.addEventListener('open', () => window.opens++);
  source.addEventListener('tick', (event) => window.received.push({ id: event.lastEventId, data: JSON.parse(event.data) }));
</script>`;

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(() => browser?.close());

describe.each(FRAMEWORKS)('Chromium on %s', (framework) => {
  let app: TestApp | undefined;
  let channel: Channel | undefined;
  afterEach(async () => {
    await channel?.close();
    await app?.close();
  });

  test('EventSource reconnects after a dropped stream, sends Last-Event-ID, and ends with every event exactly once', async () => {
    const feed = (channel = createChannel());
    const lastEventIds: Array<string | undefined> = [];
    app = await startApp(
      framework,
      ({ stream, request }) => {
        lastEventIds.push(request.headers['last-event-id'] as string | undefined);
        feed.subscribe(stream);
        // Drop the first two connections mid-stream, as a deploy or a flaky proxy would.
        if (lastEventIds.length <= 2) setTimeout(() => stream.close(), 150);
      },
      { options: { retryMs: 100 }, page: PAGE },
    );
    const page = await browser.newPage();
    try {
      await page.goto(`${app.url}/page`);
      // At least: the server drops the first stream after 150 ms, and on a loaded machine the
      // browser may have reconnected before the page is polled.
      await page.waitForFunction(() => (globalThis as unknown as { opens: number }).opens >= 1);
      const total = 80;
      for (let n = 1; n <= total; n++) {
        await feed.publish({ event: 'tick', data: { n } });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      // On a loaded machine every step is slow: wait as long as events keep arriving or the
      // browser keeps reconnecting, and fail only when nothing moves for 10 s.
      const state = () =>
        page.evaluate(() => ({
          received: (globalThis as unknown as { received: unknown[] }).received.length,
          opens: (globalThis as unknown as { opens: number }).opens,
        }));
      await untilDone(async () => (await state()).received >= total, state, {
        stallMs: 10_000,
        what: 'event or reconnect in the page',
      }).catch(async (error: Error) => {
        const dump = await page.evaluate(() =>
          JSON.stringify(globalThis as unknown as { received: unknown[]; opens: number }, ['received', 'opens', 'id']),
        );
        throw new Error(`${error.message}\npage: ${dump}\nLast-Event-ID per connection: ${JSON.stringify(lastEventIds)}`);
      });
      await new Promise((resolve) => setTimeout(resolve, 100)); // room for a stray duplicate to show up
      const { received, opens } = await page.evaluate(() => {
        const state = globalThis as unknown as { received: Array<{ id: string; data: { n: number } }>; opens: number };
        return { received: state.received, opens: state.opens };
      });
      expect(opens).toBeGreaterThanOrEqual(3);
      expect(lastEventIds[0]).toBeUndefined();
      // Each reconnect carried the id of the last event the browser had seen.
      for (const id of lastEventIds.slice(1)) expect(id).toMatch(/^\d+$/);
      expect(received.map((event) => event.id)).toEqual(Array.from({ length: total }, (_, i) => String(i + 1)));
      expect(received.map((event) => event.data.n)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    } finally {
      await page.close();
    }
    // A browser on a busy 2-core machine needs far longer than a unit test; progress bounds it.
  }, 90_000);
});
