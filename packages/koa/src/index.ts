import type { Context, Middleware, Next } from 'koa';
import type { SseStream, SseStreamGroup } from '@ssekit/core';
import { createNodeSink } from '@ssekit/core/node';
import { createSseStreamFromSink, defineLazyStream, resolveAdapterOptions, type SseAdapterOptions } from '@ssekit/core/adapter';

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

declare module 'koa' {
  interface DefaultContext {
    /** This response as a Server-Sent Events stream, made on first use by `sse()`. */
    // `any` lets a handler assign it to a typed `SseStream<MyEvents>` without a cast.
    sse: SseStream<any>;
  }
}

/** Options of {@link sse}: those of every ssekit stream, and a limit keyed by Koa's `ctx`. */
export type SseKoaOptions = SseAdapterOptions<Context>;

/** The middleware, with the group of the streams it opened. */
export type SseMiddleware = Middleware & {
  /** Every stream this middleware opened: `sseStreams.shutdown()` ends them all. */
  readonly sseStreams: SseStreamGroup;
};

// Errors a socket raises when its client goes away mid-write. After the stream opens they are
// a normal end, not an application error.
const DISCONNECT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED']);

/**
 * Koa middleware that gives each context a `ctx.sse` stream. The stream is made when a handler
 * first touches `ctx.sse` and opens on its first write; from then on Koa leaves the response to
 * it, so `koa-compress` and friends never buffer events.
 *
 * @example
 * ```ts
 * app.use(sse());
 * app.use((ctx) => {
 *   ctx.sse.send({ event: 'hello', data: { at: Date.now() } });
 * });
 * ```
 * @throws {SseError} `ERR_SSE_INVALID_OPTION` on an out-of-range option.
 */
export function sse(options: SseKoaOptions = {}): SseMiddleware {
  const { streams, options: resolved } = resolveAdapterOptions<Context>({
    // Where Koa reports errors: app.on('error'), which logs them unless the app says otherwise.
    onError: (error, _stream, ctx) => ctx.app.emit('error', error, ctx),
    ...options,
  });
  const create = (ctx: Context) => {
    const beforeOpen = (): void => {
      ctx.respond = false;
      const onerror = ctx.onerror.bind(ctx);
      ctx.onerror = (error) => {
        if (!DISCONNECT_CODES.has((error as NodeJS.ErrnoException | null)?.code ?? '')) onerror(error);
      };
    };
    return createSseStreamFromSink(createNodeSink(ctx.req, ctx.res, { beforeOpen }), resolved, ctx);
  };
  function sseMiddleware(ctx: Context, next: Next) {
    defineLazyStream(ctx, create);
    return next();
  }
  return Object.assign(sseMiddleware, { sseStreams: streams });
}
