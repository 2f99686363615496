/**
 * What ssekit publishes under each name of {@link SSE_DIAGNOSTICS}. Apart from the names and the
 * channels (diagnostics.ts), because these name the stream's types, and the stream publishes.
 */
import type { SseBackplaneMessage, SSE_DIAGNOSTICS } from './diagnostics.js';
import type { SseStreamGroup } from './group.js';
import type { SseCloseReason, SseStream } from './stream.js';

/** Published on `ssekit:stream:open`. */
export interface SseStreamOpenMessage {
  readonly stream: SseStream<any>;
  /**
   * What the stream was made for: the framework's own request under an adapter (Express's
   * `req`, Fastify's request, Koa's `ctx`), the `IncomingMessage` under `createSseStream`, the
   * Fetch `Request` under `@ssekit/web`. A route's pattern, where the framework has one, is here
   * (Express's `req.route?.path`, Fastify's `request.routeOptions.url`).
   */
  readonly request: unknown;
  /**
   * The request's URL path, without its query string (which may carry a token), when the sink
   * knows it: Express's `originalUrl`, otherwise the request's URL.
   */
  readonly path: string | undefined;
  /** The group the stream joined, if any: adapters make one per middleware or plugin. */
  readonly group: SseStreamGroup | undefined;
}

/** Published on `ssekit:stream:close`. */
export interface SseStreamCloseMessage {
  readonly stream: SseStream<any>;
  readonly reason: SseCloseReason;
  /** Milliseconds from the open to the close. */
  readonly lifetimeMs: number;
  /**
   * Event blocks written: each `send`, and each event a channel wrote (its id-only mark and its
   * reset included). Comments, heartbeats and `retry` lines are not events.
   */
  readonly events: number;
  /**
   * Body bytes handed to the response: events, comments, heartbeats and `retry` lines. Undefined
   * on a sink that does not count them (the Node and Fetch sinks do).
   */
  readonly bytes: number | undefined;
}

/** Published on `ssekit:stream:deferred`, once the answer went out. */
export interface SseStreamDeferredMessage {
  readonly stream: SseStream<any>;
  /** As in {@link SseStreamOpenMessage}. */
  readonly request: unknown;
  readonly path: string | undefined;
  readonly group: SseStreamGroup | undefined;
  /** The answer's status: 200 (an event stream with only `retry:`) or 503. */
  readonly status: 200 | 503;
  /** How long the client was told to wait, in milliseconds (`Retry-After` says it in seconds, rounded up). */
  readonly retryMs: number;
  /** What was at its cap: `opensPerSecond`, or the queue of `concurrentReplays`. */
  readonly cause: 'opens' | 'replays';
}

/** Published on `ssekit:stream:overflow`, just before the stream closes with reason `overflow`. */
export interface SseStreamOverflowMessage {
  readonly stream: SseStream<any>;
  /** Bytes queued for the client when the stream was cut. */
  readonly bufferedBytes: number;
  readonly maxBufferedBytes: number;
}

/** Published on `ssekit:channel:replay`, once the replayed events were handed to the stream. */
export interface SseChannelReplayMessage {
  /** The channel's name in its backplane. */
  readonly channel: string;
  readonly stream: SseStream<any>;
  /** The id replay started after. */
  readonly lastEventId: string;
  /** Events written by the replay (those the subscriber's filter let through). */
  readonly events: number;
  /** Milliseconds from asking the backplane to the last replayed event handed to the stream. */
  readonly durationMs: number;
  /**
   * `resume`: a subscriber came with a Last-Event-ID. `gap`: the backplane skipped entries in
   * live delivery, and the channel filled them in for a subscriber that was live.
   */
  readonly cause: 'resume' | 'gap';
}

/** Published on `ssekit:channel:reset`, once the reset event was written. */
export interface SseChannelResetMessage {
  readonly channel: string;
  readonly stream: SseStream<any>;
  /** The id the subscriber could not resume from. */
  readonly lastEventId: string;
  /** The reset event's id: the newest entry, from which the client resumes next time. */
  readonly id: string;
}

/** Each name of {@link SSE_DIAGNOSTICS} with the type of what is published under it. */
export interface SseDiagnosticsMessages extends Record<(typeof SSE_DIAGNOSTICS)[keyof typeof SSE_DIAGNOSTICS], unknown> {
  'ssekit:stream:open': SseStreamOpenMessage;
  'ssekit:stream:close': SseStreamCloseMessage;
  'ssekit:stream:deferred': SseStreamDeferredMessage;
  'ssekit:stream:overflow': SseStreamOverflowMessage;
  'ssekit:channel:replay': SseChannelReplayMessage;
  'ssekit:channel:reset': SseChannelResetMessage;
  'ssekit:backplane:error': SseBackplaneMessage;
  'ssekit:backplane:reconnect': SseBackplaneMessage;
}
