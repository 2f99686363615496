/** ssekit on plain node:http: createSseStream in a stream group, and a channel. */
import http from 'node:http';
import { createChannel, createStreamGroup, type SseStream } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { channelServer, closeServer, listen, notFound, SHUTDOWN_OPTIONS, type BenchServer, type Payloads } from './common.js';

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
  const shutdown = async () => {
    await group.shutdown(SHUTDOWN_OPTIONS);
    await closeServer(server);
  };
  return channelServer(await listen(server), channel, () => single, shutdown);
}
