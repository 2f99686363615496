/**
 * Koa by hand, for reference: the baseline's code in Koa middleware (taking the response over
 * with `ctx.respond = false`), no SSE library. What Koa itself costs per connection and write.
 */
import http from 'node:http';
import Koa from 'koa';
import { createHandWrittenBroadcast, listen, type BenchServer } from './common.js';

export async function start(): Promise<BenchServer> {
  const { attach, ...broadcast } = createHandWrittenBroadcast();
  const app = new Koa();
  app.use((ctx) => {
    if (ctx.path !== '/events' && ctx.path !== '/single') return;
    ctx.respond = false;
    attach(ctx.res, ctx.path === '/single');
  });
  return { port: await listen(http.createServer(app.callback())), ...broadcast };
}
