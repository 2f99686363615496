import type { SseStreamGroup } from './group.js';
import type { SseCloseReason, SseStream } from './stream.js';

/**
 * The names under which ssekit publishes on `node:diagnostics_channel`: a stable API, each with
 * the message type of the same key in {@link SseDiagnosticsMessages}. Subscribe with
 * `diagnostics_channel.subscribe(name, listener)`. Nothing is built or published while a
 * channel has no subscriber, and on a runtime without `diagnostics_channel` nothing happens.
 *
 * @example
 * ```ts
 * import diagnostics_channel from 'node:diagnostics_channel';
 * import { SSE_DIAGNOSTICS, type SseStreamCloseMessage } from '@ssekit/core';
 *
 * diagnostics_channel.subscribe(SSE_DIAGNOSTICS.streamClose, (message) => {
 *   const { reason, lifetimeMs, events } = message as SseStreamCloseMessage;
 *   metrics.histogram('sse_stream_lifetime_ms', lifetimeMs, { reason });
 *   metrics.counter('sse_events', events);
 * });
 * ```
 */
export const SSE_DIAGNOSTICS = Object.freeze({
  /** A stream opened: its head (status 200) was committed. */
  streamOpen: 'ssekit:stream:open',
  /** A stream that had opened closed, once, for whatever reason. */
  streamClose: 'ssekit:stream:close',
  /** A slow client left more than `maxBufferedBytes` queued; a close with reason `overflow` follows. */
  streamOverflow: 'ssekit:stream:overflow',
  /** A channel replayed what a subscriber missed. */
  channelReplay: 'ssekit:channel:replay',
  /** A channel sent its reset event: the subscriber's Last-Event-ID could not be resumed from. */
  channelReset: 'ssekit:channel:reset',
  /** A backplane lost its server, or failed otherwise (what its `onError` hears). */
  backplaneError: 'ssekit:backplane:error',
  /** A backplane reached its server again after an outage. */
  backplaneReconnect: 'ssekit:backplane:reconnect',
} as const);

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

/** Published on `ssekit:backplane:error` and `ssekit:backplane:reconnect`. */
export interface SseBackplaneMessage {
  /** Which backplane: `redis`, `postgres`, `nats`, or another's own name. */
  readonly backplane: string;
  /** What failed, on `ssekit:backplane:error`. */
  readonly error?: unknown;
}

/** Each name of {@link SSE_DIAGNOSTICS} with the type of what is published under it. */
export interface SseDiagnosticsMessages {
  'ssekit:stream:open': SseStreamOpenMessage;
  'ssekit:stream:close': SseStreamCloseMessage;
  'ssekit:stream:overflow': SseStreamOverflowMessage;
  'ssekit:channel:replay': SseChannelReplayMessage;
  'ssekit:channel:reset': SseChannelResetMessage;
  'ssekit:backplane:error': SseBackplaneMessage;
  'ssekit:backplane:reconnect': SseBackplaneMessage;
}

/** The part of a `diagnostics_channel` Channel that core uses. */
interface DiagnosticsChannel {
  readonly hasSubscribers: boolean;
  publish(message: unknown): void;
}

/** Where there is no `diagnostics_channel`: nobody can listen, so nothing is ever published. */
const NOBODY: DiagnosticsChannel = { hasSubscribers: false, publish: () => {} };

/**
 * `node:diagnostics_channel` where the runtime has it, without importing a Node built-in, so
 * that the main entry still bundles for any runtime: `process.getBuiltinModule` exists on Node
 * 20.16+ and 22.3+, Bun, Deno, and workerd with `nodejs_compat`. Elsewhere (a browser, workerd
 * without the flag, Node before 20.16) diagnostics are simply off.
 */
function loadDiagnosticsChannel(): { channel(name: string): DiagnosticsChannel } | undefined {
  try {
    const runtime = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } };
    return runtime.process?.getBuiltinModule?.('node:diagnostics_channel') as { channel(name: string): DiagnosticsChannel } | undefined;
  } catch {
    return undefined;
  }
}

const dc = loadDiagnosticsChannel();
// Held here for the life of the process: Node keeps a channel only while something references it.
const channelOf = (name: keyof SseDiagnosticsMessages): DiagnosticsChannel => dc?.channel(name) ?? NOBODY;

/** Core's own handles on each channel; every publisher checks `hasSubscribers` first. */
export const streamOpenChannel = channelOf(SSE_DIAGNOSTICS.streamOpen);
export const streamCloseChannel = channelOf(SSE_DIAGNOSTICS.streamClose);
export const streamOverflowChannel = channelOf(SSE_DIAGNOSTICS.streamOverflow);
export const channelReplayChannel = channelOf(SSE_DIAGNOSTICS.channelReplay);
export const channelResetChannel = channelOf(SSE_DIAGNOSTICS.channelReset);
const backplaneErrorChannel = channelOf(SSE_DIAGNOSTICS.backplaneError);
const backplaneReconnectChannel = channelOf(SSE_DIAGNOSTICS.backplaneReconnect);

/**
 * How a backplane reports to diagnostics: call it wherever the backplane tells its `onError`
 * (`'error'`), and when it reaches its server again after an outage (`'reconnect'`). Costs a
 * property read while nobody listens.
 *
 * @example
 * ```ts
 * const report = (error: unknown) => {
 *   reportBackplaneEvent('error', 'mybackplane', error);
 *   onError(error);
 * };
 * ```
 */
export function reportBackplaneEvent(type: 'error' | 'reconnect', backplane: string, error?: unknown): void {
  if (type === 'error') {
    if (backplaneErrorChannel.hasSubscribers) backplaneErrorChannel.publish({ backplane, error } satisfies SseBackplaneMessage);
  } else if (backplaneReconnectChannel.hasSubscribers) {
    backplaneReconnectChannel.publish({ backplane } satisfies SseBackplaneMessage);
  }
}
