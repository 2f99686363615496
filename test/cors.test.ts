/**
 * CORS with credentials, on Express, Fastify and Koa, each with its own CORS middleware
 * (`cors`, `@fastify/cors`, `@koa/cors`) mounted before ssekit as docs/cors.md shows. The
 * browser is headless Chromium on a page from another origin (another port on 127.0.0.1):
 * a native EventSource with `withCredentials` opens and sends the cookie, a native reconnect
 * sends Last-Event-ID with no preflight, and fetch-based clients (plain `fetch`, the
 * `eventsource` package) send Last-Event-ID through a preflight that the recipe allows.
 * Chromium comes from Debian's package (`apt-get install -y chromium`); .ci/run installs it.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import express from 'express';
import cors from 'cors';
import Fastify from 'fastify';
import fastifyCors from '@fastify/cors';
import Koa from 'koa';
import type { Browser, Page } from 'playwright-core';
import type { SseStream } from '@ssekit/core';
import { sse as expressSse } from '@ssekit/express';
import ssePlugin from '@ssekit/fastify';
import { sse as koaSse } from '@ssekit/koa';
import { launchChromium, readSse, serveHttp, type ServedHttp } from '@ssekit/test-kit';

interface KoaCorsOptions {
  origin?: string | ((ctx: Koa.Context) => string);
  credentials?: boolean;
  allowHeaders?: string[];
}
// @koa/cors ships no types of its own (they are @types/koa__cors, which this repo does not use).
// eslint-disable-next-line @typescript-eslint/no-require-imports -- typed by hand just above
const koaCors = require('@koa/cors') as (options?: KoaCorsOptions) => Koa.Middleware;

const CORS_FRAMEWORKS = ['express', 'fastify', 'koa'] as const;
type CorsFramework = (typeof CORS_FRAMEWORKS)[number];

/** The recipe's allow-list of request headers: Last-Event-ID for fetch-based clients, and a token. */
const RECIPE_HEADERS = ['Last-Event-ID', 'Authorization'];

interface CorsConfig {
  /** Allowed origins, or `'*'` for the mistake of a wildcard with credentials. */
  origins: readonly string[] | '*';
  /** Request headers a preflight may ask for; left out, each middleware echoes what was asked. */
  allowedHeaders?: readonly string[];
  /** Sends Access-Control-Allow-Credentials: true. @default true */
  credentials?: boolean;
  /** Fastify only: the hook @fastify/cors runs in. */
  fastifyHook?: 'onRequest' | 'preSerialization';
}

/** A request as it reached the server, before any middleware. */
interface SeenRequest {
  method: string;
  path: string;
  lastEventId: string | undefined;
  requestHeaders: string | undefined;
}

interface CorsApp {
  readonly url: string;
  readonly requests: SeenRequest[];
  /** Every stream `/events` was handed. */
  readonly streams: SseStream[];
  close(): Promise<void>;
}

/** What `/events` sends first: the cookie and Last-Event-ID it received. */
interface Hello {
  cookie: string | null;
  lastEventId: string | null;
}

/**
 * The route behind `/events`: one `hello` event echoing the cookie and Last-Event-ID. With
 * `?drop`, a first connection (no Last-Event-ID) is closed after it, so that the client
 * reconnects 50 ms later with `Last-Event-ID: e1`.
 */
function greet(streams: SseStream[], stream: SseStream, request: http.IncomingMessage): void {
  streams.push(stream);
  const hello: Hello = { cookie: request.headers.cookie ?? null, lastEventId: stream.lastEventId ?? null };
  void stream.send({ event: 'hello', id: 'e1', retry: 50, data: hello });
  if (new URL(request.url ?? '/', 'http://x').searchParams.has('drop') && stream.lastEventId === undefined) stream.close();
}

const LOGIN_FIRST = 'login first';

