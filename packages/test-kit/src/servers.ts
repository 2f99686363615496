import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import Koa from 'koa';
import Koa2 from 'koa2';
import {
  createStreamGroup,
  type SseAdmission,
  type SseLimit,
  type SseStream,
  type SseStreamGroup,
  type SseStreamOptions,
} from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { sse as expressSse } from '@ssekit/express';
import ssePlugin from '@ssekit/fastify';
import { sse as koaSse } from '@ssekit/koa';

/** Every server ssekit runs on, at the framework majors the demo and the docs use. */
export const FRAMEWORKS = ['node', 'express', 'fastify', 'koa'] as const;
/**
 * {@link FRAMEWORKS} and the older majors that the adapters' peer ranges also claim (Express 4,
 * Koa 2): the contract, channel and large-event suites run once per entry.
 */
export const TARGETS = ['node', 'express', 'express4', 'fastify', 'koa', 'koa2'] as const;
export type Framework = (typeof TARGETS)[number];

// Express 4 and Koa 2 are installed under aliases, each with its own types. Their APIs used here
// are those of Express 5 and Koa 3, so they share the code below through those types.
const EXPRESS = { express, express4: express4 as unknown as typeof express };
const KOA = { koa: Koa, koa2: Koa2 as unknown as typeof Koa };

/** What a framework-neutral test route gets to work with. */
export interface RouteContext {
  /** `res.sse`, `reply.sse`, `ctx.sse`, or `createSseStream(req, res)`. */
  readonly stream: SseStream;
  /** The Node request underneath. */
  readonly request: http.IncomingMessage;
  /** Answers with a plain status and body through the framework's own API. */
  reject(status: number, body?: string): void;
}

export type TestRoute = (context: RouteContext) => unknown;

export interface TestApp {
  readonly framework: Framework;
  readonly url: string;
  /** Every stream the route was handed, in order. */
  readonly streams: SseStream[];
  /** Errors the framework reported (Koa's `app.on('error')`, Fastify's error handler, ...). */
  readonly errors: unknown[];
  /** The group every opened stream joined: the adapter's own, or one made for node:http. */
  readonly group: SseStreamGroup;
  close(): Promise<void>;
}

export interface StartOptions {
  options?: SseStreamOptions;
  /** HTML served at `/page`, on the same origin as `/events`, for browser tests. */
  page?: string;
  /** A limit keyed by each framework's own request object (all of them have `.headers`). */
  limit?: SseLimit<{ headers: http.IncomingHttpHeaders }>;
  /** The group's admission: how fast streams open, how many replays run at once. */
  admission?: SseAdmission;
}

/** A header that middleware running before the route sets, which the stream must keep. */
export const EARLIER_HEADER = { name: 'x-request-id', value: 'req-42' } as const;

/**
 * Starts `framework` on 127.0.0.1, port 0, with an earlier middleware that sets
 * {@link EARLIER_HEADER}, ssekit mounted the framework's own way, and `route` at `/events`.
 */
export async function startApp(
  framework: Framework,
  route: TestRoute,
  { options, page = '', limit, admission }: StartOptions = {},
): Promise<TestApp> {
  const streams: SseStream[] = [];
  const errors: unknown[] = [];
  const run = (context: RouteContext) => {
    streams.push(context.stream);
    Promise.resolve()
      .then(() => route(context))
      .catch((error) => errors.push(error));
  };

  switch (framework) {
    case 'node': {
      const group = createStreamGroup({ limit, admission });
      const server = http.createServer((req, res) => {
        res.setHeader(EARLIER_HEADER.name, EARLIER_HEADER.value);
        // Routed by path, as the frameworks route: a query string (a token, say) does not matter.
        const path = req.url?.split('?')[0];
        if (path === '/page') return void res.writeHead(200, { 'content-type': 'text/html' }).end(page);
        if (path !== '/events') return void res.writeHead(404).end();
        const reject = (status: number, body = '') => void res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
        run({ stream: createSseStream(req, res, { ...options, group }), request: req, reject });
      });
      return listen(framework, server, streams, errors, group);
    }
    case 'express':
    case 'express4': {
      const app = EXPRESS[framework]();
      app.use((_req, res, next) => {
        res.set(EARLIER_HEADER.name, EARLIER_HEADER.value);
        next();
      });
      const events = expressSse({ ...options, limit, admission });
      app.use(events);
      app.get('/page', (_req, res) => void res.type('html').send(page));
      app.get('/events', (req, res) => {
        run({ stream: res.sse, request: req, reject: (status, body = '') => void res.status(status).type('text/plain').send(body) });
      });
      return listen(framework, http.createServer(app), streams, errors, events.sseStreams);
    }
    case 'koa':
    case 'koa2': {
      const app = new KOA[framework]();
      app.on('error', (error) => errors.push(error));
      app.use(async (ctx, next) => {
        ctx.set(EARLIER_HEADER.name, EARLIER_HEADER.value);
        await next();
      });
      const events = koaSse({ ...options, limit, admission });
      app.use(events);
      app.use((ctx) => {
        if (ctx.path === '/page') {
          ctx.type = 'html';
          ctx.body = page;
          return;
        }
        if (ctx.path !== '/events') return;
        run({
          stream: ctx.sse,
          request: ctx.req,
          reject: (status, body = '') => {
            ctx.status = status;
            ctx.type = 'text/plain';
            ctx.body = body;
          },
        });
      });
      return listen(framework, http.createServer(app.callback()), streams, errors, events.sseStreams);
    }
    case 'fastify': {
      const app = Fastify();
      await app.register(ssePlugin, { ...options, limit, admission });
      app.addHook('onRequest', (_request, reply, done) => {
        reply.header(EARLIER_HEADER.name, EARLIER_HEADER.value);
        done();
      });
      app.setErrorHandler((error, _request, reply) => {
        errors.push(error);
        void reply.code(500).send();
      });
      app.get('/page', (_request, reply) => void reply.type('text/html').send(page));
      // A synchronous handler: Fastify then waits for the reply to be sent or hijacked.
      app.get('/events', (request, reply) => {
        run({
          stream: reply.sse,
          request: request.raw,
          reject: (status, body = '') => void reply.code(status).type('text/plain').send(body),
        });
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as AddressInfo;
      return { framework, url: `http://127.0.0.1:${port}`, streams, errors, group: app.sseStreams, close: () => app.close() };
    }
  }
}

/** A server on 127.0.0.1, port 0, and how to close it with every connection it holds. */
export interface ServedHttp {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `handler` (or an `http.Server`) on 127.0.0.1, port 0. */
export async function serveHttp(handler: http.RequestListener | http.Server): Promise<ServedHttp> {
  const server = handler instanceof http.Server ? handler : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function listen(
  framework: Framework,
  server: http.Server,
  streams: SseStream[],
  errors: unknown[],
  group: SseStreamGroup,
): Promise<TestApp> {
  const served = await serveHttp(server);
  return {
    framework,
    url: served.url,
    streams,
    errors,
    group,
    close: () => {
      for (const stream of streams) stream.close();
      return served.close();
    },
  };
}
