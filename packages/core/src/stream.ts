import { streamCloseChannel, streamDeferredChannel, streamOpenChannel, streamOverflowChannel } from './diagnostics.js';
import { SseError } from './errors.js';
import {
  formatComment,
  formatEvent,
  formatRetry,
  HEARTBEAT,
  type FormatOptions,
  type SseDefaultData,
  type SseEventMap,
  type SseMessage,
} from './format.js';
import type { Admission, Deferral, GroupMembership, ReplayTurn, SseStreamGroup } from './group.js';
import { kAdmit, kCloseFor, kFail, kReplayTurn, kWriteFormatted } from './symbols.js';
import { utf8Length } from './utf8.js';
import { keepAliveWheel, type KeepAliveMember, type KeepAliveWheel } from './keep-alive.js';
import { readLastEventId } from './id.js';
import type { SseSink, SseSinkCloseListener } from './sink.js';

/**
 * Why a stream closed:
 * - `client`: the client went away;
 * - `server`: the application called `close()`, or a piped source ended;
 * - `overflow`: a slow client let more than `maxBufferedBytes` pile up;
 * - `error`: a piped source failed;
 * - `shutdown`: its group shut down;
 * - `rejected`: its group's limit answered 429 instead of opening it;
 * - `evicted`: its group's limit closed it to make room for a newer stream with the same key;
 * - `lifetime`: it reached `maxLifetimeMs`, and the client comes back with its `Last-Event-ID`;
 * - `deferred`: its group's admission was at its cap: the client was told when to come back.
 */
export type SseCloseReason = 'client' | 'server' | 'overflow' | 'error' | 'shutdown' | 'rejected' | 'evicted' | 'lifetime' | 'deferred';

/** Options of a stream, shared by `createSseStream` and every adapter. */
export interface SseStreamOptions extends FormatOptions {
  /**
   * Sends a heartbeat comment once the stream has written nothing for this many milliseconds
   * (between `keepAliveMs` and 1.2 × `keepAliveMs` after its last write), so that idle timeouts
   * of sockets, proxies and load balancers never cut a quiet stream. One timer serves every
   * stream of the process with the same value. 0 turns it off.
   * @default 15000
   */
  keepAliveMs?: number;
  /**
   * The most bytes a slow client may leave buffered on the server. Past it the stream closes
   * with reason `overflow`: the client reconnects with `Last-Event-ID` instead of costing
   * unbounded memory.
   * @default 262144 (256 KiB)
   */
  maxBufferedBytes?: number;
  /** A `retry` line sent with the head, in milliseconds. */
  retryMs?: number;
  /**
   * Ends the stream this long after it opened (plus a random `0..lifetimeJitterMs`), with
   * reason `lifetime`, after a `retry: lifetimeRetryMs` line: the client reconnects at once with
   * its `Last-Event-ID`, so a channel resumes it with nothing lost, and the new request goes
   * through the handler, and its authorization, again. Bounds how long a credential checked at
   * connect time stays good, and lets connections rebalance across instances. 0 turns it off.
   * @default 0
   */
  maxLifetimeMs?: number;
  /**
   * The most milliseconds added at random to each stream's `maxLifetimeMs`, so that streams
   * opened together (after a deploy) do not all end, and reconnect, together.
   * @default a tenth of maxLifetimeMs, rounded down
   */
  lifetimeJitterMs?: number;
  /**
   * The `retry` sent just before a stream ends at its lifetime: how long its client waits before
   * it reconnects. It stays the client's reconnect delay afterwards, unless `retryMs` sets
   * another with each new stream's head.
   * @default 1000
   */
  lifetimeRetryMs?: number;
  /**
   * The largest event `send` accepts, in UTF-8 bytes. A larger one throws
   * `ERR_SSE_EVENT_TOO_LARGE`; nothing is written and the stream stays open.
   * @default 1048576 (1 MiB)
   */
  maxEventBytes?: number;
  /**
   * The group whose shutdown ends this stream and whose limit it counts against. Adapters make
   * one per middleware or plugin when this is not given.
   */
  group?: SseStreamGroup;
  /**
   * Extra response headers sent when the stream opens. Headers set earlier by middleware are
   * kept anyway; the SSE headers themselves cannot be overridden.
   */
  headers?: Readonly<Record<string, string>>;
  /**
   * Called when a piped source throws, before the stream closes with reason `error`. It may
   * still send a final event. `request` is what the stream was made for: the framework's own
   * request object under an adapter (Express's `req`, Fastify's request, Koa's `ctx`), the
   * `IncomingMessage` under `createSseStream`. By default the error is logged (through the
   * framework's logger where it has one) and the client sees nothing.
   */
  onError?: (error: unknown, stream: SseStream<any>, request: any) => void;
}

