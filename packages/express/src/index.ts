import type { NextFunction, Request, RequestHandler, Response } from 'express';
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

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Response {
      /** This response as a Server-Sent Events stream, made on first use by `sse()`. */
      // `any` lets a handler assign it to a typed `SseStream<MyEvents>` without a cast.
      sse: SseStream<any>;
    }
  }
}

/** Options of {@link sse}: those of every ssekit stream, and a limit keyed by Express's `req`. */
export type SseExpressOptions = SseAdapterOptions<Request>;

/** The middleware, with the group of the streams it opened. */
export type SseMiddleware = RequestHandler & {
  /** Every stream this middleware opened: `sseStreams.shutdown()` ends them all. */
  readonly sseStreams: SseStreamGroup;
};

/**
 * Express middleware that gives each response an `res.sse` stream. Mount it app-wide or per
 * route; the stream is made only when a handler first touches `res.sse`, and opens on its first
 * write, so handlers can still reject with any status before that.
 *
 * @example
 * ```ts
 * const events = sse({ limit: { max: 5, key: (req) => req.ip ?? '' } });
 * app.get('/events', events, (req, res) => {
 *   if (!req.user) return res.sendStatus(401);
 *   res.sse.send({ event: 'hello', data: { at: Date.now() } });
 * });
 * process.on('SIGTERM', async () => {
 *   await events.sseStreams.shutdown({ retryMs: 1000, jitterMs: 5000 });
 *   server.close();
 * });
 * ```
 * @throws {SseError} `ERR_SSE_INVALID_OPTION` on an out-of-range option.
 */
export function sse(options: SseExpressOptions = {}): SseMiddleware {
  const { streams, options: resolved } = resolveAdapterOptions(options);
  const create = (res: Response) => createSseStreamFromSink(createNodeSink(res.req, res), resolved, res.req);
  function sseMiddleware(_req: Request, res: Response, next: NextFunction): void {
    defineLazyStream(res, create);
    next();
  }
  return Object.assign(sseMiddleware, { sseStreams: streams });
}
