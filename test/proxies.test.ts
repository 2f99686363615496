/**
 * Production hardening: what sits between a stream and its client must not stall or cut it.
 * Compression middleware, servers with short timeouts, HTTP/2, and nginx with its default
 * buffering, each on a real server on 127.0.0.1 with a real streaming client. The comment on
 * each describe or test names the defence it stands on: remove that and it fails. Controls show
 * that the hazard is real, so that a passing test is never vacuous.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import compression from 'compression';
import express from 'express';
import Fastify from 'fastify';
import fastifyCompress from '@fastify/compress';
import Koa from 'koa';
import koaCompress from 'koa-compress';
import { type SseStream, type SseStreamOptions } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { sse as expressSse } from '@ssekit/express';
import ssePlugin from '@ssekit/fastify';
import { sse as koaSse } from '@ssekit/koa';
import {
  FRAMEWORKS,
  delay,
  eventually,
  readSse,
  readSseOverHttp2,
  serveHttp,
  startApp,
  startNginx,
  type NginxProxy,
  type SseReader,
  type TestApp,
} from '@ssekit/test-kit';

/** A server under test: where it listens, every stream its route opened, how to stop it. */
interface StreamingServer {
  readonly url: string;
  readonly streams: SseStream[];
  close(): Promise<void>;
}

const fastifyUrl = (app: { server: { address(): unknown } }) => `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

/** The nth stream a server opened (1-based), once its route has run. */
async function streamNumber(server: { streams: SseStream[] }, n: number): Promise<SseStream> {
  await eventually(() => server.streams.length >= n, 2000, `stream #${n} to open on the server`);
  return server.streams[n - 1]!;
}

/** Tracks whether a reader's response has ended, without waiting for it. */
function watchEnd(reader: SseReader): { readonly ended: boolean; readonly at: number | undefined } {
  const state = { ended: false, at: undefined as number | undefined };
  void reader.ended.then(() => {
    state.ended = true;
    state.at = Date.now();
  });
  return state;
}

// ---------------------------------------------------------------------------------------------
// 1. Compression middleware
// ---------------------------------------------------------------------------------------------

const COMPRESSED = ['express + compression()', 'koa + koa-compress', 'fastify + @fastify/compress'] as const;

/** Each framework with its own compression middleware app-wide, threshold 0, and one SSE route. */
async function startCompressed(kind: (typeof COMPRESSED)[number]): Promise<StreamingServer> {
  const streams: SseStream[] = [];
  // The route sends one event and leaves the stream open: a buffering compressor holds it back.
  const route = (stream: SseStream) => {
    streams.push(stream);
    void stream.send({ event: 'first', data: 'now' });
  };
  switch (kind) {
    case 'express + compression()': {
      const app = express();
      app.use(compression({ threshold: 0 }));
      app.get('/events', expressSse(), (_req, res) => route(res.sse));
      return { ...(await serveHttp(app)), streams };
    }
    case 'koa + koa-compress': {
      const app = new Koa();
      app.use(koaCompress({ threshold: 0 }));
      app.use(koaSse());
      app.use((ctx) => route(ctx.sse));
      return { ...(await serveHttp(app.callback())), streams };
    }
    case 'fastify + @fastify/compress': {
      const app = Fastify();
      await app.register(fastifyCompress, { global: true, threshold: 0 });
      await app.register(ssePlugin);
      app.get('/events', (_request, reply) => route(reply.sse));
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { url: fastifyUrl(app), streams, close: () => app.close() };
    }
  }
}