/** Options of {@link SseStream.pipe}. */
export interface SsePipeOptions {
  /**
   * Close the stream when the source ends, as `Readable.pipe` ends its destination.
   * @default true
   */
  end?: boolean;
}

/** Anything `pipe` can drain: an async iterable (including an object-mode `Readable`) or an iterable. */
export type SseSource<TEvents extends SseEventMap = SseEventMap> =
  AsyncIterable<SseMessage<TEvents> | SseShorthand<TEvents>> | Iterable<SseMessage<TEvents> | SseShorthand<TEvents>>;

/** The part of Node's `EventEmitter` that `pipe` uses. */
export interface EventEmitterLike {
  on(event: string | symbol, listener: (...args: any[]) => void): unknown;
  off(event: string | symbol, listener: (...args: any[]) => void): unknown;
}

/** What `send` accepts besides a message: a bare string, when the `message` event takes one. */
export type SseShorthand<TEvents extends SseEventMap> = string extends SseDefaultData<TEvents> ? string : never;

/**
 * A live Server-Sent Events response: `res.sse`, `reply.sse`, `ctx.sse`, or what
 * {@link createSseStream} returns. `TEvents` maps event names to the type of their data.
 *
 * Opening is lazy: the first `send`, `comment`, `retry`, `open` or `pipe` commits status 200 and
 * the SSE headers. Until then the handler can still answer anything else, such as 401 or 204.
 */
export interface SseStream<TEvents extends SseEventMap = SseEventMap> {
  /** The validated `Last-Event-ID` request header, or `undefined`. */
  readonly lastEventId: string | undefined;
  /** True once the stream has closed, for whatever reason. */
  readonly closed: boolean;
  /** Why the stream closed, once it has. */
  readonly closeReason: SseCloseReason | undefined;
  /** True once the head has been committed. */
  readonly opened: boolean;
  /**
   * Event blocks written so far: each `send`, and each event a channel wrote (its id-only mark
   * and its reset included). Comments, heartbeats and `retry` lines are not events.
   */
  readonly eventsSent: number;
  /**
   * Body bytes handed to the response so far (UTF-8), or `undefined` on a sink that does not
   * count them (the Node and Fetch sinks do).
   */
  readonly bytesSent: number | undefined;
  /** Aborts when the stream closes: the client left, or the server closed it. */
  readonly signal: AbortSignal;
  /**
   * Sends one event, written whole in a single write.
   * @returns `true` once the event is handed to the socket (after a drain when the socket was
   * full), `false` if the stream closed first. Never rejects.
   * @throws {SseError} synchronously on a message that breaks the wire format; nothing is
   * written and the stream stays usable.
   */
  send(message: SseMessage<TEvents> | SseShorthand<TEvents>): Promise<boolean>;
  /** Sends a comment, which clients ignore. Line breaks become several comment lines. */
  comment(text?: string): Promise<boolean>;
  /** Tells the client how many milliseconds to wait before reconnecting. */
  retry(ms: number): Promise<boolean>;
  /** Commits the head now and flushes it, so that the client's `open` fires. */
  open(): void;
  /** Ends the response. Pending sends settle with `false`. Idempotent. */
  close(): void;
  /**
   * Sends every message of `source`, waiting for the socket whenever it is full. Takes an async
   * iterable (an async generator, a Node `Readable` in object mode) or a plain iterable. When
   * the client leaves, the source is stopped through its `return()`, which destroys a Readable.
   * @returns `true` if the source ran to its end, `false` if the stream closed first or the
   * source failed. Never rejects: a failure goes to the `onError` option.
   */
  pipe(source: SseSource<TEvents>, options?: SsePipeOptions): Promise<boolean>;
  /**
   * Sends each `event` that `emitter` emits, its first argument being the message, until the
   * stream closes; then the listener is removed. An emitter cannot wait for a slow client, so
   * `maxBufferedBytes` is what bounds memory here.
   * @returns `false` once the stream has closed.
   */
  pipe(emitter: EventEmitterLike, event: string | symbol): Promise<boolean>;
  /**
   * Calls `listener` once when the stream closes, with the reason and the stream. Returns a
   * function that removes it.
   */
  onClose(listener: (reason: SseCloseReason, stream: SseStream<TEvents>) => void): () => void;
}

