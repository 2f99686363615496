/**
 * `@ssekit/core/adapter`, for authors of framework adapters, of sinks for other runtimes and of
 * backplanes: the sink contract, streams made on a sink, option resolution, the lazy `sse`
 * property, and how a backplane reports to diagnostics. The Node sink is in
 * `@ssekit/core/node`. Applications need none of it; see docs/extending.md.
 */
export type { SseSink, SseSinkCloseListener } from './sink.js';
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
export { reportBackplaneEvent } from './diagnostics.js';