// Defences: `cache-control: no-transform`, which Express's compression() honours (it would
// otherwise gzip the stream), and Koa's `ctx.respond = false`, without which Koa ends the
// response under the stream. @fastify/compress acts only on payloads passed to reply.send()
// (an onSend hook), and the stream writes to the raw response, so no ssekit defence is at
// stake there: that case guards against a regression.
describe('behind compression middleware', () => {
  test.each(COMPRESSED)('%s: an open stream delivers each event at once, uncompressed', async (kind) => {
    const server = await startCompressed(kind);
    let reader: SseReader | undefined;
    try {
      const started = Date.now();
      reader = await readSse(`${server.url}/events`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
      expect(reader.status).toBe(200);
      expect(reader.headers['content-encoding']).toBeUndefined();
      expect(reader.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      // Within a second, while the stream stays open: not when the response ends.
      await reader.waitForEvents(1, 1000);
      expect(Date.now() - started).toBeLessThan(1000);
      const stream = await streamNumber(server, 1);
      expect(stream.closed).toBe(false);
      // A later event passes the compressor too, instead of waiting for its buffer to fill.
      await stream.send({ event: 'second', data: 'later' });
      await reader.waitForEvents(2, 1000);
      expect(reader.events).toEqual([
        { event: 'first', id: undefined, data: 'now' },
        { event: 'second', id: undefined, data: 'later' },
      ]);
      expect(reader.text()).toBe('event: first\ndata: now\n\nevent: second\ndata: later\n\n');
    } finally {
      reader?.close();
      await server.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Servers with short timeouts
// ---------------------------------------------------------------------------------------------

const IDLE_TIMEOUT_MS = 300;
// Node checks requestTimeout and headersTimeout only every connectionsCheckingInterval (30 s by
// default), so without a short interval those two timeouts could never fire during a test.
const SHORT_TIMEOUTS: http.ServerOptions = {
  requestTimeout: 500,
  headersTimeout: 300,
  keepAliveTimeout: 200,
  connectionsCheckingInterval: 100,
};

/**
 * `framework` on a server with short timeouts: `/events` is an ssekit stream that opens and then
 * stays quiet; `/naive` is a hand-rolled event stream that flushes its head and stays quiet,
 * the control showing that these timeouts really cut a quiet response.
 */
async function startWithShortTimeouts(framework: (typeof FRAMEWORKS)[number], options: SseStreamOptions): Promise<StreamingServer> {
  const streams: SseStream[] = [];
  const naive = (res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    res.flushHeaders();
  };
  const open = (stream: SseStream) => {
    streams.push(stream);
    stream.open();
  };
  const withTimeouts = async (listener: http.RequestListener) => {
    const server = http.createServer(SHORT_TIMEOUTS, listener);
    server.setTimeout(IDLE_TIMEOUT_MS);
    return { ...(await serveHttp(server)), streams };
  };
  switch (framework) {
    case 'node':
      return withTimeouts((req, res) => (req.url === '/naive' ? naive(res) : open(createSseStream(req, res, options))));
    case 'express': {
      const app = express();
      app.get('/naive', (_req, res) => naive(res));
      app.get('/events', expressSse(options), (_req, res) => open(res.sse));
      return withTimeouts(app);
    }
    case 'koa': {
      const app = new Koa();
      app.use(koaSse(options));
      app.use((ctx) => {
        if (ctx.path !== '/naive') return open(ctx.sse);
        ctx.respond = false;
        naive(ctx.res);
      });
      return withTimeouts(app.callback());
    }
    case 'fastify': {
      // Fastify's own names: connectionTimeout is server.setTimeout(); `http` reaches createServer.
      const app = Fastify({
        connectionTimeout: IDLE_TIMEOUT_MS,
        requestTimeout: SHORT_TIMEOUTS.requestTimeout!,
        keepAliveTimeout: SHORT_TIMEOUTS.keepAliveTimeout!,
        http: { headersTimeout: SHORT_TIMEOUTS.headersTimeout!, connectionsCheckingInterval: SHORT_TIMEOUTS.connectionsCheckingInterval! },
      });
      await app.register(ssePlugin, options);
      app.get('/naive', (_request, reply) => {
        reply.hijack();
        naive(reply.raw);
      });
      app.get('/events', (_request, reply) => open(reply.sse));
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { url: fastifyUrl(app), streams, close: () => app.close() };
    }
  }
}

// Defences: the stream disables its socket's idle timeout (node-sink's `socket.setTimeout(0)`),
// which the test with heartbeats off stands on; with heartbeats on, either defence alone keeps
// the stream open, so that test also checks that the heartbeats went out. requestTimeout and
// headersTimeout never threaten a stream: Node checks them only while a request is still being
// received, and a GET is complete once its head is in. keepAliveTimeout applies only between
// responses.
describe.each(FRAMEWORKS)('a server with short timeouts on %s', (framework) => {
  let server: StreamingServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  test('the control: a hand-rolled event stream that stays quiet is cut within a second', async () => {
    server = await startWithShortTimeouts(framework, {});
    const started = Date.now();
    const reader = await readSse(`${server.url}/naive`);
    try {
      const end = watchEnd(reader);
      await eventually(() => end.ended, 1500, 'the short timeouts to cut a quiet response (else this server tests nothing)');
      expect(end.at! - started).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS - 50);
    } finally {
      reader.close();
    }
  });

  test.each([
    ['heartbeats every 100 ms', 100],
    ['heartbeats off', 0],
  ])('a stream quiet for 2 s stays open and still delivers (%s)', async (_label, keepAliveMs) => {
    server = await startWithShortTimeouts(framework, { keepAliveMs });
    const reader = await readSse(`${server.url}/events`);
    try {
      const end = watchEnd(reader);
      const stream = await streamNumber(server, 1);
      await delay(2000);
      expect({ ended: end.ended, closeReason: stream.closeReason }).toEqual({ ended: false, closeReason: undefined });
      await expect(stream.send({ event: 'late', data: 'still here' })).resolves.toBe(true);
      await reader.waitForEvents(1, 1000);
      expect(reader.events).toEqual([{ event: 'late', id: undefined, data: 'still here' }]);
      if (keepAliveMs > 0) expect(reader.comments.length).toBeGreaterThanOrEqual(5);
      else expect(reader.comments).toEqual([]);
    } finally {
      reader.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 3. HTTP/2 without TLS (h2c)
// ---------------------------------------------------------------------------------------------

const H2_SERVERS = ['node:http2', 'fastify { http2: true }'] as const;

/**
 * An h2c server whose `/events` route opens a stream and leaves it to the test. `idleTimeoutMs`
 * is `server.setTimeout()` on node:http2, and Fastify's connectionTimeout plus
 * http2SessionTimeout (its own HTTP/2 session timeout) on Fastify.
 */
async function startH2(
  kind: (typeof H2_SERVERS)[number],
  options: SseStreamOptions,
  idleTimeoutMs?: number,
): Promise<StreamingServer & { readonly headerNames: string[] }> {
  const streams: SseStream[] = [];
  // Every header name set on a response, lowercased: Node may drop one silently on HTTP/2.
  const headerNames: string[] = [];
  const recordHeaders = (res: http2.Http2ServerResponse) => {
    const setHeader = res.setHeader.bind(res);
    res.setHeader = (name, value) => {
      headerNames.push(name.toLowerCase());
      return setHeader(name, value);
    };
    // Headers can also arrive all at once, in writeHead's object.
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => http2.Http2ServerResponse;
    res.writeHead = (status: number, ...rest: unknown[]) => {
      const headers = rest.find((arg) => typeof arg === 'object' && arg !== null);
      if (headers) headerNames.push(...Object.keys(headers).map((name) => name.toLowerCase()));
      return writeHead(status, ...rest);
    };
  };
  if (kind === 'node:http2') {
    const server = http2.createServer((req, res) => {
      recordHeaders(res);
      const stream = createSseStream(req, res, options);
      streams.push(stream);
      stream.open();
    });
    if (idleTimeoutMs !== undefined) server.setTimeout(idleTimeoutMs);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      streams,
      headerNames,
      close: () =>
        new Promise<void>((resolve) => {
          for (const stream of streams) stream.close();
          server.close(() => resolve());
          // Node 20's http2 server.close() waits for every session to end on its own.
          for (const session of sessions) session.close();
        }),
    };
  }
  const app = Fastify({
    http2: true,
    ...(idleTimeoutMs === undefined ? {} : { connectionTimeout: idleTimeoutMs, http2SessionTimeout: idleTimeoutMs }),
  });
  await app.register(ssePlugin, options);
  app.get('/events', (_request, reply) => {
    recordHeaders(reply.raw);
    streams.push(reply.sse);
    reply.sse.open();
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: fastifyUrl(app), streams, headerNames, close: () => app.close() };
}

describe.each(H2_SERVERS)('h2c on %s', (kind) => {
  let server: StreamingServer | undefined;
  let reader: Awaited<ReturnType<typeof readSseOverHttp2>> | undefined;
  afterEach(async () => {
    reader?.close();
    reader = undefined;
    await server?.close();
    server = undefined;
  });

  // Defence: the stream sets `connection` on HTTP/1 only. Node 20's compatibility layer drops a
  // `connection: keep-alive` set on an h2 response (with a one-time UnsupportedWarning) rather
  // than throwing, so the client never shows it: the header names set on the response do.
  test('events arrive one by one as they are sent, and no connection header is ever set', async () => {
    const h2 = await startH2(kind, { keepAliveMs: 0 });
    server = h2;
    reader = await readSseOverHttp2(h2.url, '/events');
    expect(reader.headers[':status']).toBe(200);
    expect(reader.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(reader.headers['connection']).toBeUndefined();
    expect(h2.headerNames).toContain('content-type');
    expect(h2.headerNames).not.toContain('connection');
    const stream = await streamNumber(h2, 1);
    for (let i = 1; i <= 3; i++) {
      await stream.send({ id: String(i), data: `event ${i}` });
      // The next event goes out only after this one arrived: nothing can be held back for later.
      await reader.waitForEvents(i, 1000);
      expect(reader.events).toHaveLength(i);
    }
    expect(reader.events.map((event) => event.data)).toEqual(['event 1', 'event 2', 'event 3']);
  });

  // The control, and the reason for the next test: the h2 idle timeout belongs to the session,
  // which ssekit leaves alone (it disables only its own h2 stream's timeout, wire format 7.3).
  test(`with heartbeats off, the idle timeout of ${IDLE_TIMEOUT_MS} ms cuts a quiet stream with its session`, async () => {
    server = await startH2(kind, { keepAliveMs: 0 }, IDLE_TIMEOUT_MS);
    reader = await readSseOverHttp2(server.url, '/events');
    const stream = await streamNumber(server, 1);
    await eventually(() => stream.closed, 1500, 'the session timeout to cut the quiet stream');
    // The server's own timeout did it, yet the stream can only see its client gone.
    expect(stream.closeReason).toBe('client');
  });

  // Defence: heartbeats. A write on the stream is what keeps the shared session alive.
  test(`a stream quiet for 2 s survives an idle timeout of ${IDLE_TIMEOUT_MS} ms thanks to heartbeats`, async () => {
    server = await startH2(kind, { keepAliveMs: 100 }, IDLE_TIMEOUT_MS);
    reader = await readSseOverHttp2(server.url, '/events');
    const stream = await streamNumber(server, 1);
    await delay(2000);
    expect(stream.closeReason).toBeUndefined();
    await expect(stream.send({ event: 'late', data: 'still here' })).resolves.toBe(true);
    await reader.waitForEvents(1, 1000);
    expect(reader.events).toEqual([{ event: 'late', id: undefined, data: 'still here' }]);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. nginx as a reverse proxy, default buffering
// ---------------------------------------------------------------------------------------------

const PROXY_READ_TIMEOUT_MS = 1000;

/** readSse, failing with `why` when the response head does not arrive within `ms`. */
async function readSseWithin(url: string, ms: number, why: string): Promise<SseReader> {
  const pending = readSse(url);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no response head within ${ms} ms: ${why}`)), ms);
  });
  try {
    return await Promise.race([pending, timedOut]);
  } catch (error) {
    // Whatever arrives later must not leak a connection.
    pending.then(
      (reader) => reader.close(),
      () => {},
    );
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

// Defences: `x-accel-buffering: no`, which turns off nginx's default proxy_buffering for this
// response, and heartbeats, which keep nginx's proxy_read_timeout from cutting a quiet stream.
// With buffering on, nginx 1.22 still forwards each body chunk to a client that keeps up, but
// it holds the response head back until the first body byte, and it soaks up whatever a slow
// client does not read into temporary files (up to 1 GiB by default), hiding backpressure from
// the server.
describe.each(FRAMEWORKS)('through nginx (proxy_buffering on) to %s', (framework) => {
  const maxBufferedBytes = 64 * 1024;
  let withHeartbeats: TestApp | undefined;
  let withoutHeartbeats: TestApp | undefined;
  let nginx: NginxProxy | undefined;
  const readers: SseReader[] = [];

  beforeAll(async () => {
    try {
      withHeartbeats = await startApp(framework, ({ stream }) => stream.open(), { options: { keepAliveMs: 300 } });
      withoutHeartbeats = await startApp(framework, ({ stream }) => stream.open(), { options: { keepAliveMs: 0, maxBufferedBytes } });
      nginx = await startNginx({
        locations: { '/heartbeats/': withHeartbeats.url, '/quiet/': withoutHeartbeats.url },
        directives: [`proxy_read_timeout ${PROXY_READ_TIMEOUT_MS / 1000}s;`],
      });
    } catch (error) {
      await closeAll();
      throw error;
    }
  });
  afterEach(() => {
    for (const reader of readers.splice(0)) reader.close();
  });
  afterAll(closeAll);

  async function closeAll() {
    await nginx?.close();
    await withHeartbeats?.close();
    await withoutHeartbeats?.close();
    nginx = withHeartbeats = withoutHeartbeats = undefined;
  }

  async function read(path: string): Promise<SseReader> {
    if (!nginx) throw new Error('nginx did not start; see the error in beforeAll');
    // Well under proxy_read_timeout: a head that nginx holds back must not slip through on a timeout.
    const reader = await readSseWithin(`${nginx.url}${path}`, 700, 'nginx is holding the stream back (proxy_buffering)');
    readers.push(reader);
    return reader;
  }

  test('the head arrives at once, and each event arrives before the next is sent', async () => {
    const before = withoutHeartbeats!.streams.length;
    // No heartbeats on this route: nothing but open() can bring the head through.
    const reader = await read('/quiet/events');
    expect(reader.status).toBe(200);
    expect(reader.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    // nginx consumes the directive instead of passing it on.
    expect(reader.headers['x-accel-buffering']).toBeUndefined();
    expect(reader.text()).toBe('');
    const stream = await streamNumber(withoutHeartbeats!, before + 1);
    for (let i = 1; i <= 3; i++) {
      await stream.send({ id: String(i), data: `event ${i}` });
      await reader.waitForEvents(i, 500);
    }
    expect(reader.events.map((event) => event.data)).toEqual(['event 1', 'event 2', 'event 3']);
  });

  test('a client that stops reading is cut off at maxBufferedBytes: backpressure crosses nginx', async () => {
    const before = withoutHeartbeats!.streams.length;
    const reader = await read('/quiet/events');
    const stream = await streamNumber(withoutHeartbeats!, before + 1);
    await stream.send('start');
    await reader.waitForEvents(1, 500);
    reader.pause();
    const chunk = 'z'.repeat(32 * 1024);
    let sent = 0;
    // Fire and forget, at most 128 MiB: nginx buffering to disk would take all of it.
    for (let i = 0; i < 4096 && !stream.closed; i++) {
      void stream.send(chunk);
      sent += chunk.length;
      // Let the socket flush between writes: only a peer that stops taking bytes fills the buffer.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await eventually(() => stream.closed, 3000, `the stream to overflow (sent ${sent} bytes without backpressure)`);
    expect({ closeReason: stream.closeReason, sentBytes: sent }).toEqual({ closeReason: 'overflow', sentBytes: expect.any(Number) });
    // Socket buffers on both hops and nginx's few proxy buffers hold megabytes (about 10 MiB
    // on loopback), never the whole 128 MiB.
    expect(sent).toBeLessThan(64 * 1024 * 1024);
    // The overflow dropped the upstream connection, and nginx passes that on to the client.
    const end = watchEnd(reader);
    reader.resume();
    await eventually(() => end.ended, 2000, 'nginx to end the client connection');
  });

  test(`heartbeats keep a stream quiet for 3 s open past proxy_read_timeout ${PROXY_READ_TIMEOUT_MS} ms`, async () => {
    const before = withHeartbeats!.streams.length;
    const reader = await read('/heartbeats/events');
    const end = watchEnd(reader);
    const stream = await streamNumber(withHeartbeats!, before + 1);
    await delay(3000);
    expect({ ended: end.ended, closeReason: stream.closeReason }).toEqual({ ended: false, closeReason: undefined });
    // The heartbeats crossed nginx too, which is what reset its read timer.
    expect(reader.comments.length).toBeGreaterThanOrEqual(5);
    await stream.send({ event: 'late', data: 'same connection' });
    await reader.waitForEvents(1, 1000);
    expect(reader.events).toEqual([{ event: 'late', id: undefined, data: 'same connection' }]);
  });

  test('with heartbeats off, nginx cuts the quiet stream at proxy_read_timeout: why heartbeats exist', async () => {
    const before = withoutHeartbeats!.streams.length;
    const started = Date.now();
    const reader = await read('/quiet/events');
    const end = watchEnd(reader);
    const stream = await streamNumber(withoutHeartbeats!, before + 1);
    await eventually(() => end.ended, 3000, 'nginx to cut the quiet stream');
    expect(end.at! - started).toBeGreaterThanOrEqual(PROXY_READ_TIMEOUT_MS - 100);
    expect(reader.events).toEqual([]);
    // nginx dropped the upstream connection too, and the server saw the client leave.
    await eventually(() => stream.closed, 2000, 'the server to see nginx leave');
    expect(stream.closeReason).toBe('client');
    expect(await nginx!.errorLog()).toMatch(/upstream timed out .* while reading upstream/);
  });
});
