/**
 * `@ssekit/core` for applications, on every runtime: streams, channels, backplanes, groups,
 * errors and the serializer. Nothing here imports a Node built-in. Streams on Node's own
 * responses come from `@ssekit/core/node`; what adapter and sink authors need besides lives in
 * `@ssekit/core/adapter`.
 */
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
export { isValidEventId, MAX_EVENT_ID_LENGTH } from './id.js';
export { type SseCloseReason, type SsePipeOptions, type SseSource, type SseStream, type SseStreamOptions } from './stream.js';
export {
  createChannel,
  type Channel,
  type ChannelEvent,
  type ChannelMessage,
  type ChannelOptions,
  type SubscribeOptions,
} from './channel.js';
export type {
  Backplane,
  BackplaneEntry,
  BackplaneListener,
  BackplanePosition,
  BackplanePublish,
  BackplaneReplay,
  BackplaneSubscription,
} from './backplane.js';
export { createMemoryBackplane, type MemoryBackplaneOptions } from './memory-backplane.js';
export { createMemoryHistory, type HistoryStore, type MemoryHistoryOptions } from './history.js';
export {
  createStreamGroup,
  type SseAdmission,
  type SseGroupOptions,
  type SseLimit,
  type SseShutdownOptions,
  type SseStreamGroup,
} from './group.js';
export { SSE_DIAGNOSTICS, type SseBackplaneMessage } from './diagnostics.js';
export type {
  SseChannelReplayMessage,
  SseChannelResetMessage,
  SseDiagnosticsMessages,
  SseStreamCloseMessage,
  SseStreamOpenMessage,
  SseStreamDeferredMessage,
  SseStreamOverflowMessage,
} from './diagnostics-messages.js';
