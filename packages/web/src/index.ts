import type { SseEventMap, SseStream, SseStreamOptions } from '@ssekit/core';
import { createSseStreamFromSink, failStream, resolveStreamOptions, type ResolvedStreamOptions } from '@ssekit/core/adapter';
import { createWebSink } from './web-sink.js';

// What an application uses, so that a Worker needs one import.
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

/**
 * Options of {@link createSseResponse}: those of every ssekit stream. A `group` made once with
 * `createStreamGroup({ limit: { max, key: (request: Request) => ... } })` caps streams per key
 * (past it the answer is a 429) and ends them all with `shutdown()`.
 */
export type SseResponseOptions = SseStreamOptions;

/**
 * Answers `request` with an event stream, for every runtime of the Fetch API: Hono, Next.js
 * route handlers, `Bun.serve`, `Deno.serve`, Cloudflare Workers. Returns at once a `Response`
 * (200 and the SSE headers, plus `options.headers`) whose body the `handler` writes through the
 * same `SseStream` every ssekit adapter gives. A handler that must refuse (401) does so before
 * calling this.
 *
 * The handler may be async: its rejection reaches `onError` and closes the stream with reason
 * `error`. `send` settles once the body's queue has room, so a producer that awaits it never
 * outruns the client; one that does not is cut off at `maxBufferedBytes`. The client's leave
 * (the request's signal, a cancelled body) closes the stream with reason `client`.
 *
 * @example
 * ```ts
 * import { createChannel, createSseResponse } from '@ssekit/web';
 *
 * const prices = createChannel<{ price: { value: number } }>();
 * export function GET(request: Request): Response {
 *   return createSseResponse(request, (stream) => prices.subscribe(stream), { keepAliveMs: 15_000 });
 * }
 * ```
 * @throws {SseError} `ERR_SSE_INVALID_OPTION` on an invalid option.
 */
export function createSseResponse<TEvents extends SseEventMap = SseEventMap>(
  request: Request,
  handler: (stream: SseStream<TEvents>) => unknown,
  options: SseResponseOptions | ResolvedStreamOptions = {},
): Response {
  const resolved = resolveStreamOptions(options);
  const sink = createWebSink(request);
  const stream = createSseStreamFromSink<TEvents>(sink, resolved, request);
  // Opened now, not on the first write: the Response's head goes out with it, so a group's
  // limit must decide before there is one.
  stream.open();
  const { rejection } = sink;
  if (rejection) {
    return new Response(rejection.body, {
      status: rejection.status,
      headers: { ...rejection.headers, 'content-type': rejection.contentType },
    });
  }
  if (!stream.closed) {
    void Promise.resolve()
      .then(() => handler(stream))
      .catch((error: unknown) => failStream(stream, error));
  }
  return new Response(sink.body, { status: 200, headers: sink.headers ?? resolved.headers });
}

/**
 * Resolves options once, for a route that answers many requests: pass the result to
 * {@link createSseResponse} instead of the options, and they are not checked again per request.
 * @throws {SseError} `ERR_SSE_INVALID_OPTION` on an invalid option.
 */
export function resolveSseResponseOptions(options: SseResponseOptions): ResolvedStreamOptions {
  return resolveStreamOptions(options);
}
