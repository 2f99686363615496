/** ssekit on Fastify: the plugin, `reply.sse`, a channel, and `app.close()` for shutdown. */
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import ssePlugin, { createChannel, type SseStream } from '@ssekit/fastify';
import { channelServer, keepAliveOption, SHUTDOWN_OPTIONS, type BenchServer, type Payloads } from './common.js';

export async function start(): Promise<BenchServer> {
  const channel = createChannel<Payloads>();
  let single: SseStream<Payloads> | undefined;
  const app = Fastify();
  await app.register(ssePlugin, { shutdown: SHUTDOWN_OPTIONS, ...keepAliveOption() });
  app.get('/events', (_request, reply) => {
    channel.subscribe(reply.sse);
  });
  app.get('/single', (_request, reply) => {
    single = reply.sse;
    single.open();
  });
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 1024 });
  // The plugin's preClose hook ends its streams with the `shutdown` option; then Fastify closes
  // the server.
  return channelServer(
    (app.server.address() as AddressInfo).port,
    channel,
    () => single,
    () => app.close(),
  );
}
