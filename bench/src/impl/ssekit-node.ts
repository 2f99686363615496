/** ssekit on plain node:http: createSseStream in a stream group, and a channel. */
import http from 'node:http';
import { createChannel, createSseStream, createStreamGroup, type SseStream } from '@ssekit/core';
import { closeServer, listen, notFound, SHUTDOWN_OPTIONS, type BenchServer, type Payloads } from './common.js';

export async function start(): Promise<BenchServer> {
  const channel = createChannel<Payloads>();
  const group = createStreamGroup();
  let single: SseStream<Payloads> | undefined;
  const server = http.createServer((req, res) => {
    if (req.url === '/events') channel.subscribe(createSseStream(req, res, { group }));
    else if (req.url === '/single') {
      single = createSseStream<Payloads>(req, res, { group });
      single.open();
    } else notFound(res);
  });
  const port = await listen(server);
  return {
    port,
    streams: () => channel.size,
    publish: (data) => channel.publish({ data }),
    hasSingle: () => single !== undefined,
    sendSingle: (data) => single!.send({ id: data.seq, data }),
    async shutdown() {
      await group.shutdown(SHUTDOWN_OPTIONS);
      await closeServer(server);
    },
  };
}
