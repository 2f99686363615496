/**
 * The default stream attributes on real apps: `http.route` is the route's pattern wherever the
 * framework knows it (params, prefixes and mounts included), and never the URL path, which here
 * always holds an id that must not reach a metric.
 */
import http from 'node:http';
import type { Attributes } from '@opentelemetry/api';
import Router from '@koa/router';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { createSseStream } from '@ssekit/core/node';
import { sse as expressSse } from '@ssekit/express';
import ssePlugin from '@ssekit/fastify';
import { sse as koaSse } from '@ssekit/koa';
import { createSseMetrics, type SseMetrics } from '@ssekit/metrics';
import { readSse, serveHttp, type ServedHttp } from '@ssekit/test-kit';
import { createTestMeter, type SumPoint, type TestMeter } from './meter.js';

let meter: TestMeter;
let sseMetrics: SseMetrics;
let served: ServedHttp | undefined;
let closeApp: (() => Promise<unknown>) | undefined;
beforeEach(() => {
  meter = createTestMeter();
  sseMetrics = createSseMetrics({ meterProvider: meter.meterProvider });
});
afterEach(async () => {
  sseMetrics.close();
  await closeApp?.();
  await served?.close();
  served = closeApp = undefined;
  await meter.shutdown();
});

/** Opens each path in turn, and checks the attributes of the streams open meanwhile, in any order. */
async function expectAttributes(url: string, paths: string[], expected: Attributes[]): Promise<void> {
  const readers = [];
  for (const path of paths) {
    const reader = await readSse(`${url}${path}`);
    await reader.waitForEvents(1);
    readers.push(reader);
  }
  const snapshot = await meter.read();
  for (const reader of readers) reader.close();
  const attributes = (snapshot['ssekit.streams.open']!.points as SumPoint[]).map((point) => point.attributes);
  expect(attributes).toHaveLength(expected.length);
  expect(attributes).toEqual(expect.arrayContaining(expected));
}

const hello = (stream: { send(message: string): Promise<boolean> }) => void stream.send('hello');

test('Express: the pattern of an app route, under app.use(sse()) too; none for a route of a mounted router', async () => {
  const app = express();
  app.get('/rooms/:room/events', expressSse(), (_req, res) => hello(res.sse));
  app.use(expressSse());
  app.get('/users/:user/feed', (_req, res) => hello(res.sse));
  const router = express.Router();
  router.get('/rooms/:room/events', (_req, res) => hello(res.sse));
  app.use('/tenants/:tenant', router);
  served = await serveHttp(http.createServer(app));
  await expectAttributes(
    served.url,
    ['/rooms/42/events', '/users/7/feed', '/tenants/acme/rooms/42/events'],
    [{ 'http.route': '/rooms/:room/events' }, { 'http.route': '/users/:user/feed' }, {}],
  );
});

test('Fastify: routeOptions.url, with the prefix of the plugin that declared it', async () => {
  const app = Fastify();
  await app.register(ssePlugin);
  await app.register(
    (scope, _options, done) => {
      scope.get('/rooms/:room/events', (_request, reply) => hello(reply.sse));
      done();
    },
    { prefix: '/v1' },
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  closeApp = () => app.close();
  const { port } = app.server.address() as { port: number };
  await expectAttributes(`http://127.0.0.1:${port}`, ['/v1/rooms/42/events'], [{ 'http.route': '/v1/rooms/:room/events' }]);
});

test('Koa: the route @koa/router matched, with its prefix; none without a router', async () => {
  const app = new Koa();
  app.use(koaSse());
  const router = new Router({ prefix: '/v1' });
  router.get('/rooms/:room/events', (ctx) => hello(ctx.sse));
  app.use(router.routes());
  app.use((ctx) => {
    if (ctx.path.startsWith('/plain/')) hello(ctx.sse);
  });
  served = await serveHttp(http.createServer(app.callback()));
  await expectAttributes(served.url, ['/v1/rooms/42/events', '/plain/42'], [{ 'http.route': '/v1/rooms/:room/events' }, {}]);
});

test('node:http: no route at all', async () => {
  served = await serveHttp((req, res) => hello(createSseStream(req, res)));
  await expectAttributes(served.url, ['/rooms/42/events'], [{}]);
});
