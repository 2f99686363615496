import { SseError } from './errors.js';
import { formatEvent, formatRetry, type SseMessage } from './format.js';
import {
  CLOSE_FOR,
  resolveStreamOptions,
  type ResolvedStreamOptions,
  type SseStream,
  type SseStreamOptions,
} from './stream.js';

/** How a group ends its streams, so that clients come back spread out rather than all at once. */
export interface SseShutdownOptions {
  /** A last event for every stream, such as `{ event: 'bye', data: 'restarting' }`. */
  message?: SseMessage;
  /** A `retry` for every client, in milliseconds, before the stream ends. */
  retryMs?: number;
  /**
   * Adds a random 0 to `jitterMs` milliseconds to each client's `retry`, so that their
   * reconnects spread out instead of arriving as one storm.
   * @default 0
   */
  jitterMs?: number;
}

/** A cap on the open streams that share a key, such as a user or an IP address. */
export interface SseLimit<TRequest = any> {
  /** The most open streams per key. */
  max: number;
  /** The key of a request. @default one key for every request */
  key?: (request: TRequest) => string;
  /**
   * What happens to a stream past the cap: `reject` answers 429 with a JSON body before
   * opening (a native EventSource then stops for good); `evict-oldest` closes the key's oldest
   * stream and opens the new one.
   * @default 'reject'
   */
  onExceed?: 'reject' | 'evict-oldest';
}

/** Options of {@link createStreamGroup}. */
export interface SseGroupOptions<TRequest = any> {
  limit?: SseLimit<TRequest>;
}

/**
 * The open streams of a server, or of one adapter: one call ends them all, and an optional
 * limit caps the streams per key.
 */
export interface SseStreamGroup {
  /** Streams open now. */
  readonly size: number;
  /** Streams open now under `key`. */
  count(key: string): number;
  /**
   * Ends every open stream, each with the optional last event and jittered `retry`; streams
   * that open afterwards get the same and end at once. Resolves when all have closed.
   */
  shutdown(options?: SseShutdownOptions): Promise<void>;
}

/** What a stream learns when it asks to open. */
export type Admission = { readonly admitted: true; readonly farewell: string | undefined } | { readonly admitted: false; readonly body: string };

/** The side of a group that streams talk to; internal to core. */
export interface GroupMembership {
  admit(stream: SseStream<any>, request: unknown): Admission;
}

/**
 * Makes a stream group. Hand it to streams through the `group` option; adapters make one per
 * middleware or plugin and expose it.
 *
 * @example
 * ```ts
 * const streams = createStreamGroup({ limit: { max: 3, key: (req) => req.socket.remoteAddress ?? '' } });
 * http.createServer((req, res) => createSseStream(req, res, { group: streams }));
 * process.on('SIGTERM', async () => {
 *   await streams.shutdown({ retryMs: 1000, jitterMs: 5000 });
 *   server.close();
 * });
 * ```
 * @throws {SseError} `ERR_SSE_INVALID_OPTION` on an invalid limit.
 */
export function createStreamGroup<TRequest = any>(options: SseGroupOptions<TRequest> = {}): SseStreamGroup & GroupMembership {
  return new StreamGroup(options);
}

const ONE_KEY = '';
const ADMITTED: Admission = { admitted: true, farewell: undefined };

type Closable = SseStream<any> & { [CLOSE_FOR](reason: 'evicted' | 'shutdown', lastText?: string): void };

class StreamGroup implements SseStreamGroup, GroupMembership {
  private readonly streams = new Set<SseStream<any>>();
  /** Streams by key, oldest first; kept only when there is a limit. */
  private readonly byKey = new Map<string, Set<SseStream<any>>>();
  private readonly limit: Required<SseLimit> | undefined;
  private farewell: ((stream: SseStream<any>) => string) | undefined;
  /** One close listener for every member, rather than a closure each: memory per connection. */
  private readonly forget = (_reason: unknown, stream: SseStream<any>) => void this.streams.delete(stream);

  constructor({ limit }: SseGroupOptions) {
    if (limit) {
      if (!Number.isSafeInteger(limit.max) || limit.max < 1) {
        throw new SseError('ERR_SSE_INVALID_OPTION', `limit.max must be a positive integer, not ${String(limit.max)}.`);
      }
      const onExceed = limit.onExceed ?? 'reject';
      if (onExceed !== 'reject' && onExceed !== 'evict-oldest') {
        throw new SseError('ERR_SSE_INVALID_OPTION', `limit.onExceed must be 'reject' or 'evict-oldest', not ${String(onExceed)}.`);
      }
      this.limit = { max: limit.max, key: limit.key ?? (() => ONE_KEY), onExceed };
    }
  }

