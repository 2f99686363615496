/**
 * Each adapter augments its framework's types, so handlers reach the stream with no cast:
 * Express `res.sse`, Fastify `reply.sse`, Koa `ctx.sse`.
 */
import express from 'express';
import type { Request, Response } from 'express';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import Koa from 'koa';
import type { Context, Middleware } from 'koa';
import type { SseStream } from '@ssekit/core';
import { sse as expressSse } from '@ssekit/express';
import ssePlugin, { ssePlugin as namedSsePlugin } from '@ssekit/fastify';
import { sse as koaSse } from '@ssekit/koa';
import type { Equal, Expect } from './assert.js';

type MyEvents = { tick: { n: number }; message: string };

// Express: Response.sse
const app = express();
app.get('/events', expressSse({ keepAliveMs: 20_000 }), (req, res) => {
  void res.sse.send({ event: 'hello', data: { at: Date.now() } });
  void res.sse.send('plain text');
  // @ts-expect-error res.sse is an SseStream, not any
  res.sse.notAMethod();
});
function expressHandler(req: Request, res: Response): void {
  void res.sse.send({ event: 'tick', data: 1 });
  res.sse.close();
  type _sse = Expect<Equal<typeof res.sse, SseStream<any>>>;
  // Narrowing the untyped stream to an event map needs no cast.
  const typed: SseStream<MyEvents> = res.sse;
  void typed.send({ event: 'tick', data: { n: 1 } });
  // @ts-expect-error tick carries { n: number }
  void typed.send({ event: 'tick', data: 'x' });
  // @ts-expect-error nope is not an event of MyEvents
  void typed.send({ event: 'nope', data: 1 });
}
app.get('/typed', expressHandler);
// @ts-expect-error options are checked
expressSse({ keepAliveMs: '20s' });

// Fastify: FastifyReply.sse, a default-exported plugin, also exported by name
type _samePlugin = Expect<Equal<typeof ssePlugin, typeof namedSsePlugin>>;
const fastify = Fastify();
void fastify.register(ssePlugin, { keepAliveMs: 20_000, maxBufferedBytes: 1024 });
fastify.get('/events', (request, reply) => {
  void reply.sse.send({ event: 'hello', data: 'world' });
  // @ts-expect-error reply.sse is an SseStream, not any
  reply.sse.notAMethod();
  // @ts-expect-error reply.sse is read-only
  reply.sse = reply.sse;
});
function fastifyHandler(request: FastifyRequest, reply: FastifyReply): void {
  type _sse = Expect<Equal<typeof reply.sse, SseStream<any>>>;
  const typed: SseStream<MyEvents> = reply.sse;
  void typed.send('hi');
  // @ts-expect-error tick carries { n: number }
  void typed.send({ event: 'tick', data: 'x' });
}
fastify.get('/typed', fastifyHandler);

// Koa: DefaultContext.sse
const koa = new Koa();
koa.use(koaSse({ retryMs: 3000 }));
koa.use(async (ctx) => {
  await ctx.sse.send({ event: 'hello', data: { at: Date.now() } });
  // @ts-expect-error ctx.sse is an SseStream, not any
  ctx.sse.notAMethod();
});
const koaMiddleware: Middleware = (ctx, next) => {
  const typed: SseStream<MyEvents> = ctx.sse;
  void typed.send({ event: 'tick', data: { n: 1 } });
  // @ts-expect-error tick carries { n: number }
  void typed.send({ event: 'tick', data: 'x' });
  return next();
};
koa.use(koaMiddleware);
function koaHandler(ctx: Context): void {
  type _sse = Expect<Equal<typeof ctx.sse, SseStream<any>>>;
  ctx.sse.close();
}
void koaHandler;
