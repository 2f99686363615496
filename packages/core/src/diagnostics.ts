/**
 * The names under which ssekit publishes on `node:diagnostics_channel`: a stable API, each with
 * the message type of the same key in `SseDiagnosticsMessages` (diagnostics-messages.ts). Subscribe with
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
  /**
   * A request was deferred by its group's admission (`opensPerSecond`, or a full replay queue):
   * it was told when to come back. A stream deferred before its head never publishes open or
   * close; one deferred after it closes with reason `deferred`.
   */
  streamDeferred: 'ssekit:stream:deferred',
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

/** Published on `ssekit:backplane:error` and `ssekit:backplane:reconnect`. */
export interface SseBackplaneMessage {
  /** Which backplane: `redis`, `postgres`, `nats`, or another's own name. */
  readonly backplane: string;
  /** What failed, on `ssekit:backplane:error`. */
  readonly error?: unknown;
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
const channelOf = (name: (typeof SSE_DIAGNOSTICS)[keyof typeof SSE_DIAGNOSTICS]): DiagnosticsChannel => dc?.channel(name) ?? NOBODY;

/**
 * Core's own handles on each channel; every publisher checks `hasSubscribers` first. They take
 * any message: the stream, which publishes most, cannot import the message types (they name the
 * stream's), so the tests check every payload against what a run did.
 */
export const streamOpenChannel = channelOf(SSE_DIAGNOSTICS.streamOpen);
export const streamCloseChannel = channelOf(SSE_DIAGNOSTICS.streamClose);
export const streamDeferredChannel = channelOf(SSE_DIAGNOSTICS.streamDeferred);
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
