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
  type EventEmitterLike,
  type SseCloseReason,
  type SseSource,
  type SsePipeOptions,
  type SseShorthand,
  type SseStream,
  type SseStreamOptions,
} from './stream.js';
export {
  createChannel,
  type Channel,
  type ChannelEvent,
  type ChannelMessage,
  type ChannelOptions,
  type SubscribeOptions,
} from './channel.js';
export {
  createMemoryBackplane,
  type Backplane,
  type BackplaneEntry,
  type BackplanePublish,
  type BackplaneReplay,
  type MemoryBackplaneOptions,
} from './backplane.js';
export { createMemoryHistory, type HistoryStore, type MemoryHistoryOptions } from './history.js';
export {
  createStreamGroup,
  resolveAdapterOptions,
  defineLazyStream,
  type SseAdapterOptions,
  type SseGroupOptions,
  type SseLimit,
  type SseShutdownOptions,
  type SseStreamGroup,
} from './group.js';