const DEFAULT_KEEP_ALIVE_MS = 15_000;
const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024;
const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;
const DEFAULT_LIFETIME_RETRY_MS = 1000;
/** The longest delay a timer takes (Node, browsers): a longer wait is made of several. */
const MAX_TIMER_MS = 2 ** 31 - 1;

// Settled promises are immutable, so every unblocked send can share one. Core modules compare
// against SENT to learn, without awaiting, that a write did not block.
export const SENT = Promise.resolve(true);
const NOT_SENT = Promise.resolve(false);

/** The headers that make a response an event stream for every client and proxy. */
export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  // Lowercase and utf-8 exactly: Chromium fails on any other charset, and `eventsource`
  // compares the type case-sensitively.
  'content-type': 'text/event-stream; charset=utf-8',
  // no-transform also keeps `compression` middleware from buffering the stream.
  'cache-control': 'no-cache, no-transform',
  // nginx buffers proxied responses unless told not to.
  'x-accel-buffering': 'no',
});

/** Makes an SSE stream on any {@link SseSink}: how adapters and other runtimes plug in. */
export function createSseStreamFromSink<TEvents extends SseEventMap = SseEventMap>(
  sink: SseSink,
  options: SseStreamOptions | ResolvedStreamOptions = {},
  /** What a group's limit computes its key from: the framework's own request object. */
  request?: unknown,
): SseStream<TEvents> {
  return new Stream<TEvents>(sink, resolveStreamOptions(options), request);
}

/** Options with defaults applied and ranges checked, once per factory rather than per stream. */
export interface ResolvedStreamOptions {
  readonly keepAliveMs: number;
  /** The process's heartbeat wheel for `keepAliveMs`; undefined when heartbeats are off. */
  readonly keepAlive: KeepAliveWheel | undefined;
  readonly maxBufferedBytes: number;
  readonly maxEventBytes: number;
  /** 0 when streams live as long as their client stays. */
  readonly maxLifetimeMs: number;
  readonly lifetimeJitterMs: number;
  /** The `retry` line a stream sends when its lifetime ends. */
  readonly lifetimeFarewell: string;
  readonly group: GroupMembership | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly openPrefix: string;
  readonly format: FormatOptions | undefined;
  readonly onError: (error: unknown, stream: SseStream<any>, request: any) => void;
  /** Marks options that were already resolved, so adapters resolve them once. */
  readonly resolved: true;
}

/**
 * Applies defaults and validates stream options.
 * @throws {SseError} `ERR_SSE_INVALID_OPTION` on an out-of-range option.
 */
export function resolveStreamOptions(options: SseStreamOptions | ResolvedStreamOptions = {}): ResolvedStreamOptions {
  if ('resolved' in options) return options;
  // `createSseStream(req, res, { group })` makes a new options object per request: resolved
  // anew, every stream would hold its own copy (some 250 bytes with its headers).
  if (lastResolved !== undefined && sameOptions(options, lastOptions!)) return lastResolved;
  const resolved = resolveAnew(options);
  lastOptions = { ...options };
  lastResolved = resolved;
  return resolved;
}

let lastOptions: SseStreamOptions | undefined;
let lastResolved: ResolvedStreamOptions | undefined;

