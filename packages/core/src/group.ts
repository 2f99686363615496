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

/**
 * How fast a group lets streams in, so that a reconnect storm (every client of a crashed
 * instance, at once, each with a `Last-Event-ID`) costs a bounded amount of work per second.
 * A request past a cap is deferred, not refused: it gets a 200 `text/event-stream` that carries
 * only a `retry:` field and ends, with a `Retry-After` header; a native EventSource comes back
 * after that `retry`, where any other status would make it stop for good.
 */
export interface SseAdmission {
  /**
   * Streams the group opens per second: a token bucket holding at most this many, refilled at
   * this many per second, so a burst of this size opens at once. Past it a request is deferred,
   * and deferred clients are told to come back spread over the time the bucket needs for them.
   */
  opensPerSecond?: number;
  /**
   * Channel replays (resumes after a `Last-Event-ID`) that run at once; the rest wait their turn
   * before their head is sent. A replay holds its turn until its events are handed to the
   * socket, or until the socket is full: a slow client never holds one.
   */
  concurrentReplays?: number;
  /**
   * Streams that may wait for a replay turn; past it a request is deferred.
   * @default 16 × concurrentReplays
   */
  maxQueuedReplays?: number;
  /**
   * The least time a deferred client waits, in milliseconds.
   * @default 1000
   */
  retryMs?: number;
  /**
   * The most milliseconds added at random to each deferred client's wait.
   * @default 1000
   */
  jitterMs?: number;
  /**
   * How a deferred request is answered: `200`, an event stream with only `retry:`, which every
   * EventSource follows; or `503` with `Retry-After` and a JSON body, for fleets of clients that
   * read `Retry-After` (`@ssekit/client` does) and would rather see an error status.
   * @default 200
   */
  status?: 200 | 503;
}

/** Options of {@link createStreamGroup}. */
export interface SseGroupOptions<TRequest = any> {
  limit?: SseLimit<TRequest>;
  admission?: SseAdmission;
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

/** A deferred request's answer: come back after `retryMs`. */
export interface Deferral {
  readonly status: 200 | 503;
  readonly retryMs: number;
  /** What was at its cap: the open rate, or the replay queue. */
  readonly cause: 'opens' | 'replays';
}

/** A replay's turn: the function that ends it, now or once one is free. */
export type ReplayTurn = (() => void) | Promise<() => void>;

/** What a stream learns when it asks to open. */
export type Admission =
  | { readonly admitted: true; readonly farewell: string | undefined }
  | { readonly admitted: false; readonly body: string }
  | { readonly admitted: false; readonly deferral: Deferral };

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
  /** A member that was let in has closed. */
  leave(member: GroupMember): void;
  /**
   * A turn to run one channel replay: `undefined` when replays are not capped; else the function
   * that ends the turn (idempotent), at once when one is free, or a promise of it; or a deferral
   * when the queue is full.
   */
  replayTurn(): ReplayTurn | Deferral | undefined;
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
const DEFAULT_DEFER_RETRY_MS = 1000;
const DEFAULT_DEFER_JITTER_MS = 1000;
const QUEUED_REPLAYS_PER_TURN = 16;

function isPositiveRate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

function checkAdmission(admission: SseAdmission): void {
  const { opensPerSecond, concurrentReplays, maxQueuedReplays, retryMs, jitterMs, status } = admission;
  const bad = (name: string, what: string, value: unknown) =>
    new SseError('ERR_SSE_INVALID_OPTION', `admission.${name} must be ${what}, not ${String(value)}.`);
  if (opensPerSecond !== undefined && !isPositiveRate(opensPerSecond)) throw bad('opensPerSecond', 'a positive number', opensPerSecond);
  for (const [name, value] of [
    ['concurrentReplays', concurrentReplays],
    ['maxQueuedReplays', maxQueuedReplays],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) throw bad(name, 'a positive integer', value);
  }
  if (maxQueuedReplays !== undefined && concurrentReplays === undefined) {
    throw new SseError('ERR_SSE_INVALID_OPTION', 'admission.maxQueuedReplays needs concurrentReplays.');
  }
  for (const [name, value] of [
    ['retryMs', retryMs],
    ['jitterMs', jitterMs],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) throw bad(name, 'a non-negative integer', value);
  }
  if (status !== undefined && status !== 200 && status !== 503) throw bad('status', '200 or 503', status);
}

/**
 * The group's admission: a token bucket for opens, and a bounded queue of replay turns. Deferred
 * clients are spread out: each is told to come back after the time the bucket needs for the
 * clients deferred before it, so that they return at the rate the bucket lets in.
 */
class Admissions {
  private readonly rate: number;
  private readonly retryMs: number;
  private readonly jitterMs: number;
  private readonly status: 200 | 503;
  private tokens: number;
  private refilledAt: number;
  /** Clients told to come back and not yet counted as let in: decays at the open rate. */
  private backlog = 0;
  private backlogAt = 0;
  private readonly concurrentReplays: number;
  private readonly maxQueuedReplays: number;
  private replaying = 0;
  private readonly waiting: Array<(release: () => void) => void> = [];

