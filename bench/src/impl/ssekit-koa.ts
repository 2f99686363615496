/** ssekit on Koa: the `sse()` middleware, `ctx.sse`, and a channel. */
import http from 'node:http';
import Koa from 'koa';
import { createChannel, sse, type SseStream } from '@ssekit/koa';
import { channelServer, closeServer, keepAliveOption, listen, SHUTDOWN_OPTIONS, type BenchServer, type Payloads } from './common.js';

export async function start(): Promise<BenchServer> {
  const channel = createChannel<Payloads>();
  const events = sse(keepAliveOption());
  let single: SseStream<Payloads> | undefined;
  const app = new Koa();
  app.use(events);
  app.use((ctx) => {
    if (ctx.path === '/events') channel.subscribe(ctx.sse);
    else if (ctx.path === '/single') {
      single = ctx.sse;
      single.open();
    }
  });
  const server = http.createServer(app.callback());
  const shutdown = async () => {
    await events.sseStreams.shutdown(SHUTDOWN_OPTIONS);
    await closeServer(server);
  };
  return channelServer(await listen(server), channel, () => single, shutdown);
}