/** Same own keys, same values: what makes two option objects resolve alike. */
function sameOptions(a: SseStreamOptions, b: SseStreamOptions): boolean {
  let keys = 0;
  for (const key in a) {
    if (a[key as keyof SseStreamOptions] !== b[key as keyof SseStreamOptions] || !Object.hasOwn(b, key)) return false;
    keys++;
  }
  for (const key in b) if (Object.hasOwn(b, key)) keys--;
  return keys === 0;
}

function resolveAnew(options: SseStreamOptions): ResolvedStreamOptions {
  const keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
  const maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  if (!isCount(keepAliveMs) || keepAliveMs > 2 ** 31 - 1) {
    throw new SseError('ERR_SSE_INVALID_OPTION', `keepAliveMs must be an integer from 0 to 2147483647, not ${String(keepAliveMs)}.`);
  }
  const maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  if (!isCount(maxEventBytes) || maxEventBytes === 0) {
    throw new SseError('ERR_SSE_INVALID_OPTION', `maxEventBytes must be a positive integer, not ${String(maxEventBytes)}.`);
  }
  const group: (SseStreamGroup & Partial<GroupMembership>) | undefined = options.group;
  if (group !== undefined && typeof group.admit !== 'function') {
    throw new SseError('ERR_SSE_INVALID_OPTION', 'group must come from createStreamGroup().');
  }
  if (!isCount(maxBufferedBytes) || maxBufferedBytes === 0) {
    throw new SseError('ERR_SSE_INVALID_OPTION', `maxBufferedBytes must be a positive integer, not ${String(maxBufferedBytes)}.`);
  }
  if (options.serialize !== undefined && typeof options.serialize !== 'function') {
    throw new SseError('ERR_SSE_INVALID_OPTION', 'serialize must be a function.');
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new SseError('ERR_SSE_INVALID_OPTION', 'onError must be a function.');
  }
  let headers: Record<string, string> = SSE_HEADERS;
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (headers === SSE_HEADERS) headers = {};
    const text = typeof value === 'number' ? String(value) : value;
    if (!HEADER_NAME.test(name) || typeof text !== 'string' || !HEADER_VALUE.test(text)) {
      throw new SseError('ERR_SSE_INVALID_OPTION', `headers has an invalid header: ${JSON.stringify(name)}.`);
    }
    headers[name.toLowerCase()] = text;
  }
  if (headers !== SSE_HEADERS) Object.assign(headers, SSE_HEADERS);
  const maxLifetimeMs = options.maxLifetimeMs ?? 0;
  if (!isCount(maxLifetimeMs)) {
    throw new SseError('ERR_SSE_INVALID_OPTION', `maxLifetimeMs must be a non-negative integer, not ${String(maxLifetimeMs)}.`);
  }
  const lifetimeJitterMs = options.lifetimeJitterMs ?? Math.floor(maxLifetimeMs / 10);
  if (!isCount(lifetimeJitterMs)) {
    throw new SseError('ERR_SSE_INVALID_OPTION', `lifetimeJitterMs must be a non-negative integer, not ${String(lifetimeJitterMs)}.`);
  }
  const lifetimeRetryMs = options.lifetimeRetryMs ?? DEFAULT_LIFETIME_RETRY_MS;
  if (!isCount(lifetimeRetryMs)) {
    throw new SseError('ERR_SSE_INVALID_OPTION', `lifetimeRetryMs must be a non-negative integer, not ${String(lifetimeRetryMs)}.`);
  }
  let openPrefix = '';
  if (options.retryMs !== undefined) {
    try {
      openPrefix = formatRetry(options.retryMs);
    } catch (cause) {
      throw new SseError('ERR_SSE_INVALID_OPTION', `retryMs must be a non-negative integer, not ${String(options.retryMs)}.`, { cause });
    }
  }
  return {
    keepAliveMs,
    keepAlive: keepAliveMs > 0 ? keepAliveWheel(keepAliveMs) : undefined,
    maxBufferedBytes,
    maxEventBytes,
    maxLifetimeMs,
    lifetimeJitterMs,
    lifetimeFarewell: formatRetry(lifetimeRetryMs),
    group: group as GroupMembership | undefined,
    headers,
    openPrefix,
    format: options.serialize ? { serialize: options.serialize } : undefined,
    onError: options.onError ?? logPipeError,
    resolved: true,
  };
}

