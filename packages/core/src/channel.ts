import type {
  Backplane,
  BackplaneEntry,
  BackplaneListener,
  BackplanePosition,
  BackplaneReplay,
  BackplaneSubscription,
} from './backplane.js';
import { channelReplayChannel, channelResetChannel } from './diagnostics.js';
import type { SseChannelReplayMessage, SseChannelResetMessage } from './diagnostics-messages.js';
import { SseError } from './errors.js';
import { formatEvent, type SseEventMap } from './format.js';
import type { MemoryHistoryOptions, HistoryStore } from './history.js';
import { createMemoryBackplane } from './memory-backplane.js';
import { SENT, type SseStream } from './stream.js';
import { kAdmit, kReplayTurn, kWriteFormatted } from './symbols.js';

/** What a channel publishes: an event name and its data, and optionally an id of your own. */
export type ChannelMessage<TEvents extends SseEventMap = SseEventMap> =
  | { [K in keyof TEvents & string]: { event: K; data?: TEvents[K]; id?: string | number } }[keyof TEvents & string]
  | ('message' extends keyof TEvents ? { event?: undefined; data?: TEvents['message']; id?: string | number } : never);

/** An event as a subscriber's filter sees it. */
export type ChannelEvent<TEvents extends SseEventMap = SseEventMap> = {
  [K in keyof TEvents & string]: { readonly id: string; readonly event: K; readonly data: TEvents[K] };
}[keyof TEvents & string];

/** Options of {@link Channel.subscribe}. */
export interface SubscribeOptions<TEvents extends SseEventMap = SseEventMap> {
  /**
   * Decides, per event, whether this subscriber may see it. It holds for replay too, so use it
   * for authorization: a `Last-Event-ID` never reaches past it.
   */
  filter?: (event: ChannelEvent<TEvents>) => boolean;
  /**
   * Where to resume from: every event after this id is replayed before live delivery.
   * @default stream.lastEventId
   */
  lastEventId?: string;
}

/** Options of {@link createChannel}. */
export interface ChannelOptions {
  /**
   * The channel's name in its backplane: channels that share a backplane and a name share one
   * feed, across processes too.
   * @default 'events'
   */
  name?: string;
  /** Fan-out and history. @default an in-memory backplane, private to this channel */
  backplane?: Backplane;
  /** History of the default in-memory backplane: options, or a store of your own. */
  history?: MemoryHistoryOptions | HistoryStore;
  /**
   * Turns non-string data into text, once per publish.
   * @default JSON.stringify
   */
  serialize?: (data: unknown) => string;
  /**
   * Turns text from another process back into data, for filters.
   * @default JSON.parse
   */
  deserialize?: (text: string) => unknown;
  /**
   * The event a subscriber receives when its `Last-Event-ID` is unknown or too old to replay: a
   * signal to refetch its state, since events were missed. Its id is the newest event's, so the
   * client resumes from there next time.
   * @default 'reset'
   */
  resetEvent?: string;
  /**
   * The most events one resume may replay; a client further behind gets the reset event, which
   * bounds the work a `Last-Event-ID` can cause.
   * @default 10000
   */
  maxReplayEvents?: number;
  /**
   * Called when a subscriber's filter throws, or its replay fails (the backplane rejected it);
   * that subscriber's stream is then closed, and its client comes back with its Last-Event-ID.
   * @default a console.error
   */
  onError?: (error: unknown) => void;
}

/** A feed that many streams subscribe to, with replay after `Last-Event-ID`. */
export interface Channel<TEvents extends SseEventMap = SseEventMap> {
  /**
   * Starts delivery to `stream`, opening it, after replaying what it missed since its
   * `Last-Event-ID`. Unsubscribes by itself when the stream closes.
   * @returns a function that unsubscribes.
   */
  subscribe(stream: SseStream<TEvents> | SseStream<any>, options?: SubscribeOptions<TEvents>): () => void;
  /**
   * Publishes one event to every subscriber, on every process the backplane reaches.
   * @returns the event's id, once the backplane has it.
   * @throws {SseError} synchronously on an invalid message; rejects when the backplane cannot
   * take it (a Redis outage, say), so nothing is dropped silently.
   */
  publish(message: ChannelMessage<TEvents>): Promise<string>;
  /** The number of subscribed streams on this process. */
  readonly size: number;
  /** Closes every subscribed stream and stops delivery. Idempotent. */
  close(): Promise<void>;
}

