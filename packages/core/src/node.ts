/**
 * `@ssekit/core/node`: streams on Node's own responses, from `node:http` and `node:http2` in
 * compatibility mode, and the sink that the Express, Fastify and Koa adapters share. Apart from
 * the main entry, so that a bundle for another runtime never pulls in Node's `http`.
 */
import type { SseEventMap } from './format.js';
import { createNodeSink, type NodeRequest, type NodeResponse } from './node-sink.js';
import { createSseStreamFromSink, type SseStream, type SseStreamOptions } from './stream.js';

export { createNodeSink, type NodeRequest, type NodeResponse, type NodeSinkHooks } from './node-sink.js';

/**
 * Makes an SSE stream of a `node:http` response, or a `node:http2` one in compatibility mode.
 *
 * @example
 * ```ts
 * import { createSseStream } from '@ssekit/core/node';
 *
 * http.createServer((req, res) => {
 *   const stream = createSseStream(req, res);
 *   const timer = setInterval(() => stream.send({ event: 'tick', data: Date.now() }), 1000);
 *   stream.onClose(() => clearInterval(timer));
 * });
 * ```
 */
export function createSseStream<TEvents extends SseEventMap = SseEventMap>(
  req: NodeRequest,
  res: NodeResponse,
  options?: SseStreamOptions,
): SseStream<TEvents> {
  return createSseStreamFromSink<TEvents>(createNodeSink(req, res), options, req);
}