// RFC 9110: a field name is a token; a value is visible characters, spaces and tabs (obs-text
// included), never a line break or NUL, which could forge a header of its own.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function logPipeError(error: unknown): void {
  console.error('[ssekit] a piped source failed; the stream was closed:', error);
}

type CloseListener<TEvents extends SseEventMap> = (reason: SseCloseReason, stream: SseStream<TEvents>) => void;

/** What few streams need: kept apart, so that the others do not carry a word for each. */
interface StreamExtras {
  /** The timer that ends the stream at its lifetime; only with `maxLifetimeMs`. */
  lifetimeTimer?: ReturnType<typeof setTimeout> | undefined;
  /** Made on first use of `signal`. */
  abort?: AbortController;
  /** The listener for drains, made once a write met a full sink. */
  onDrain?: () => void;
  /** Sends waiting for the sink to drain. */
  drainWaiters?: Array<(sent: boolean) => void> | undefined;
}

// Memory per stream is what decides how many a process holds: every field here is a word of
// every connection, and numbers stay small integers, which V8 keeps in the field itself (a
// fraction, such as performance.now(), would be a heap object of its own).
class Stream<TEvents extends SseEventMap> implements SseStream<TEvents>, KeepAliveMember, SseSinkCloseListener {
  closeReason: SseCloseReason | undefined = undefined;
  opened = false;
  /** True once its group let it in: it is a member, and opens without asking again. */
  private admitted = false;
  private extras: StreamExtras | undefined = undefined;
  /** When the stream opened (monotonic, whole milliseconds). */
  private openedAt = 0;
  /** Event blocks written, for diagnostics: an increment per event is all it costs. */
  private events = 0;
  // Its place on the keep-alive wheel: see keep-alive.ts.
  lastWriteTick = 0;
  wheelSlot = -1;
  wheelIndex = 0;
  /** One listener in the field itself (a channel's, usually), an array only for more. */
  private closeListeners: CloseListener<TEvents> | Array<CloseListener<TEvents>> | undefined = undefined;

  constructor(
    private readonly sink: SseSink,
    private readonly options: ResolvedStreamOptions,
    private readonly request: unknown,
  ) {
    this.closeReason = sink.closedBy;
    if (!this.closeReason) sink.onClose(this);
  }

  /** Called by the sink when the response closed, whoever closed it. */
  sinkClosed(clientLeft: boolean): void {
    this.finish(clientLeft ? 'client' : 'server', false);
  }

