export { SseError, type SseErrorCode } from './errors.js';
export {
  formatEvent,
  formatComment,
  formatRetry,
  type FormatOptions,
  type SseDefaultData,
  type SseEventMap,
  type SseFields,
  type SseMessage,
} from './format.js';
export { isValidEventId, readLastEventId, MAX_EVENT_ID_LENGTH } from './id.js';
export type { SseSink } from './sink.js';
export { createNodeSink, type NodeRequest, type NodeResponse, type NodeSinkHooks } from './node-sink.js';
export {
  createSseStream,
  createSseStreamFromSink,
  resolveStreamOptions,
  SSE_HEADERS,
  type ResolvedStreamOptions,
  type SseCloseReason,
  type SsePipeOptions,
  type SseShorthand,
  type SseStream,
  type SseStreamOptions,
} from './stream.js';
