/** @ssekit/fastify augments Fastify's types, so handlers reach `reply.sse` with no cast. */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { SseStream } from '@ssekit/core';
import ssePlugin, { ssePlugin as namedSsePlugin } from '@ssekit/fastify';
import type { Equal, Expect } from './assert.js';

type MyEvents = { tick: { n: number }; message: string };

// Fastify: FastifyReply.sse, a default-exported plugin, also exported by name
type _samePlugin = Expect<Equal<typeof ssePlugin, typeof namedSsePlugin>>;
const fastify = Fastify();
void fastify.register(ssePlugin, { keepAliveMs: 20_000, maxBufferedBytes: 1024 });
fastify.get('/events', (request, reply) => {
  void reply.sse.send({ event: 'hello', data: 'world' });
  // @ts-expect-error reply.sse is an SseStream, not any
  reply.sse.notAMethod();
  // @ts-expect-error reply.sse is read-only
  reply.sse = reply.sse; // eslint-disable-line no-self-assign
});
function fastifyHandler(request: FastifyRequest, reply: FastifyReply): void {
  type _sse = Expect<Equal<typeof reply.sse, SseStream<any>>>;
  const typed: SseStream<MyEvents> = reply.sse;
  void typed.send('hi');
  // @ts-expect-error tick carries { n: number }
  void typed.send({ event: 'tick', data: 'x' });
}
fastify.get('/typed', fastifyHandler);
