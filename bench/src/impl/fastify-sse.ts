/**
 * @fastify/sse 0.6: `reply.sse` on a route with `{ sse: true }`, kept open with `keepAlive()`.
 * It has no channel, so the broadcast is a set of contexts and one `send` to each, which
 * serializes per client. `send` resolves after a drain when the socket was full.
 */
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyPluginAsync, type FastifyReply } from 'fastify';
import type { EventData } from '../payload.js';
import type { BenchServer } from './common.js';

// @fastify/sse and @ssekit/fastify both declare `FastifyReply.sse`, with different types, so
// their type declarations cannot meet in one program: load this one untyped.
const fastifySse = createRequire(import.meta.url)('@fastify/sse') as FastifyPluginAsync;

/** The part of @fastify/sse's `reply.sse` used here, as its README documents it. */
interface SseContext {
  keepAlive(): void;
  sendHeaders(): void;
  onClose(callback: () => void): void;
  send(message: { id?: string; data: unknown }): Promise<void>;
}

const contextOf = (reply: FastifyReply) => (reply as unknown as { sse: SseContext }).sse;

export async function start(): Promise<BenchServer> {
  const clients = new Set<SseContext>();
  let single: SseContext | undefined;
  const app = Fastify();
  await app.register(fastifySse);
  const open = (reply: FastifyReply): SseContext => {
    const context = contextOf(reply);
    context.keepAlive();
    context.sendHeaders();
    // The plugin commits the head but Node sends it with the first event; flush it now so
    // that the client sees the stream open, as with every other server here.
    reply.raw.flushHeaders();
    return context;
  };
  // `sse` is a route option that @fastify/sse adds to Fastify's types, which are not loaded.
  const sseRoute = { sse: true } as object;
  app.get('/events', sseRoute, async (_request, reply) => {
    const context = open(reply);
    clients.add(context);
    context.onClose(() => clients.delete(context));
  });
  app.get('/single', sseRoute, async (_request, reply) => {
    single = open(reply);
  });
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 1024 });
  const message = (data: EventData) => ({ id: String(data.seq), data });
  return {
    port: (app.server.address() as AddressInfo).port,
    streams: () => clients.size,
    publish(data) {
      const event = message(data);
      for (const context of clients) context.send(event).catch(noop);
    },
    hasSingle: () => single !== undefined,
    sendSingle: (data) => single!.send(message(data)),
  };
}

function noop(): void {}
