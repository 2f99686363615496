/** ssekit on Fastify: the plugin, `reply.sse`, a channel, and `app.close()` for shutdown. */
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import ssePlugin, { createChannel, type SseStream } from '@ssekit/fastify';
import { SHUTDOWN_OPTIONS, type BenchServer, type Payloads } from './common.js';

export async function start(): Promise<BenchServer> {
  const channel = createChannel<Payloads>();
  let single: SseStream<Payloads> | undefined;
  const app = Fastify();
  await app.register(ssePlugin, { shutdown: SHUTDOWN_OPTIONS });
  app.get('/events', (_request, reply) => {
    channel.subscribe(reply.sse);
  });
  app.get('/single', (_request, reply) => {
    single = reply.sse;
    single.open();
  });
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 1024 });
  return {
    port: (app.server.address() as AddressInfo).port,
    streams: () => channel.size,
    publish: (data) => channel.publish({ data }),
    hasSingle: () => single !== undefined,
    sendSingle: (data) => single!.send({ id: data.seq, data }),
    // The plugin's preClose hook ends its streams with the `shutdown` option; then Fastify
    // closes the server.
    shutdown: () => app.close(),
  };
}
