/**
 * @ssekit/koa augments Koa's types, so handlers reach `ctx.sse` with no cast. Also type-checked
 * under Koa 2's types (test/types/legacy).
 */
import Koa from 'koa';
import type { Context, Middleware } from 'koa';
import type { SseStream } from '@ssekit/core';
import { sse as koaSse } from '@ssekit/koa';
import type { Equal, Expect } from './assert.js';

type MyEvents = { tick: { n: number }; message: string };

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
