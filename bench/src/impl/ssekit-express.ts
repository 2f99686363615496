/** ssekit on Express: the `sse()` middleware, `res.sse`, and a channel. */
import http from 'node:http';
import express from 'express';
import { createChannel, sse, type SseStream } from '@ssekit/express';
import { channelServer, closeServer, keepAliveOption, listen, SHUTDOWN_OPTIONS, type BenchServer, type Payloads } from './common.js';

export async function start(): Promise<BenchServer> {
  const channel = createChannel<Payloads>();
  const events = sse(keepAliveOption());
  let single: SseStream<Payloads> | undefined;
  const app = express();
  app.get('/events', events, (_req, res) => {
    channel.subscribe(res.sse);
  });
  app.get('/single', events, (_req, res) => {
    single = res.sse;
    single.open();
  });
  const server = http.createServer(app);
  const shutdown = async () => {
    await events.sseStreams.shutdown(SHUTDOWN_OPTIONS);
    await closeServer(server);
  };
  return channelServer(await listen(server), channel, () => single, shutdown);
}