/** How a channel reaches core's streams: with an event it already formatted, and their group's admission. */
type FormattedTarget = SseStream<any> & {
  [kWriteFormatted](formatted: string): Promise<boolean>;
  [kAdmit](): boolean;
  [kReplayTurn](): (() => void) | Promise<() => void> | undefined | false;
};

interface Subscriber {
  readonly stream: FormattedTarget;
  readonly filter: ((event: ChannelEvent<any>) => boolean) | undefined;
  /** Live entries held back while the subscriber catches up. */
  pending: BackplaneEntry[] | undefined;
  /** Entries at or before this position were already covered by replay. */
  coveredThrough: number | bigint | undefined;
}

/**
 * Makes a channel: one feed, formatted once per event, written to every subscriber, with a
 * bounded history so that a reconnecting client misses nothing.
 *
 * @example
 * ```ts
 * const prices = createChannel<{ price: { symbol: string; value: number } }>();
 * app.get('/prices', sse(), (req, res) => prices.subscribe(res.sse));
 * await prices.publish({ event: 'price', data: { symbol: 'ACME', value: 42 } });
 * ```
 */
export function createChannel<TEvents extends SseEventMap = SseEventMap>(options: ChannelOptions = {}): Channel<TEvents> {
  return new ChannelImpl<TEvents>(options);
}

class ChannelImpl<TEvents extends SseEventMap> implements Channel<TEvents> {
  private readonly name: string;
  private readonly backplane: Backplane;
  private readonly ownsBackplane: boolean;
  private readonly serialize: (data: unknown) => string;
  private readonly deserialize: (text: string) => unknown;
  private readonly resetEvent: string;
  private readonly maxReplayEvents: number;
  private readonly onError: (error: unknown) => void;
  /**
   * Every subscribed stream, with its state; `undefined` for a plain one (live, unfiltered,
   * nothing held back or covered), which is most of them: an object each would be memory per
   * connection.
   */
  private readonly subscribers = new Map<FormattedTarget, Subscriber | undefined>();
  /** One close listener for every subscriber, rather than a closure each: memory per connection. */
  private readonly forget = (_reason: unknown, stream: SseStream<any>) => void this.subscribers.delete(stream as FormattedTarget);
  /** Resolves once the backplane delivers; undefined when it delivered from the start. */
  private ready: Promise<void> | undefined;
  /** Where the backplane's delivery started, once it has. */
  private start: BackplanePosition | undefined;
  private started = false;
  private subscription: BackplaneSubscription | undefined;
  private closed = false;
  /** The newest entry this process delivered, or the start: where a new subscriber stands. */
  private newest: BackplanePosition | undefined;
  /** Each entry is formatted once, and decoded for filters once, however many read it. */
  private readonly formatted = new WeakMap<BackplaneEntry, string>();
  private readonly decoded = new WeakMap<BackplaneEntry, ChannelEvent<TEvents>>();

