import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { formatEvent, type SseShutdownOptions, type SseStream, type SseStreamGroup } from '@ssekit/core';
import { createNodeSink } from '@ssekit/core/node';
import { createSseStreamFromSink, kLazyStream, lazyStream, resolveAdapterOptions, type SseAdapterOptions } from '@ssekit/core/adapter';

// What an application uses, so that it needs no import of @ssekit/core of its own.
export {
  createChannel,
  createMemoryBackplane,
  createMemoryHistory,
  createStreamGroup,
  formatComment,
  formatEvent,
  formatRetry,
  isValidEventId,
  MAX_EVENT_ID_LENGTH,
  SSE_DIAGNOSTICS,
  SseError,
  type Backplane,
  type BackplaneEntry,
  type BackplanePublish,
  type BackplaneReplay,
  type Channel,
  type ChannelEvent,
  type ChannelMessage,
  type ChannelOptions,
  type FormatOptions,
  type HistoryStore,
  type MemoryBackplaneOptions,
  type MemoryHistoryOptions,
  type SseCloseReason,
  type SseBackplaneMessage,
  type SseChannelReplayMessage,
  type SseChannelResetMessage,
  type SseDefaultData,
  type SseDiagnosticsMessages,
  type SseErrorCode,
  type SseEventMap,
  type SseFields,
  type SseGroupOptions,
  type SseAdmission,
  type SseLimit,
  type SseMessage,
  type SsePipeOptions,
  type SseShutdownOptions,
  type SseSource,
  type SseStream,
  type SseStreamCloseMessage,
  type SseStreamGroup,
  type SseStreamOpenMessage,
  type SseStreamOptions,
  type SseStreamDeferredMessage,
  type SseStreamOverflowMessage,
  type SubscribeOptions,
} from '@ssekit/core';
export { createSseStream } from '@ssekit/core/node';

declare module 'fastify' {
  interface FastifyInstance {
    /** Every stream the plugin opened; `app.close()` shuts them down by itself. */
    readonly sseStreams: SseStreamGroup;
  }
  interface FastifyReply {
    /** This reply as a Server-Sent Events stream, made on first use. */
    // `any` lets a handler assign it to a typed `SseStream<MyEvents>` without a cast.
    readonly sse: SseStream<any>;
  }
}

/** Options of {@link ssePlugin}: those of every ssekit stream, a limit, and the shutdown. */
export interface SseFastifyOptions extends SseAdapterOptions<FastifyRequest> {
  /** How `app.close()` ends open streams: a last event and a jittered `retry`. */
  shutdown?: SseShutdownOptions;
}

const plugin: FastifyPluginCallback<SseFastifyOptions> = (fastify, options, done) => {
  const { shutdown, ...adapterOptions } = options;
  let prepared: ReturnType<typeof resolveAdapterOptions<FastifyRequest>>;
  try {
    prepared = resolveAdapterOptions<FastifyRequest>({
      // Through the request's own logger, so that the line carries its request id.
      onError: (error, _stream, request) => request.log.error({ err: error }, 'ssekit: a piped source failed'),
      ...adapterOptions,
    });
    if (shutdown?.message) formatEvent(shutdown.message); // a bad farewell fails now, not at close
  } catch (error) {
    return done(error as Error);
  }
  const { streams, options: resolved } = prepared;

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
    return createSseStreamFromSink(sink, resolved, reply.request);
  }

  fastify.decorate('sseStreams', streams);
  // Declared up front, so that every reply keeps one shape whether or not it ever streams.
  fastify.decorateReply(kLazyStream, null);
  fastify.decorateReply('sse', {
    getter(this: FastifyReply) {
      return lazyStream(this, createStream);
    },
  });
  // Open streams never end by themselves, so without this `app.close()` would wait forever.
  fastify.addHook('preClose', () => streams.shutdown(shutdown));
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
