/**
 * @ssekit/web on Hono's node server: `createSseResponse` in a Hono route, a stream group and a
 * channel. The Fetch API path on Node: events go through a web ReadableStream, which the node
 * server pumps into the Node response.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { createChannel, createSseResponse, createStreamGroup, type SseStream } from '@ssekit/web';
import { channelServer, SHUTDOWN_OPTIONS, type BenchServer, type Payloads } from './common.js';

export async function start(): Promise<BenchServer> {
  const channel = createChannel<Payloads>();
  const group = createStreamGroup();
  let single: SseStream<Payloads> | undefined;
  const app = new Hono();
  app.get('/events', (c) => createSseResponse<Payloads>(c.req.raw, (stream) => channel.subscribe(stream), { group }));
  app.get('/single', (c) => createSseResponse<Payloads>(c.req.raw, (stream) => void (single = stream), { group }));
  const server: ServerType = await new Promise((resolve) => {
    const listening = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(listening));
  });
  const shutdown = async () => {
    await group.shutdown(SHUTDOWN_OPTIONS);
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  };
  return channelServer((server.address() as AddressInfo).port, channel, () => single, shutdown);
}
