import type { NextFunction, Request, RequestHandler, Response } from 'express';
import {
  createNodeSink,
  createSseStreamFromSink,
  resolveStreamOptions,
  type SseStream,
  type SseStreamOptions,
} from '@ssekit/core';

export * from '@ssekit/core';

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

/** Options of {@link sse}: those of every ssekit stream. */
export type SseExpressOptions = SseStreamOptions;

/**
 * Express middleware that gives each response an `res.sse` stream. Mount it app-wide or per
 * route; the stream is made only when a handler first touches `res.sse`, and opens on its first
 * write, so handlers can still reject with any status before that.
 *
 * @example
 * ```ts
 * app.get('/events', sse(), (req, res) => {
 *   if (!req.user) return res.sendStatus(401);
 *   res.sse.send({ event: 'hello', data: { at: Date.now() } });
 * });
 * ```
 * @throws {SseError} `ERR_SSE_INVALID_OPTION` on an out-of-range option.
 */
export function sse(options: SseExpressOptions = {}): RequestHandler {
  const resolved = resolveStreamOptions(options);
  return function sseMiddleware(req: Request, res: Response, next: NextFunction): void {
    let stream: SseStream | undefined;
    Object.defineProperty(res, 'sse', {
      configurable: true,
      get: () => (stream ??= createSseStreamFromSink(createNodeSink(req, res), resolved)),
    });
    next();
  };
}
