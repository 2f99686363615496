/**
 * Hono's own `streamSSE` helper on Hono's node server, as its documentation shows it: a route
 * whose callback keeps the stream open, and `writeSSE` to each stream of the broadcast, which
 * formats per client. `writeSSE` resolves once the TransformStream took the event.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { EventData } from '../payload.js';
import type { BenchServer } from './common.js';

export async function start(): Promise<BenchServer> {
  const clients = new Set<SSEStreamingApi>();
  let single: SSEStreamingApi | undefined;
  const app = new Hono();
  // The callback's promise is the stream's life: it ends when the client goes away.
  const open = (onOpen: (stream: SSEStreamingApi) => void) => (stream: SSEStreamingApi) =>
    new Promise<void>((resolve) => {
      onOpen(stream);
      stream.onAbort(() => resolve());
    });
  app.get('/events', (c) =>
    streamSSE(
      c,
      open((stream) => {
        clients.add(stream);
        stream.onAbort(() => {
          clients.delete(stream);
        });
      }),
    ),
  );
  app.get('/single', (c) =>
    streamSSE(
      c,
      open((stream) => void (single = stream)),
    ),
  );
  const server: ServerType = await new Promise((resolve) => {
    const listening = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(listening));
  });
  const message = (data: EventData) => ({ id: String(data.seq), data: JSON.stringify(data) });
  return {
    port: (server.address() as AddressInfo).port,
    streams: () => clients.size,
    publish(data) {
      const event = message(data);
      for (const stream of clients) stream.writeSSE(event).catch(noop);
    },
    hasSingle: () => single !== undefined,
    sendSingle: (data) => single!.writeSSE(message(data)),
  };
}

function noop(): void {}
