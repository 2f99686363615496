/**
 * `@ssekit/core/adapter`, for authors of framework adapters and of sinks for other runtimes:
 * the sink contract, streams made on a sink, option resolution and the lazy `sse` property.
 * The Node sink is in `@ssekit/core/node`. Applications need none of it; see docs/extending.md.
 */
export type { SseSink } from './sink.js';
export {
  createSseStreamFromSink,
  resolveStreamOptions,
  SSE_HEADERS,
  type EventEmitterLike,
  type ResolvedStreamOptions,
  type SseShorthand,
} from './stream.js';
export { failStream, resolveAdapterOptions, type SseAdapterOptions } from './adapter-options.js';
export { defineLazyStream, lazyStream, kLazyStream } from './lazy-stream.js';
export { readLastEventId } from './id.js';
