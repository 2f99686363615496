import type { FastifyPluginCallback, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import {
  createNodeSink,
  createSseStreamFromSink,
  resolveStreamOptions,
  type ResolvedStreamOptions,
  type SseStream,
  type SseStreamOptions,
} from '@ssekit/core';

export * from '@ssekit/core';

declare module 'fastify' {
  interface FastifyReply {
    /** This reply as a Server-Sent Events stream, made on first use. */
    // `any` lets a handler assign it to a typed `SseStream<MyEvents>` without a cast.
    readonly sse: SseStream<any>;
  }
}

/** Options of {@link ssePlugin}: those of every ssekit stream. */
export type SseFastifyOptions = SseStreamOptions;

const kStream = Symbol('ssekit.stream');
type ReplyWithStream = FastifyReply & { [kStream]: SseStream | null };

const plugin: FastifyPluginCallback<SseFastifyOptions> = (fastify, options, done) => {
  let resolved: ResolvedStreamOptions;
  try {
    resolved = resolveStreamOptions({
      onError: (error) => fastify.log.error({ err: error }, 'ssekit: a piped source failed'),
      ...options,
    });
  } catch (error) {
    return done(error as Error);
  }
  const streams = new Set<SseStream>();

  function createStream(reply: FastifyReply): SseStream {
    const sink = createNodeSink(reply.request.raw, reply.raw, {
      beforeOpen() {
        // The stream owns the response from here on; Fastify must not send it.
        reply.hijack();
        // Headers set by hooks (CORS, auth) live on the reply until Fastify sends it.
        for (const [name, value] of Object.entries(reply.getHeaders())) {
          if (value !== undefined) reply.raw.setHeader(name, value);
        }
      },
    });
    const stream = createSseStreamFromSink(sink, resolved);
    streams.add(stream);
    stream.onClose(() => streams.delete(stream));
    return stream;
  }

  fastify.decorateReply(kStream, null);
  fastify.decorateReply('sse', {
    getter(this: FastifyReply) {
      const reply = this as ReplyWithStream;
      return (reply[kStream] ??= createStream(reply));
    },
  });
  // Open streams never end by themselves, so without this `app.close()` would wait forever.
  fastify.addHook('preClose', (hookDone) => {
    for (const stream of streams) stream.close();
    hookDone();
  });
  done();
};

/**
 * The Fastify plugin that gives each reply a `reply.sse` stream. The stream opens on its first
 * write, copying headers set by hooks, and every open stream ends on `app.close()`.
 *
 * @example
 * ```ts
 * await app.register(ssePlugin, { keepAliveMs: 20_000 });
 * app.get('/events', (request, reply) => {
 *   reply.sse.send({ event: 'hello', data: 'world' });
 * });
 * ```
 */
export const ssePlugin = fp(plugin, { fastify: '5.x', name: '@ssekit/fastify' });
export default ssePlugin;