function record(requests: SeenRequest[]) {
  return (req: http.IncomingMessage) => {
    requests.push({
      method: req.method ?? '',
      path: (req.url ?? '').split('?')[0]!,
      lastEventId: req.headers['last-event-id'] as string | undefined,
      requestHeaders: req.headers['access-control-request-headers'],
    });
  };
}

/**
 * Starts `framework` on 127.0.0.1 with its own CORS middleware first, ssekit mounted the
 * framework's way, `/events` (see {@link greet}), and `/private` and `/private-throw`, which
 * reject with 401 before the stream opens: by answering, and by throwing.
 */
async function startCorsApp(framework: CorsFramework, config: CorsConfig): Promise<CorsApp> {
  const requests: SeenRequest[] = [];
  const streams: SseStream[] = [];
  const { origins, allowedHeaders, fastifyHook, credentials = true } = config;
  const origin = origins === '*' ? '*' : [...origins];
  switch (framework) {
    case 'express': {
      const app = express();
      app.use(cors({ origin, credentials, ...(allowedHeaders && { allowedHeaders: [...allowedHeaders] }) }));
      app.get('/events', expressSse(), (req, res) => greet(streams, res.sse, req));
      app.get('/private', expressSse(), (_req, res) => void res.status(401).type('text/plain').send(LOGIN_FIRST));
      app.get('/private-throw', expressSse(), (_req, _res, next) => next(Object.assign(new Error(LOGIN_FIRST), { status: 401 })));
      const server = http.createServer(app);
      server.prependListener('request', record(requests));
      const served = await serveHttp(server);
      return { url: served.url, requests, streams, close: served.close };
    }
    case 'fastify': {
      const app = Fastify();
      app.server.prependListener('request', record(requests));
      await app.register(fastifyCors, {
        origin,
        credentials,
        ...(allowedHeaders && { allowedHeaders: [...allowedHeaders] }),
        ...(fastifyHook && { hook: fastifyHook }),
      });
      await app.register(ssePlugin);
      app.get('/events', (request, reply) => greet(streams, reply.sse, request.raw));
      app.get('/private', (_request, reply) => void reply.code(401).type('text/plain').send(LOGIN_FIRST));
      app.get('/private-throw', () => {
        throw Object.assign(new Error(LOGIN_FIRST), { statusCode: 401 });
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}`, requests, streams, close: () => app.close() };
    }
    case 'koa': {
      const app = new Koa();
      app.on('error', () => {}); // a 401 is not worth a log line
      const allowed = (ctx: Koa.Context) => (origin === '*' || origin.includes(ctx.get('Origin')) ? ctx.get('Origin') : '');
      app.use(
        koaCors({
          origin: origin === '*' ? '*' : allowed,
          credentials,
          ...(allowedHeaders && { allowHeaders: [...allowedHeaders] }),
        }),
      );
      app.use(koaSse());
      app.use((ctx) => {
        if (ctx.path === '/events') return greet(streams, ctx.sse, ctx.req);
        if (ctx.path === '/private') {
          ctx.status = 401;
          ctx.type = 'text/plain';
          ctx.body = LOGIN_FIRST;
        }
        if (ctx.path === '/private-throw') ctx.throw(401, LOGIN_FIRST);
      });
      const server = http.createServer(app.callback());
      server.prependListener('request', record(requests));
      const served = await serveHttp(server);
      return { url: served.url, requests, streams, close: served.close };
    }
  }
}

interface PlainResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One finite request over plain HTTP, as a preflight or a rejection is. */
function plainRequest(url: string, method: string, headers: Record<string, string>): Promise<PlainResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, agent: false }, (response) => {
      response.setEncoding('utf8');
      let body = '';
      response.on('data', (chunk: string) => (body += chunk));
      response.once('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.once('error', reject);
    });
    request.once('error', reject);
    request.end();
  });
}

function preflight(url: string, origin: string): Promise<PlainResponse> {
  return plainRequest(url, 'OPTIONS', {
    origin,
    'access-control-request-method': 'GET',
    'access-control-request-headers': 'last-event-id',
  });
}

/** Header names in an Access-Control-Allow-Headers value, lowercased. */
const headerList = (value: string | undefined) => (value ?? '').split(',').map((name) => name.trim().toLowerCase());

// What the page loads to run the `eventsource` package (fetch-based since v3) in Chromium.
const eventsourceDir = dirname(require.resolve('eventsource/package.json'));
const eventsourceParserDir = dirname(require.resolve('eventsource-parser/package.json', { paths: [eventsourceDir] }));
const MODULES: Record<string, string> = {
  '/eventsource.js': join(eventsourceDir, 'dist/index.js'),
  '/eventsource-parser.js': join(eventsourceParserDir, 'dist/index.js'),
};
const PAGE = '<!doctype html><meta charset="utf-8"><title>origin A</title>';
const EVENTSOURCE_PAGE = `<!doctype html>
<meta charset="utf-8">
<script type="importmap">{ "imports": { "eventsource-parser": "/eventsource-parser.js" } }</script>
<script type="module">
  import { EventSource } from '/eventsource.js';
  window.FetchEventSource = EventSource;
</script>`;

/** A page server: one origin, apart from the app's. */
function servePages(): Promise<ServedHttp> {
  return serveHttp((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    if (path === '/eventsource.html') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(EVENTSOURCE_PAGE);
    const file = MODULES[path];
    if (file) return void res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(readFileSync(file));
    res.writeHead(404).end();
  });
}

/** What a page saw of one EventSource. */
interface SourceOutcome {
  opened: boolean;
  readyState: number;
  hellos: string[];
  errors: number;
}

/**
 * In the page: opens `url` with `new EventSource(url, { withCredentials: true })` (the native
 * one, or the `eventsource` package's), waits until `hellos` hello events arrived or, with
 * `untilError`, until `settleMs` after the first error, whichever comes first, then closes it.
 */
function openEventSource(
  page: Page,
  url: string,
  {
    hellos = 1,
    untilError = false,
    settleMs = 300,
    flavour = 'native',
  }: { hellos?: number; untilError?: boolean; settleMs?: number; flavour?: 'native' | 'package' } = {},
): Promise<SourceOutcome & { timedOut: boolean }> {
  return page.evaluate(
    ({ url, hellos, untilError, settleMs, flavour }) => {
      interface BrowserEventSource {
        readonly readyState: number;
        addEventListener(type: string, listener: (event: { data?: string }) => void): void;
        close(): void;
      }
      type EventSourceClass = new (url: string, init: { withCredentials: boolean }) => BrowserEventSource;
      const scope = globalThis as unknown as { EventSource: EventSourceClass; FetchEventSource: EventSourceClass };
      const Source = flavour === 'native' ? scope.EventSource : scope.FetchEventSource;
      const source = new Source(url, { withCredentials: true });
      const outcome = { opened: false, readyState: source.readyState, hellos: [] as string[], errors: 0, timedOut: false };
      return new Promise<typeof outcome>((resolve) => {
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          outcome.readyState = source.readyState;
          source.close();
          resolve(outcome);
        };
        const timer = setTimeout(() => {
          outcome.timedOut = true;
          finish();
        }, 5000);
        source.addEventListener('open', () => (outcome.opened = true));
        source.addEventListener('hello', (event) => {
          outcome.hellos.push(event.data ?? '');
          if (outcome.hellos.length === hellos) finish();
        });
        source.addEventListener('error', () => {
          outcome.errors++;
          if (untilError && outcome.errors === 1) setTimeout(finish, settleMs);
        });
      });
    },
    { url, hellos, untilError, settleMs, flavour },
  );
}

/** What a page's `fetch` of an event stream gave: the first event's text, or the failure. */
interface FetchOutcome {
  status?: number;
  contentType?: string | null;
  text?: string;
  error?: string;
}

/** In the page: a credentialed `fetch` with `headers`, reading up to the first blank line. */
function fetchFromPage(page: Page, url: string, headers: Record<string, string>): Promise<FetchOutcome> {
  return page.evaluate(
    async ({ url, headers }) => {
      try {
        const response = await fetch(url, { credentials: 'include', headers });
        const reader = response.body!.getReader();
        const decoder = new TextDecoder();
        let text = '';
        for (;;) {
          if (text.includes('\n\n')) break;
          const { value, done } = await reader.read();
          if (done) break;
          text += decoder.decode(value, { stream: true });
        }
        await reader.cancel();
        return { status: response.status, contentType: response.headers.get('content-type'), text };
      } catch (error) {
        return { error: String(error) };
      }
    },
    { url, headers },
  );
}

let browser: Browser;
let originA: ServedHttp;
let originC: ServedHttp;
beforeAll(async () => {
  browser = await launchChromium();
  originA = await servePages();
  originC = await servePages();
}, 30_000);
afterAll(async () => {
  await originA?.close();
  await originC?.close();
  await browser?.close();
});

describe.each(CORS_FRAMEWORKS)('CORS with credentials on %s', (framework) => {
  let app: CorsApp | undefined;
  let page: Page | undefined;
  afterEach(async () => {
    await page?.close();
    await app?.close();
    app = page = undefined;
  });

  /** A fresh page on `origin`, with a `session` cookie for the app's host. */
  const openPage = async (origin: ServedHttp, path = '/') => {
    page = await browser.newPage();
    await page.context().addCookies([{ name: 'session', value: 'abc', url: app!.url, sameSite: 'Lax' }]);
    await page.goto(origin.url + path);
    return page;
  };

  test('a native EventSource with withCredentials opens from an allowed origin, and sends the cookie', async () => {
    app = await startCorsApp(framework, { origins: [originA.url], allowedHeaders: RECIPE_HEADERS });
    const page = await openPage(originA);
    const url = `${app.url}/events`;
    const response = page.waitForResponse((candidate) => candidate.url() === url);
    response.catch(() => {}); // awaited below; only a failed open leaves it pending until the page closes
    const outcome = await openEventSource(page, url);
    expect(outcome).toMatchObject({ opened: true, readyState: 1, errors: 0, timedOut: false });
    expect(JSON.parse(outcome.hellos[0]!)).toEqual<Hello>({ cookie: 'session=abc', lastEventId: null });
    const headers = await (await response).allHeaders();
    expect(headers['access-control-allow-origin']).toBe(originA.url);
    expect(headers['access-control-allow-credentials']).toBe('true');
    expect(headerList(headers['vary'])).toContain('origin');
    expect(headers['content-type']).toBe('text/event-stream; charset=utf-8');
  });

  test('from an origin that is not allowed, the EventSource errors and never opens', async () => {
    app = await startCorsApp(framework, { origins: [originA.url], allowedHeaders: RECIPE_HEADERS });
    const page = await openPage(originC);
    const outcome = await openEventSource(page, `${app.url}/events`, { untilError: true });
    expect(outcome).toMatchObject({ opened: false, readyState: 2, hellos: [], errors: 1, timedOut: false });
    // Failing CORS is fatal for an EventSource: it never tries again.
    expect(app.requests.filter((request) => request.path === '/events')).toHaveLength(1);
    // CORS is the browser's doing: the server ran the route and opened the stream all the same.
    expect(app.streams).toHaveLength(1);
    expect(app.streams[0]!.opened).toBe(true);
    const reader = await readSse(`${app.url}/events`, { headers: { origin: originC.url } });
    reader.close();
    expect(reader.headers['access-control-allow-origin']).toBeUndefined();
  });

  test('a native EventSource reconnects with Last-Event-ID and no preflight', async () => {
    app = await startCorsApp(framework, { origins: [originA.url], allowedHeaders: RECIPE_HEADERS });
    const page = await openPage(originA);
    const outcome = await openEventSource(page, `${app.url}/events?drop`, { hellos: 2 });
    expect(outcome.timedOut).toBe(false);
    expect(outcome.hellos.map((hello) => JSON.parse(hello) as Hello)).toEqual<Hello[]>([
      { cookie: 'session=abc', lastEventId: null },
      { cookie: 'session=abc', lastEventId: 'e1' },
    ]);
    expect(app.requests.map(({ method, lastEventId }) => [method, lastEventId])).toEqual([
      ['GET', undefined],
      ['GET', 'e1'],
    ]);
  });

  test('a preflight that asks for Last-Event-ID is answered 204, allowing it with credentials', async () => {
    app = await startCorsApp(framework, { origins: [originA.url], allowedHeaders: RECIPE_HEADERS });
    const response = await preflight(`${app.url}/events`, originA.url);
    expect(response.status).toBe(204);
    expect(response.headers['access-control-allow-origin']).toBe(originA.url);
    expect(response.headers['access-control-allow-credentials']).toBe('true');
    expect(headerList(response.headers['access-control-allow-headers'])).toContain('last-event-id');
    expect(headerList(response.headers['access-control-allow-methods'])).toContain('get');
  });

  test('fetch with credentials and a Last-Event-ID header passes the preflight and reads the stream', async () => {
    app = await startCorsApp(framework, { origins: [originA.url], allowedHeaders: RECIPE_HEADERS });
    const page = await openPage(originA);
    const outcome = await fetchFromPage(page, `${app.url}/events`, { 'Last-Event-ID': '42' });
    expect(outcome).toMatchObject({ status: 200, contentType: 'text/event-stream; charset=utf-8' });
    expect(outcome.text).toBe(`event: hello\nid: e1\nretry: 50\ndata: ${JSON.stringify({ cookie: 'session=abc', lastEventId: '42' })}\n\n`);
    expect(app.requests.map(({ method, requestHeaders, lastEventId }) => [method, requestHeaders, lastEventId])).toEqual([
      ['OPTIONS', 'last-event-id', undefined],
      ['GET', undefined, '42'],
    ]);
  });

  test('the eventsource package (fetch-based) reconnects through a preflight with Last-Event-ID', async () => {
    app = await startCorsApp(framework, { origins: [originA.url], allowedHeaders: RECIPE_HEADERS });
    const page = await openPage(originA, '/eventsource.html');
    await page.waitForFunction(() => typeof (globalThis as unknown as { FetchEventSource?: unknown }).FetchEventSource === 'function');
    const outcome = await openEventSource(page, `${app.url}/events?drop`, { hellos: 2, flavour: 'package' });
    expect(outcome).toMatchObject({ opened: true, timedOut: false });
    expect(outcome.hellos.map((hello) => JSON.parse(hello) as Hello)).toEqual<Hello[]>([
      { cookie: 'session=abc', lastEventId: null },
      { cookie: 'session=abc', lastEventId: 'e1' },
    ]);
    expect(app.requests.map(({ method, requestHeaders, lastEventId }) => [method, requestHeaders, lastEventId])).toEqual([
      ['GET', undefined, undefined],
      ['OPTIONS', 'last-event-id', undefined],
      ['GET', undefined, 'e1'],
    ]);
  });

  // Last-Event-ID is not CORS-safelisted (Chromium agrees); if whatwg/fetch#568 lands and
  // browsers safelist it, this preflight goes away and docs/cors.md needs a word.
  test('an allow-list without Last-Event-ID fails the preflight, and the request is never sent', async () => {
    app = await startCorsApp(framework, { origins: [originA.url], allowedHeaders: ['Authorization'] });
    const response = await preflight(`${app.url}/events`, originA.url);
    expect(headerList(response.headers['access-control-allow-headers'])).not.toContain('last-event-id');
    const page = await openPage(originA);
    const outcome = await fetchFromPage(page, `${app.url}/events`, { 'Last-Event-ID': '42' });
    expect(outcome.error).toMatch(/TypeError/);
    expect(app.requests.map(({ method }) => method)).toEqual(['OPTIONS', 'OPTIONS']);
  });

  test('without allowedHeaders, the middleware echoes the Last-Event-ID a preflight asks for', async () => {
    app = await startCorsApp(framework, { origins: [originA.url] });
    const response = await preflight(`${app.url}/events`, originA.url);
    expect(response.status).toBe(204);
    expect(headerList(response.headers['access-control-allow-headers'])).toEqual(['last-event-id']);
  });

  test.each(['/private', '/private-throw'])(
    'a 401 from %s before the stream opens carries the CORS headers, so the page can read it',
    async (path) => {
      app = await startCorsApp(framework, { origins: [originA.url], allowedHeaders: RECIPE_HEADERS });
      const response = await plainRequest(`${app.url}${path}`, 'GET', { origin: originA.url });
      expect(response.status).toBe(401);
      expect(response.headers['access-control-allow-origin']).toBe(originA.url);
      expect(response.headers['access-control-allow-credentials']).toBe('true');
      expect(response.headers['content-type'] ?? '').not.toContain('text/event-stream');
      const page = await openPage(originA);
      const outcome = await fetchFromPage(page, `${app.url}${path}`, {});
      expect(outcome).toMatchObject({ status: 401 });
      expect(outcome.text).toContain(LOGIN_FIRST);
    },
  );

  test('without Access-Control-Allow-Credentials, a credentialed EventSource errors and never opens', async () => {
    app = await startCorsApp(framework, { origins: [originA.url], allowedHeaders: RECIPE_HEADERS, credentials: false });
    const reader = await readSse(`${app.url}/events`, { headers: { origin: originA.url } });
    reader.close();
    expect(reader.headers['access-control-allow-origin']).toBe(originA.url);
    expect(reader.headers['access-control-allow-credentials']).toBeUndefined();
    const page = await openPage(originA);
    const outcome = await openEventSource(page, `${app.url}/events`, { untilError: true });
    expect(outcome).toMatchObject({ opened: false, readyState: 2, hellos: [], errors: 1, timedOut: false });
  });

  test('a wildcard origin with credentials never lets a credentialed EventSource through, or lets every origin through', async () => {
    app = await startCorsApp(framework, { origins: '*', allowedHeaders: RECIPE_HEADERS });
    const evil = 'http://evil.example';
    const reader = await readSse(`${app.url}/events`, { headers: { origin: evil } });
    reader.close();
    expect(reader.headers['access-control-allow-credentials']).toBe('true');
    const page = await openPage(originA);
    const outcome = await openEventSource(page, `${app.url}/events`, { untilError: true, settleMs: 0 });
    if (framework === 'koa') {
      // @koa/cors turns `*` into whatever Origin the request carries, once credentials are on.
      expect(reader.headers['access-control-allow-origin']).toBe(evil);
      expect(outcome).toMatchObject({ opened: true, timedOut: false });
    } else {
      // `cors` and @fastify/cors send a literal `*`, which browsers refuse with credentials.
      expect(reader.headers['access-control-allow-origin']).toBe('*');
      expect(outcome).toMatchObject({ opened: false, readyState: 2, hellos: [], timedOut: false });
    }
  });
});

describe('CORS on Fastify: the hook that sets the headers', () => {
  let app: CorsApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  test('with hook: preSerialization the stream carries no CORS headers, since a stream is never serialized', async () => {
    app = await startCorsApp('fastify', { origins: [originA.url], allowedHeaders: RECIPE_HEADERS, fastifyHook: 'preSerialization' });
    const reader = await readSse(`${app.url}/events`, { headers: { origin: originA.url } });
    reader.close();
    expect(reader.status).toBe(200);
    expect(reader.headers['access-control-allow-origin']).toBeUndefined();
  });
});
