/**
 * @ssekit/client in headless Chromium, loaded as the built ES module a bundler would ship: the
 * server cuts the stream at random while 2000 events are published, on every server; and three
 * tabs of one origin sharing one connection, the leader's tab closed halfway.
 * `pnpm test` builds first; run `pnpm build` yourself before running this file alone.
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createChannel, type Channel } from '@ssekit/core';
import { FRAMEWORKS, launchChromium, serveHttp, startApp, untilDone, type ServedHttp, type TestApp } from '@ssekit/test-kit';
import { publishWithCuts } from './cuts.js';

const DIST = path.join(__dirname, '..', 'dist');

/** Serves the client's dist to pages of another origin, as a CDN would. */
async function serveDist(): Promise<ServedHttp> {
  if (!existsSync(path.join(DIST, 'index.js')))
    throw new Error('packages/client/dist is not built: run `pnpm build` first (`pnpm test` does).');
  return serveHttp((req, res) => {
    const file = path.join(DIST, path.basename(new URL(req.url!, 'http://x').pathname));
    if (!existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/javascript', 'access-control-allow-origin': '*' }).end(readFileSync(file));
  });
}

type Events = { n: { n: number } };

let browser: Browser;
let dist: ServedHttp;
beforeAll(async () => {
  [browser, dist] = await Promise.all([launchChromium(), serveDist()]);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await dist?.close();
});

/** What a page keeps of its source, for the test to read. */
interface PageState {
  received: number[];
  state: string;
  lastEventId: string | undefined;
  sentIds: Array<string | undefined>;
}
const pageState = (page: Page) => page.evaluate(() => (globalThis as unknown as { snapshot(): PageState }).snapshot());

const pageScript = (options: string) => `<!doctype html>
<meta charset="utf-8">
<script type="module">
  import { createEventSource } from '${dist.url}/index.js';
  const received = [];
  const sentIds = [];
  let tokens = 0;
  const source = createEventSource('/events', { ${options} });
  source.on('n', (data) => received.push(data.n));
  globalThis.snapshot = () => ({ received, state: source.state, lastEventId: source.lastEventId, sentIds });
  globalThis.closeSource = () => source.close();
</script>`;

describe.each(FRAMEWORKS)('Chromium on %s', (framework) => {
  let app: TestApp | undefined;
  let channel: Channel<Events> | undefined;
  afterEach(async () => {
    await channel?.close();
    await app?.close();
  });

  test('2000 events while the server cuts the stream 20 times: each once, in order, each reconnect with the last id and a fresh token', async () => {
    const feed = (channel = createChannel<Events>({ history: { maxEvents: 5000 } }));
    const connections: Array<{ authorization: string | undefined; lastEventId: string | undefined; request: http.IncomingMessage }> = [];
    app = await startApp(
      framework,
      ({ stream, request, reject }) => {
        const authorization = request.headers.authorization;
        connections.push({ authorization, lastEventId: request.headers['last-event-id'] as string | undefined, request });
        if (!authorization?.startsWith('Bearer t')) return reject(401);
        feed.subscribe(stream);
      },
      {
        page: pageScript(
          "headers: () => { sentIds.push(source.lastEventId); return { authorization: 'Bearer t' + ++tokens }; }, retry: { minMs: 5, maxMs: 50 }",
        ),
      },
    );
    const page = await browser.newPage();
    try {
      await page.goto(`${app.url}/page`);
      await untilDone(
        async () => (await pageState(page)).state === 'open',
        () => connections.length,
        { what: 'the page to open its source' },
      );
      const total = 2000;
      await publishWithCuts(
        feed,
        total,
        app,
        connections,
        () => app!.streams.at(-1)?.opened === true && !app!.streams.at(-1)!.closed,
        'the page to be back',
      );
      await untilDone(
        async () => (await pageState(page)).received.length >= total,
        async () => (await pageState(page)).received.length,
        {
          stallMs: 10_000,
          what: 'event in the page',
        },
      );
      const state = await pageState(page);
      expect(state.received).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(connections.length).toBeGreaterThanOrEqual(21);
      expect(connections.map((connection) => connection.authorization)).toEqual(connections.map((_, i) => `Bearer t${i + 1}`));
      expect(connections.map((connection) => connection.lastEventId)).toEqual(state.sentIds.map((id) => id || undefined));
      for (const connection of connections.slice(1)) expect(connection.lastEventId).toMatch(/^\d+$/);
    } finally {
      await page.close();
    }
  }, 180_000);
});

test("share: 'tabs': three tabs hold one connection, and closing the leader's tab hands it over with nothing lost or repeated", async () => {
  const feed: Channel<Events> = createChannel<Events>({ history: { maxEvents: 5000 } });
  const connections: Array<{ tab: string; lastEventId: string | undefined }> = [];
  const app = await startApp(
    'node',
    ({ stream, request }) => {
      connections.push({ tab: String(request.headers['x-tab']), lastEventId: request.headers['last-event-id'] as string | undefined });
      feed.subscribe(stream);
    },
    { page: pageScript("share: 'tabs', headers: () => ({ 'x-tab': location.hash.slice(1) }), retry: { minMs: 5, maxMs: 50 }") },
  );
  // One browser context: the tabs of one profile, which share Web Locks and BroadcastChannel.
  const context = await browser.newContext();
  const pages = await Promise.all(['a', 'b', 'c'].map(() => context.newPage()));
  try {
    for (const [i, page] of pages.entries()) await page.goto(`${app.url}/page#${'abc'[i]}`);
    await untilDone(
      async () => (await Promise.all(pages.map(pageState))).every((state) => state.state === 'open'),
      () => connections.length,
      {
        what: 'every tab to open',
      },
    );
    const open = () => app.streams.filter((stream) => !stream.closed).length;
    expect(open()).toBe(1);
    expect(connections).toHaveLength(1);

    const total = 600;
    let leaderClosed = false;
    for (let n = 1; n <= total; n++) {
      await feed.publish({ event: 'n', data: { n } });
      if (n === total / 2) {
        // Close the leader's tab, as a user would, while events keep coming.
        const leader = pages['abc'.indexOf(connections.at(-1)!.tab)]!;
        await leader.close();
        leaderClosed = true;
      }
      if (n % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(leaderClosed).toBe(true);
    const remaining = pages.filter((page) => !page.isClosed());
    await untilDone(
      async () => (await Promise.all(remaining.map(pageState))).every((state) => state.received.length >= total),
      async () => (await Promise.all(remaining.map(pageState))).map((state) => state.received.length),
      {
        stallMs: 10_000,
        what: 'event in the remaining tabs',
      },
    );
    for (const state of await Promise.all(remaining.map(pageState))) {
      expect(state.received).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    }
    // One connection at a time: the first leader's, then one more, which resumed where it was.
    expect(connections).toHaveLength(2);
    expect(connections[1]!.tab).not.toBe(connections[0]!.tab);
    expect(connections[1]!.lastEventId).toMatch(/^\d+$/);
    expect(open()).toBe(1);
  } finally {
    await context.close();
    await feed.close();
    await app.close();
  }
}, 120_000);
