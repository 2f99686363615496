import { SseError } from './errors.js';
import { formatEvent, formatRetry, type SseMessage } from './format.js';
import { kCloseFor } from './symbols.js';

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
export type Admission =
  { readonly admitted: true; readonly farewell: string | undefined } | { readonly admitted: false; readonly body: string };

/**
 * What a group needs of a stream: to hear it close, and to close it. Core's streams are this;
 * the group knows nothing else of them.
 */
export interface GroupMember {
  onClose(listener: (reason: any, member: any) => void): () => void;
  [kCloseFor](reason: 'evicted' | 'shutdown', farewell?: string): void;
}

/** The side of a group that streams talk to; internal to core. */
export interface GroupMembership {
  admit(member: GroupMember, request: unknown): Admission;
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

class StreamGroup implements SseStreamGroup, GroupMembership {
  private readonly members = new Set<GroupMember>();
  /** Members by key, oldest first; kept only when there is a limit. */
  private readonly byKey = new Map<string, Set<GroupMember>>();
  private readonly limit: Required<SseLimit> | undefined;
  private farewell: (() => string) | undefined;
  /** One close listener for every member, rather than a closure each: memory per connection. */
  private readonly forget = (_reason: unknown, member: GroupMember) => void this.members.delete(member);

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
    return this.members.size;
  }

  count(key: string): number {
    return this.byKey.get(key)?.size ?? 0;
  }

  admit(member: GroupMember, request: unknown): Admission {
    if (this.farewell) return { admitted: true, farewell: this.farewell() };
    const limit = this.limit;
    if (limit) {
      const key = String(limit.key(request));
      let keyed = this.byKey.get(key);
      if (keyed && keyed.size >= limit.max) {
        if (limit.onExceed === 'reject') {
          return { admitted: false, body: JSON.stringify({ error: 'too_many_streams', limit: limit.max }) };
        }
        // Sets iterate in insertion order: the first member is the oldest.
        keyed.values().next().value![kCloseFor]('evicted');
      }
      if (!keyed) this.byKey.set(key, (keyed = new Set()));
      keyed.add(member);
      member.onClose(() => {
        keyed.delete(member);
        if (keyed.size === 0 && this.byKey.get(key) === keyed) this.byKey.delete(key);
      });
    }
    this.members.add(member);
    member.onClose(this.forget);
    return ADMITTED;
  }

  async shutdown({ message, retryMs, jitterMs = 0 }: SseShutdownOptions = {}): Promise<void> {
    // Validated before any stream is touched: a bad option must not end half of them.
    const last = message === undefined ? '' : formatEvent(message);
    if (retryMs !== undefined) formatRetry(retryMs);
    if (!Number.isSafeInteger(jitterMs) || jitterMs < 0) {
      throw new SseError('ERR_SSE_INVALID_OPTION', `jitterMs must be a non-negative integer, not ${String(jitterMs)}.`);
    }
    const farewell = (this.farewell = () =>
      (retryMs === undefined ? '' : formatRetry(retryMs + Math.floor(Math.random() * (jitterMs + 1)))) + last);
    const closing = [...this.members].map(
      (member) =>
        new Promise<void>((resolve) => {
          member.onClose(() => resolve());
          member[kCloseFor]('shutdown', farewell());
        }),
    );
    await Promise.all(closing);
  }
}