  constructor(options: ChannelOptions) {
    const { name = 'events', backplane, history, resetEvent = 'reset', maxReplayEvents = 10_000 } = options;
    if (backplane && history) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        'history configures the default backplane; a backplane of your own keeps its own history.',
      );
    }
    if (!Number.isSafeInteger(maxReplayEvents) || maxReplayEvents < 0) {
      throw new SseError('ERR_SSE_INVALID_OPTION', `maxReplayEvents must be a non-negative integer, not ${String(maxReplayEvents)}.`);
    }
    formatEvent({ event: resetEvent }); // throws on a name that could not go on the wire
    this.name = name;
    this.ownsBackplane = !backplane;
    this.backplane = backplane ?? createMemoryBackplane({ history: history && 'append' in history ? () => history : history });
    this.serialize = options.serialize ?? JSON.stringify;
    this.deserialize = options.deserialize ?? JSON.parse;
    this.resetEvent = resetEvent;
    this.maxReplayEvents = maxReplayEvents;
    this.onError =
      options.onError ??
      ((error) =>
        console.error('[ssekit] a channel subscriber failed (its filter threw, or its replay did); its stream was closed:', error));

    const listener: BackplaneListener = { entry: this.deliver, gap: this.recoverFromGap };
    const subscription = this.backplane.subscribe(name, listener);
    if ('then' in subscription) {
      this.ready = subscription.then((started) => {
        if (this.closed) started.unsubscribe();
        else this.begin(started);
      });
    } else this.begin(subscription);
  }

  get size(): number {
    return this.subscribers.size;
  }

  subscribe(stream: SseStream<any>, options: SubscribeOptions<TEvents> = {}): () => void {
    if (this.closed) throw new SseError('ERR_SSE_CLOSED', 'This channel is closed.');
    if (!(kWriteFormatted in stream)) {
      throw new SseError('ERR_SSE_INVALID_OPTION', 'subscribe takes a stream made by ssekit.');
    }
    if (stream.closed) return noop;
    const target = stream as FormattedTarget;
    if (!target[kAdmit]()) return noop; // its group refused, deferred or is ending it
    if (this.subscribers.has(target)) {
      throw new SseError('ERR_SSE_INVALID_OPTION', 'This stream is already subscribed to this channel; it would get every event twice.');
    }
    const lastEventId = options.lastEventId ?? stream.lastEventId;
    // A resume may have to wait for a replay turn; its head goes out once it has one, so that a
    // full queue can still defer it with a status and headers.
    const turn = lastEventId === undefined ? undefined : target[kReplayTurn]();
    if (turn === false) return noop;
    if (!(turn instanceof Promise)) stream.open();
    // Subscribe first and hold live events, so that none slips between replay and live.
    const pending = lastEventId !== undefined || !this.started ? [] : undefined;
    const subscriber: Subscriber | undefined =
      pending || options.filter ? { stream: target, filter: options.filter, pending, coveredThrough: undefined } : undefined;
    this.subscribers.set(target, subscriber);
    const removeCloseListener = stream.onClose(this.forget);
    // A new client has no id yet: give it the current one (an id-only block, which dispatches
    // nothing), so that a drop before its first event still resumes from here. Before delivery
    // has started, the current one is where it will start: known once it has.
    const mark = lastEventId !== undefined ? undefined : this.started ? this.markId() : START;
    if (subscriber?.pending) void this.catchUp(subscriber, lastEventId, mark, undefined, turn);
    else if (mark !== undefined && mark !== START) void target[kWriteFormatted](formatEvent({ id: mark }));
    // Once only: the stream cannot be subscribed again until this subscription has ended, and
    // then only this call could remove a later one.
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      this.subscribers.delete(target);
      removeCloseListener();
    };
  }

  publish(message: ChannelMessage<TEvents>): Promise<string> {
    if (this.closed) throw new SseError('ERR_SSE_CLOSED', 'This channel is closed.');
    const { event, data, id } = message as { event?: string; data?: unknown; id?: string | number };
    const raw = typeof data === 'string';
    let serialized: string | undefined;
    if (data !== undefined) {
      try {
        serialized = raw ? data : this.serialize(data);
      } catch (cause) {
        throw new SseError('ERR_SSE_INVALID_DATA', 'The serializer threw on this data.', { cause });
      }
      if (typeof serialized !== 'string')
        throw new SseError('ERR_SSE_INVALID_DATA', `The serializer returned ${typeof serialized}, not a string.`);
    }
    // Validates event and id exactly as they will be written, before the backplane sees them.
    formatEvent({ event, id, data: serialized });
    return this.backplane.publish(this.name, {
      id: id === undefined ? undefined : String(id),
      event: event === 'message' ? undefined : event,
      data: serialized,
      raw,
      value: data,
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscription?.unsubscribe();
    for (const stream of [...this.subscribers.keys()]) stream.close();
    this.subscribers.clear();
    await this.ready?.catch(noop);
    if (this.ownsBackplane) await this.backplane.close();
  }

  private begin(subscription: BackplaneSubscription): void {
    this.start = subscription.start;
    this.newest ??= subscription.start;
    this.started = true;
    this.subscription = subscription;
  }

  /** The id that stands for "everything so far": the newest delivered, or the log's origin. */
  private markId(): string | undefined {
    return this.newest?.id ?? this.backplane.originId;
  }

  /**
   * The backplane skipped entries in live delivery. Subscribers that were live replay once,
   * together, from the last entry this process delivered; those still catching up are closed,
   * and their clients resume with their own Last-Event-ID.
   */
  private readonly recoverFromGap = (): void => {
    const after = this.markId();
    const affected: Subscriber[] = [];
    for (const [stream, subscriber] of [...this.subscribers]) {
      if (subscriber?.pending || after === undefined) stream.close();
      else if (subscriber) {
        subscriber.pending = [];
        affected.push(subscriber);
      } else {
        const held: Subscriber = { stream, filter: undefined, pending: [], coveredThrough: undefined };
        this.subscribers.set(stream, held);
        affected.push(held);
      }
    }
    if (affected.length === 0) return;
    const replay = Promise.resolve().then(() => this.backplane.replay(this.name, after!, this.maxReplayEvents));
    replay.catch(noop); // each subscriber's catch-up reports it
    for (const subscriber of affected) void this.catchUp(subscriber, after, undefined, replay);
  };

  /** The one path every event takes to subscribers: formatted once, then written as is. */
  private readonly deliver = (entry: BackplaneEntry): void => {
    this.newest = entry;
    if (this.subscribers.size === 0) return;
    const formatted = this.formattedOf(entry);
    // forEach, not for-of over entries: no array per subscriber per event.
    this.subscribers.forEach((subscriber, stream) => {
      if (subscriber === undefined) void stream[kWriteFormatted](formatted);
      else if (subscriber.pending) subscriber.pending.push(entry);
      else if (this.allows(subscriber, entry)) {
        void stream[kWriteFormatted](formatted);
        this.settle(subscriber);
      }
    });
  };

  /** A subscriber with nothing left to hold back, cover or filter becomes a plain one. */
  private settle(subscriber: Subscriber): void {
    if (subscriber.pending || subscriber.coveredThrough !== undefined || subscriber.filter) return;
    if (this.subscribers.get(subscriber.stream) === subscriber) this.subscribers.set(subscriber.stream, undefined);
  }

  private formattedOf(entry: BackplaneEntry): string {
    let formatted = this.formatted.get(entry);
    if (formatted === undefined) {
      formatted = formatEvent({ event: entry.event, id: entry.id, data: entry.data });
      this.formatted.set(entry, formatted);
    }
    return formatted;
  }

  private allows(subscriber: Subscriber, entry: BackplaneEntry): boolean {
    if (subscriber.coveredThrough !== undefined) {
      if (entry.position <= subscriber.coveredThrough) return false;
      subscriber.coveredThrough = undefined;
    }
    if (!subscriber.filter) return true;
    try {
      return subscriber.filter(this.eventOf(entry));
    } catch (error) {
      this.onError(error);
      subscriber.stream.close();
      return false;
    }
  }

  private eventOf(entry: BackplaneEntry): ChannelEvent<TEvents> {
    let event = this.decoded.get(entry);
    if (!event) {
      const data = 'value' in entry ? entry.value : entry.data === undefined || entry.raw ? entry.data : this.deserialize(entry.data);
      event = { id: entry.id, event: entry.event ?? 'message', data } as ChannelEvent<TEvents>;
      this.decoded.set(entry, event);
    }
    return event;
  }

  /** Replays what the subscriber missed, then releases the live events held meanwhile. */
  private async catchUp(
    subscriber: Subscriber,
    lastEventId: string | undefined,
    mark: string | typeof START | undefined,
    shared?: Promise<BackplaneReplay>,
    turn?: (() => void) | Promise<() => void>,
  ): Promise<void> {
    const { stream } = subscriber;
    let endTurn = typeof turn === 'function' ? turn : undefined;
    try {
      if (turn instanceof Promise) {
        endTurn = await turn;
        if (stream.closed) return; // its client left while it waited
        stream.open();
      }
      await this.ready;
      if (mark === START) mark = this.start?.id ?? this.backplane.originId;
      if (mark !== undefined && !(await stream[kWriteFormatted](formatEvent({ id: mark })))) return;
      if (lastEventId !== undefined) {
        // Timed only while someone listens: a resume costs nothing extra otherwise.
        const startedAt = channelReplayChannel.hasSubscribers ? performance.now() : -1;
        const replay = await (shared ?? this.backplane.replay(this.name, lastEventId, this.maxReplayEvents));
        if (replay.found) {
          let events = 0;
          for (const entry of replay.entries) {
            let written = this.write(subscriber, entry);
            if (written instanceof Promise) {
              endTurn?.(); // a full socket waits for its client, not with a turn others need
              written = await written;
            }
            if (!written) return;
            if (written !== SKIPPED) events++;
          }
          endTurn?.();
          subscriber.coveredThrough = replay.entries.at(-1)?.position ?? replay.position;
          if (startedAt >= 0 && channelReplayChannel.hasSubscribers) {
            channelReplayChannel.publish({
              channel: this.name,
              stream,
              lastEventId,
              events,
              durationMs: performance.now() - startedAt,
              cause: shared ? 'gap' : 'resume',
            } satisfies SseChannelReplayMessage);
          }
        } else {
          // The client missed events it can no longer get: say so, and resume from the newest.
          const { latest } = replay;
          subscriber.coveredThrough = latest?.position;
          const id = latest?.id ?? '';
          const reset = formatEvent({ event: this.resetEvent, id, data: JSON.stringify({ lastEventId }) });
          if (!(await stream[kWriteFormatted](reset))) return;
          if (channelResetChannel.hasSubscribers) {
            channelResetChannel.publish({ channel: this.name, stream, lastEventId, id } satisfies SseChannelResetMessage);
          }
        }
      }
      // Live events arrived meanwhile; any the replay already covered are skipped by position.
      const pending = subscriber.pending!;
      for (let i = 0; i < pending.length; i++) {
        if (!(await this.write(subscriber, pending[i]!))) return;
      }
      subscriber.pending = undefined;
      this.settle(subscriber);
    } catch (error) {
      this.onError(error);
      stream.close();
    } finally {
      endTurn?.();
    }
  }

  /**
   * Writes one entry to one subscriber, waiting for the socket only when it is full: `true` once
   * it went out, {@link SKIPPED} when the filter (or replay's coverage) left it out, `false` when
   * the stream closed.
   */
  private write(subscriber: Subscriber, entry: BackplaneEntry): boolean | typeof SKIPPED | Promise<boolean> {
    if (subscriber.stream.closed) return false;
    if (!this.allows(subscriber, entry)) return SKIPPED;
    const sent = subscriber.stream[kWriteFormatted](this.formattedOf(entry));
    return sent === SENT || sent;
  }
}

function noop(): void {}

/** A new subscriber's mark, before delivery has started: the backplane's start, once known. */
const START = Symbol('start');

/** What writing an entry that the subscriber does not get returns: it goes on, having sent nothing. */
const SKIPPED = Symbol('skipped');