  get size(): number {
    return this.streams.size;
  }

  count(key: string): number {
    return this.byKey.get(key)?.size ?? 0;
  }

  admit(stream: SseStream<any>, request: unknown): Admission {
    if (this.farewell) return { admitted: true, farewell: this.farewell(stream) };
    const limit = this.limit;
    if (limit) {
      const key = String(limit.key(request));
      let members = this.byKey.get(key);
      if (members && members.size >= limit.max) {
        if (limit.onExceed === 'reject') {
          return { admitted: false, body: JSON.stringify({ error: 'too_many_streams', limit: limit.max }) };
        }
        // Sets iterate in insertion order: the first member is the oldest.
        (members.values().next().value as Closable)[CLOSE_FOR]('evicted');
      }
      if (!members) this.byKey.set(key, (members = new Set()));
      members.add(stream);
      stream.onClose(() => {
        members!.delete(stream);
        if (members!.size === 0 && this.byKey.get(key) === members) this.byKey.delete(key);
      });
    }
    this.streams.add(stream);
    stream.onClose(this.forget);
    return ADMITTED;
  }

  async shutdown({ message, retryMs, jitterMs = 0 }: SseShutdownOptions = {}): Promise<void> {
    // Validated before any stream is touched: a bad option must not end half of them.
    const last = message === undefined ? '' : formatEvent(message);
    if (retryMs !== undefined) formatRetry(retryMs);
    if (!Number.isSafeInteger(jitterMs) || jitterMs < 0) {
      throw new SseError('ERR_SSE_INVALID_OPTION', `jitterMs must be a non-negative integer, not ${String(jitterMs)}.`);
    }
    this.farewell = () =>
      (retryMs === undefined ? '' : formatRetry(retryMs + Math.floor(Math.random() * (jitterMs + 1)))) + last;
    const closing = [...this.streams].map(
      (stream) =>
        new Promise<void>((resolve) => {
          stream.onClose(() => resolve());
          (stream as Closable)[CLOSE_FOR]('shutdown', this.farewell!(stream));
        }),
    );
    await Promise.all(closing);
  }
}

/** Options every adapter takes: those of its streams, and a limit over them. */
export interface SseAdapterOptions<TRequest = any> extends SseStreamOptions {
  /** Caps the open streams per key; the key function gets the framework's own request. */
  limit?: SseLimit<TRequest>;
}

/**
 * Resolves an adapter's options once, at mount time: stream options with their defaults, and
 * the group its streams join (the one given, or a new one with the limit).
 * @throws {SseError} `ERR_SSE_INVALID_OPTION` on an invalid option, or on both `group` and
 * `limit` (a group you make carries its own limit).
 */
export function resolveAdapterOptions<TRequest>({ limit, ...options }: SseAdapterOptions<TRequest>): {
  streams: SseStreamGroup;
  options: ResolvedStreamOptions;
} {
  if (limit && options.group) {
    throw new SseError('ERR_SSE_INVALID_OPTION', 'Give limit to createStreamGroup() when you pass your own group.');
  }
  const streams = options.group ?? createStreamGroup({ limit });
  return { streams, options: resolveStreamOptions({ ...options, group: streams }) };
}

const kCreateStream = Symbol('ssekit.createStream');
const kStream = Symbol('ssekit.stream');

interface LazyStreamHolder {
  [kCreateStream]?: (holder: object) => SseStream;
  [kStream]?: SseStream;
}

/**
 * Gives `holder` (Express's `res`, Koa's `ctx`) an `sse` property whose stream `create` makes on
 * first read. For adapters.
 *
 * The getter is defined once, on the holder's prototype (the app's `response` or `context`),
 * and each holder only gets two data properties: no accessor and closure made per request,
 * which every idle connection would keep for its lifetime.
 */
export function defineLazyStream<THolder extends object>(holder: THolder, create: (holder: THolder) => SseStream): void {
  (holder as LazyStreamHolder)[kCreateStream] = create as (holder: object) => SseStream;
  const prototype: object | null = Object.getPrototypeOf(holder);
  const target = prototype && prototype !== Object.prototype ? prototype : holder;
  if (!Object.hasOwn(target, 'sse')) Object.defineProperty(target, 'sse', { configurable: true, get: lazyStream });
}

function lazyStream(this: LazyStreamHolder): SseStream | undefined {
  const create = this[kCreateStream];
  return create && (this[kStream] ??= create(this));
}