  // Read from the request when asked (once, by a channel), rather than kept in a field.
  get lastEventId(): string | undefined {
    return readLastEventId(this.sink.lastEventIdHeader);
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  get eventsSent(): number {
    return this.events;
  }

  get bytesSent(): number | undefined {
    return this.sink.bytesWritten;
  }

  get signal(): AbortSignal {
    // Made on first use: most streams never need one, and it costs memory per connection.
    const extras = (this.extras ??= {});
    if (!extras.abort) {
      extras.abort = new AbortController();
      if (this.closed) extras.abort.abort();
    }
    return extras.abort.signal;
  }

  send(message: SseMessage<TEvents> | SseShorthand<TEvents>): Promise<boolean> {
    const text = formatEvent(message as SseMessage | string, this.options.format);
    const max = this.options.maxEventBytes;
    // A UTF-16 unit is at most 3 UTF-8 bytes: most events need no byte count at all.
    if (text.length * 3 > max) {
      const bytes = utf8Length(text);
      if (bytes > max) throw new SseError('ERR_SSE_EVENT_TOO_LARGE', `The event is ${bytes} bytes; maxEventBytes is ${max}.`);
    }
    return this.write(text, 1);
  }

  comment(text?: string): Promise<boolean> {
    return this.write(formatComment(text), 0);
  }

  retry(ms: number): Promise<boolean> {
    return this.write(formatRetry(ms), 0);
  }

  open(): void {
    if (!this.opened && !this.closed) this.commit(undefined);
  }

  close(): void {
    this[kCloseFor]('server');
  }

  [kCloseFor](reason: SseCloseReason, farewell?: string): void {
    if (this.closed) return;
    if (this.opened) {
      if (farewell) this.sink.write(farewell);
    } else if (this.sink.headersSent) {
      // The handler answered some other way: the response is not ours to open or end.
      this.finish(reason, false);
      return;
    } else {
      this.commit(farewell);
    }
    this.finish(reason);
  }

  onClose(listener: (reason: SseCloseReason, stream: SseStream<TEvents>) => void): () => void {
    if (this.closeReason !== undefined) {
      listener(this.closeReason, this);
      return noop;
    }
    const listeners = this.closeListeners;
    if (listeners === undefined) this.closeListeners = listener;
    else if (typeof listeners === 'function') this.closeListeners = [listeners, listener];
    else listeners.push(listener);
    return () => {
      const listeners = this.closeListeners;
      if (listeners === listener) this.closeListeners = undefined;
      else if (Array.isArray(listeners)) {
        const index = listeners.indexOf(listener);
        if (index >= 0) listeners.splice(index, 1);
      }
    };
  }

  pipe(source: SseSource<any> | EventEmitterLike, eventOrOptions?: string | symbol | SsePipeOptions): Promise<boolean> {
    if (this.closed) return NOT_SENT;
    // Opening here, outside the async part, lets misuse (a response that already started)
    // throw synchronously like every other call.
    this.open();
    if (typeof eventOrOptions === 'string' || typeof eventOrOptions === 'symbol') {
      return this.pipeEmitter(source as EventEmitterLike, eventOrOptions);
    }
    return this.pipeIterable(source as SseSource<TEvents>, eventOrOptions);
  }

  private async pipeIterable(source: SseSource<TEvents>, { end = true }: SsePipeOptions = {}): Promise<boolean> {
    const iterator = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
    // A source may sit idle for hours: race each step against the close so that a client
    // leaving stops the source at once, not at its next message.
    let stop!: () => void;
    const stopped = new Promise<typeof STOPPED>((resolve) => (stop = () => resolve(STOPPED)));
    const removeListener = this.onClose(stop);
    try {
      for (;;) {
        const step = await Promise.race([iterator.next(), stopped]);
        if (step === STOPPED) break;
        if (step.done) {
          if (end) this.close();
          return true;
        }
        if (!(await this.send(step.value))) break;
      }
      // The stream closed first: stop the source, without waiting on a generator that is busy.
      Promise.resolve(iterator.return?.()).catch(noop);
      return false;
    } catch (error) {
      Promise.resolve(iterator.return?.()).catch(noop);
      this[kFail](error);
      return false;
    } finally {
      removeListener();
    }
  }

  private pipeEmitter(emitter: EventEmitterLike, event: string | symbol): Promise<boolean> {
    const forward = (message: SseMessage<TEvents> | SseShorthand<TEvents>) => {
      try {
        void this.send(message);
      } catch (error) {
        // Thrown back into emit() it would hit whoever emitted; it belongs to this stream.
        this[kFail](error);
      }
    };
    emitter.on(event, forward);
    return new Promise((resolve) =>
      this.onClose(() => {
        emitter.off(event, forward);
        resolve(false);
      }),
    );
  }

  /** A piped source failed: report it, then close the stream. */
  [kFail](error: unknown): void {
    if (this.closed) return;
    this.options.onError(error, this, this.request);
    this.finish('error');
  }

  [kWriteFormatted](formatted: string): Promise<boolean> {
    return this.write(formatted, 1);
  }

  /** Writes `chunk`, which holds `events` event blocks (0 or 1). */
  private write(chunk: string, events: number): Promise<boolean> {
    if (this.closeReason !== undefined) return NOT_SENT;
    const sink = this.sink;
    // Checked before writing, so one large event never cuts off a client that keeps up: the
    // bound on what a client holds is maxBufferedBytes plus one event.
    const bufferedBytes = sink.bufferedBytes;
    if (bufferedBytes > this.options.maxBufferedBytes) {
      if (streamOverflowChannel.hasSubscribers) {
        streamOverflowChannel.publish({
          stream: this,
          bufferedBytes,
          maxBufferedBytes: this.options.maxBufferedBytes,
        });
      }
      this.finish('overflow');
      return NOT_SENT;
    }
    const ok = this.opened ? sink.write(chunk) : this.commit(chunk);
    if (this.closeReason !== undefined) return NOT_SENT; // the group refused or ended it
    this.events += events;
    const wheel = this.options.keepAlive;
    if (wheel !== undefined) this.lastWriteTick = wheel.tick;
    if (ok) return SENT;
    return new Promise((resolve) => {
      const extras = (this.extras ??= {});
      if (!extras.drainWaiters) {
        extras.drainWaiters = [];
        sink.onceDrain(this.onDrain);
      }
      extras.drainWaiters.push(resolve);
    });
  }

  [kAdmit](): boolean {
    if (this.admitted) return true;
    if (this.closeReason !== undefined) return false;
    const group = this.options.group;
    const admission: Admission | undefined = group?.admit(this, this.request);
    if (!admission || (admission.admitted && admission.farewell === undefined)) return (this.admitted = true);
    if (admission.admitted) {
      // Its group is shutting down: the stream opens only to say goodbye.
      this.admitted = true;
      this.sink.open(this.options.headers, this.options.openPrefix + admission.farewell);
      this.opened = true;
      this.announceOpen(performance.now());
      this.finish('shutdown');
    } else if ('deferral' in admission) {
      this.defer(admission.deferral);
    } else {
      // Closed first: a sink that reports its own close at once must hear of a stream already rejected.
      this.finish('rejected', false);
      this.sink.reject(429, 'application/json', admission.body);
    }
    return false;
  }

  [kReplayTurn](): ReplayTurn | undefined | false {
    const turn = this.options.group?.replayTurn();
    if (turn === undefined || typeof turn === 'function' || turn instanceof Promise) return turn;
    this.defer(turn);
    return false;
  }

  /**
   * Tells the client when to come back, and closes: with a 200 that carries only `retry:` (or a
   * 503), and `Retry-After`, before the head; with a last `retry:` line after it.
   */
  private defer(deferral: Deferral): void {
    const wasOpen = this.opened;
    const retryAfter = String(Math.ceil(deferral.retryMs / 1000));
    if (this.opened) {
      this.sink.write(formatRetry(deferral.retryMs));
    } else if (deferral.status === 503) {
      // Closed first: a sink that reports its own close at once must hear of a stream already deferred.
      this.finish('deferred', false, false);
      this.sink.reject(503, 'application/json', JSON.stringify({ error: 'deferred', retryMs: deferral.retryMs }), {
        'retry-after': retryAfter,
      });
    } else {
      this.sink.open({ ...this.options.headers, 'retry-after': retryAfter }, formatRetry(deferral.retryMs));
    }
    if (streamDeferredChannel.hasSubscribers) {
      streamDeferredChannel.publish({
        stream: this,
        request: this.request,
        path: this.sink.path,
        group: this.options.group as SseStreamGroup | undefined,
        status: wasOpen ? 200 : deferral.status,
        retryMs: deferral.retryMs,
        cause: deferral.cause,
      });
    }
    // A stream that opened before it was deferred counts as a stream that closed; one that never
    // did is no stream at all, only an answer, like a 429.
    this.finish('deferred', true, wasOpen);
  }

  /**
   * Commits the head, sending `chunk` with it, and starts the keep-alive; unless the group
   * refuses or defers the stream, or is shutting down.
   */
  private commit(chunk: string | undefined): boolean {
    if (!this[kAdmit]()) return false;
    const { openPrefix, headers, keepAlive, maxLifetimeMs } = this.options;
    const first = openPrefix === '' ? chunk : openPrefix + (chunk ?? '');
    // Marked open only once the sink took the head: a response that had already started
    // throws here and must never receive event bytes afterwards.
    const ok = this.sink.open(headers, first);
    this.opened = true;
    this.announceOpen(performance.now());
    // The sink may have reported its close already (a client gone during the head).
    if (this.closeReason !== undefined) return ok;
    if (maxLifetimeMs > 0) this.endIn(maxLifetimeMs + Math.floor(Math.random() * (this.options.lifetimeJitterMs + 1)));
    keepAlive?.add(this);
    return ok;
  }

  private announceOpen(now: number): void {
    this.openedAt = Math.floor(now);
    if (streamOpenChannel.hasSubscribers) {
      streamOpenChannel.publish({
        stream: this,
        request: this.request,
        path: this.sink.path,
        group: this.options.group as SseStreamGroup | undefined,
      });
    }
  }

  /** Ends the stream at its lifetime, `delayMs` from now: in several timers past the longest one. */
  private endIn(delayMs: number): void {
    const timer = ((this.extras ??= {}).lifetimeTimer = setTimeout(
      endLifetime,
      Math.min(delayMs, MAX_TIMER_MS),
      this,
      delayMs - MAX_TIMER_MS,
    ));
    // Node and Bun only: a lifetime alone must not keep a process alive. Elsewhere timers are
    // plain numbers, and nothing needs it.
    (timer as { unref?: () => void }).unref?.();
  }

  /** Called by the lifetime timer, which is shared code: no closure per stream. */
  lifetimeEnded(remainingMs: number): void {
    this.extras!.lifetimeTimer = undefined;
    if (remainingMs > 0) return this.endIn(remainingMs);
    // The retry line makes the client come back at once, with its Last-Event-ID.
    this[kCloseFor]('lifetime', this.options.lifetimeFarewell);
  }

  /** Called by the keep-alive wheel once `keepAliveMs` passed without a write. */
  heartbeat(): void {
    // Bytes still queued mean the stream is not idle, only slow: no heartbeat on top of them.
    if (this.sink.bufferedBytes !== 0) return;
    // Sends that wait for a drain while nothing is buffered wait for a drain that already came
    // and went unheard, which no runtime owes us twice. A stream must never freeze on it.
    if (this.extras?.drainWaiters) {
      this.sink.offDrain(this.onDrain);
      this.drained();
    }
    // Straight to the sink: nothing is buffered, so there is no overflow to check, and 7 bytes
    // on an empty buffer cannot fill it. The wheel notes the write's tick.
    this.sink.write(HEARTBEAT);
  }

  // Made once per stream, and only for a stream that ever meets a full socket.
  private get onDrain(): () => void {
    return ((this.extras ??= {}).onDrain ??= () => this.drained());
  }

  private drained(): void {
    const extras = this.extras;
    const waiters = extras?.drainWaiters;
    if (!waiters) return;
    extras.drainWaiters = undefined;
    for (const resolve of waiters) resolve(true);
  }

  /**
   * Closes the stream once; `release` says whether the response still needs ending, `announce`
   * whether a stream that opened publishes its close.
   */
  private finish(reason: SseCloseReason, release = true, announce = true): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    const extras = this.extras;
    if (extras?.lifetimeTimer !== undefined) {
      clearTimeout(extras.lifetimeTimer);
      extras.lifetimeTimer = undefined;
    }
    this.options.keepAlive?.remove(this);
    if (this.admitted) this.options.group?.leave(this);
    const waiters = extras?.drainWaiters;
    if (waiters) {
      extras.drainWaiters = undefined;
      this.sink.offDrain(this.onDrain);
      for (const resolve of waiters) resolve(false);
    }
    if (release) {
      // An overflowing client holds memory hostage: drop it, buffer and all. Otherwise end
      // gracefully, so that what was already sent still arrives.
      if (reason === 'overflow') this.sink.destroy();
      else this.sink.end();
    }
    extras?.abort?.abort();
    if (this.opened && announce && streamCloseChannel.hasSubscribers) {
      streamCloseChannel.publish({
        stream: this,
        reason,
        lifetimeMs: performance.now() - this.openedAt,
        events: this.events,
        bytes: this.bytesSent,
      });
    }
    const listeners = this.closeListeners;
    this.closeListeners = undefined;
    if (typeof listeners === 'function') listeners(reason, this);
    else if (listeners) for (const listener of listeners) listener(reason, this);
  }
}

const STOPPED = Symbol('stopped');

function endLifetime(stream: { lifetimeEnded(remainingMs: number): void }, remainingMs: number): void {
  stream.lifetimeEnded(remainingMs);
}

function noop(): void {}
