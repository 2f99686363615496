import type { SseClientError } from './errors.js';

/**
 * Event names mapped to the type of their data: the same map a server's
 * `createChannel<TEvents>()` takes. `message` is the name of events sent without one.
 */
export type ClientEventMap = Record<string, unknown>;

/** What every ssekit channel may send besides an application's own events. */
export interface BuiltInEvents {
  /**
   * The client's `Last-Event-ID` could not be resumed from (unknown, or too old): events were
   * missed, so refetch the state they built. The source resumes from `lastEventId`.
   */
  reset: { lastEventId: string };
}

/** An application's events and the built-in ones. */
export type EventsOf<TEvents extends ClientEventMap> = TEvents & BuiltInEvents;

/** The name of an event the source can receive. */
export type EventName<TEvents extends ClientEventMap> = keyof EventsOf<TEvents> & string;

/** One received event: its name, its parsed data, and the last event id at that point. */
export type ClientEvent<TEvents extends ClientEventMap = ClientEventMap, TName extends EventName<TEvents> = EventName<TEvents>> = {
  [K in TName]: {
    readonly type: K;
    readonly data: EventsOf<TEvents>[K];
    /** The last event id as the client tracks it, which a reconnect sends as `Last-Event-ID`. */
    readonly id: string | undefined;
  };
}[TName];

/** `'connecting'` until a response opens, `'open'` while it streams, `'closed'` for good. */
export type SourceState = 'connecting' | 'open' | 'closed';

/** A value, or a function that gives it, synchronously or not, on every (re)connect. */
export type PerConnect<T> = T | (() => T | Promise<T>);

/** Options of `createEventSource`. */
export interface EventSourceOptions<TEvents extends ClientEventMap = ClientEventMap> {
  /**
   * Request headers, such as `authorization`. A function is called on every connect and
   * reconnect, so that a token can be refreshed.
   */
  headers?: PerConnect<Record<string, string>>;
  /** @default 'GET' */
  method?: string;
  /** A request body (for `POST`); a function is called on every connect. */
  body?: PerConnect<BodyInit | null>;
  /** As `fetch`'s. @default 'same-origin' */
  credentials?: RequestCredentials;
  /** The `fetch` to use. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Where to start: sent as `Last-Event-ID` on the first request. */
  lastEventId?: string;
  /** Closes the source when it aborts, as `close()` does. */
  signal?: AbortSignal;
  /**
   * Reconnection: exponential backoff from `minMs` (or the server's `retry:` field) up to
   * `maxMs`, with full jitter, starting over after each successful open. A `Retry-After` on a
   * 429 or 503 wins over `maxMs`.
   */
  retry?: { minMs?: number; maxMs?: number; jitter?: boolean };
  /**
   * No byte at all (heartbeat comments included) for this long after a request means a dead
   * connection: the source aborts it and reconnects. Keep it above the server's heartbeat
   * interval (ssekit's default is 15 s). 0 turns it off.
   * @default 45000
   */
  idleTimeoutMs?: number;
  /**
   * The longest event, in characters, the source buffers before it gives up on the stream with
   * `ERR_SSE_CLIENT_EVENT_TOO_LARGE`: a bound on what a misbehaving server can make it hold.
   * @default 16777216
   */
  maxEventLength?: number;
  /**
   * Turns an event's data text into its `data`.
   * @default JSON.parse, or the text as it is when it is not JSON
   */
  parse?: (text: string, type: EventName<TEvents>) => unknown;
  /** Called with each response that opens the stream. */
  onOpen?: (response: Response) => void;
  /**
   * Called for every error, retryable or not (a stream that ends normally is not an error):
   * return `false` to close the source, `true` to reconnect even after one that would close
   * it, nothing for the default policy.
   */
  onError?: (error: SseClientError) => boolean | void;
  /**
   * `'tabs'`: every tab of this origin that opens the same URL shares one connection. One tab
   * holds it and forwards events to the others; when that tab closes, another takes over from
   * the last event id. Browsers only (Web Locks and BroadcastChannel).
   */
  share?: 'tabs';
}

/** A typed, fetch-based EventSource. */
export interface TypedEventSource<TEvents extends ClientEventMap = ClientEventMap> extends AsyncIterable<ClientEvent<TEvents>> {
  readonly url: string;
  readonly state: SourceState;
  /** The last event id received, which a reconnect sends as `Last-Event-ID`. */
  readonly lastEventId: string | undefined;
  /**
   * Calls `listener` for each event named `type` (`'message'` for events sent without a name).
   * @returns a function that removes the listener.
   */
  on<K extends EventName<TEvents>>(type: K, listener: (data: EventsOf<TEvents>[K], event: ClientEvent<TEvents, K>) => void): () => void;
  /** Closes the source for good: no reconnect; iterators end. Idempotent. */
  close(): void;
}