  constructor({ opensPerSecond, concurrentReplays, maxQueuedReplays, retryMs, jitterMs, status }: SseAdmission) {
    this.rate = opensPerSecond ?? Infinity;
    this.tokens = this.rate;
    this.refilledAt = performance.now();
    this.retryMs = retryMs ?? DEFAULT_DEFER_RETRY_MS;
    this.jitterMs = jitterMs ?? DEFAULT_DEFER_JITTER_MS;
    this.status = status ?? 200;
    this.concurrentReplays = concurrentReplays ?? Infinity;
    this.maxQueuedReplays = maxQueuedReplays ?? (concurrentReplays ?? 0) * QUEUED_REPLAYS_PER_TURN;
  }

  /** Takes a token to open a stream: undefined if it may open, its deferral if not. */
  open(): Deferral | undefined {
    if (this.rate === Infinity) return undefined;
    const now = performance.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.refilledAt) / 1000) * this.rate);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens--;
      return undefined;
    }
    return this.defer('opens', now);
  }

  replayTurn(): ReplayTurn | Deferral | undefined {
    if (this.concurrentReplays === Infinity) return undefined;
    if (this.replaying < this.concurrentReplays) {
      this.replaying++;
      return this.releaser();
    }
    if (this.waiting.length >= this.maxQueuedReplays) return this.defer('replays', performance.now());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** A turn's end, once: hands the turn to the longest waiting, if any. */
  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next(this.releaser());
      else this.replaying--;
    };
  }

  private defer(cause: Deferral['cause'], now: number): Deferral {
    let waitMs = this.retryMs;
    if (this.rate !== Infinity) {
      this.backlog = Math.max(0, this.backlog - ((now - this.backlogAt) / 1000) * this.rate);
      this.backlogAt = now;
      waitMs = Math.max(waitMs, (this.backlog / this.rate) * 1000);
      this.backlog++;
    }
    return { status: this.status, cause, retryMs: Math.round(waitMs + Math.random() * this.jitterMs) };
  }
}

class StreamGroup implements SseStreamGroup, GroupMembership {
  private readonly members = new Set<GroupMember>();
  /** Members by key, oldest first; kept only when there is a limit. */
  private readonly byKey = new Map<string, Set<GroupMember>>();
  private readonly limit: Required<SseLimit> | undefined;
  private readonly admissions: Admissions | undefined;
  private farewell: (() => string) | undefined;

  constructor({ limit, admission }: SseGroupOptions) {
    if (admission) {
      checkAdmission(admission);
      this.admissions = new Admissions(admission);
    }
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
      const full = keyed !== undefined && keyed.size >= limit.max;
      if (full && limit.onExceed === 'reject') {
        return { admitted: false, body: JSON.stringify({ error: 'too_many_streams', limit: limit.max }) };
      }
      // Before any eviction: a deferred request must not cost another stream its place.
      const deferral = this.admissions?.open();
      if (deferral) return { admitted: false, deferral };
      // Sets iterate in insertion order: the first member is the oldest.
      if (full) keyed!.values().next().value![kCloseFor]('evicted');
      if (!keyed) this.byKey.set(key, (keyed = new Set()));
      keyed.add(member);
      member.onClose(() => {
        keyed.delete(member);
        if (keyed.size === 0 && this.byKey.get(key) === keyed) this.byKey.delete(key);
      });
    } else {
      const deferral = this.admissions?.open();
      if (deferral) return { admitted: false, deferral };
    }
    this.members.add(member);
    return ADMITTED;
  }

  // Called by the member as it closes, rather than through a close listener: an array of
  // listeners is memory per connection.
  leave(member: GroupMember): void {
    this.members.delete(member);
  }

  replayTurn(): ReplayTurn | Deferral | undefined {
    return this.admissions?.replayTurn();
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
