import type { BackplaneListener, BackplanePosition } from '@ssekit/core';
import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { positionAt, storedEntryOf } from './entry.js';
import { backoff } from './pauses.js';
import type { Stream } from './stream.js';

/** The most messages one pull asks for. */
const PULL_MESSAGES = 512;
/** How long the server keeps a consumer that nobody pulls from: one whose process died. */
const INACTIVE_MS = 30_000;

/** What a {@link Feed} needs from its backplane. */
export interface FeedContext {
  readonly stream: Stream;
  /** How often the server tells an idle consumer it is still there. */
  readonly heartbeatMs: number;
  /** Whether requests can go out now. */
  connected(): boolean;
  /** Whether the connection closed for good: nothing will ever go out again. */
  ended(): boolean;
  /** Tells the publisher that `seq` is on `subject`. */
  observe(subject: string, seq: number): void;
  /** A pause that the backplane's close() cuts short. */
  pause(ms: number): Promise<void>;
  /** Reading failed; it is retried. */
  failed(error: unknown): void;
  /** Reading works again. */
  recovered(): void;
  /** A listener threw. */
  onError(error: unknown): void;
}

/** One consumer, and what it has delivered. */
interface Reading {
  readonly generation: number;
  readonly consumer: Consumer;
  messages: ConsumerMessages | undefined;
  /** How many messages this consumer delivered: its delivery sequence must follow. */
  delivered: number;
}

/**
 * Live delivery of one channel's subject to its listeners in this process: where it started,
 * then every message after, once and in order, through an ordered consumer that the feed runs
 * itself. Whenever that consumer may have lost its place (a reconnect, missed heartbeats, a
 * skipped delivery, a consumer the server dropped), the feed starts a new one right after the
 * last message it delivered. The `Ssekit-Prev` chain then tells whether messages were skipped
 * (trimmed before this reader got to them): the listeners hear `gap()` before the next entry.
 */
export class Feed {
  readonly subject: string;
  readonly listeners = new Set<BackplaneListener>();
  /** Resolves once the feed knows where it starts, or it was stopped. */
  readonly started: Promise<void>;
  private readonly context: FeedContext;
  /** The sequence of the last message delivered, or of the newest when the feed started; 0 for none. */
  private last = 0;
  private begun = false;
  /** Bumped for each new consumer: deliveries of older ones are ignored. */
  private generation = 0;
  private reading: Reading | undefined;
  /** Set when the feed had to start a new consumer since it delivered `last`. */
  private reopened = false;
  /** When the stream that `last` belongs to was made. */
  private epoch: string | undefined;
  /** Set when the stream was made again: what this feed had not delivered is gone. */
  private replaced = false;
  private stopped = false;

  constructor(subject: string, context: FeedContext) {
    this.subject = subject;
    this.context = context;
    this.started = this.begin();
  }

  /** Where a listener that joins now starts: the last entry delivered, or the start. */
  position(): BackplanePosition | undefined {
    return this.last > 0 ? positionAt(this.last) : undefined;
  }

  /** Starts a new consumer after the last message delivered: the old one may have lost its place. */
  reopen(): void {
    if (this.stopped || !this.begun) return; // begin() opens the first one
    this.reopened = true;
    void this.open();
  }

  /** Stops delivery and removes the consumer from the server. */
  stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    const reading = this.reading;
    this.reading = undefined;
    return reading ? this.release(reading) : Promise.resolve();
  }

  /** Finds the newest message: delivery starts after it. Retries until NATS answers. */
  private async begin(): Promise<void> {
    for (let attempt = 0; !this.stopped && !this.context.ended(); attempt++) {
      try {
        const newest = await this.context.stream.last(this.subject);
        if (this.stopped) return;
        this.epoch = this.context.stream.facts?.created;
        this.last = newest?.seq ?? 0;
        if (newest) this.context.observe(this.subject, newest.seq);
        this.begun = true;
        void this.open();
        return;
      } catch (error) {
        this.context.failed(error);
        await this.context.pause(backoff(attempt));
      }
    }
  }

  private async open(): Promise<void> {
    const generation = ++this.generation;
    const previous = this.reading;
    this.reading = undefined;
    if (previous) void this.release(previous);
    for (let attempt = 0; !this.stopped && !this.context.ended() && generation === this.generation; attempt++) {
      try {
        const { created } = await this.context.stream.ready();
        if (created !== this.epoch) {
          // The stream was deleted and made again, its sequences from 1: read it from the start.
          this.epoch = created;
          this.last = 0;
          this.replaced = true;
        }
        const consumer = await this.context.stream.consumer(this.subject, this.last + 1, INACTIVE_MS);
        const reading: Reading = { generation, consumer, messages: undefined, delivered: 0 };
        if (this.stopped || generation !== this.generation) {
          void this.release(reading);
          return;
        }
        this.reading = reading;
        const messages = await consumer.consume({
          callback: (message) => this.receive(reading, message),
          max_messages: PULL_MESSAGES,
          idle_heartbeat: this.context.heartbeatMs,
          expires: Math.max(1000, this.context.heartbeatMs * 10),
          // A consumer the server lost ends the iterator, and the feed starts a new one.
          abort_on_missing_resource: true,
        });
        reading.messages = messages;
        if (this.reading !== reading) {
          messages.stop();
          return;
        }
        void this.watch(reading, messages);
        this.context.recovered();
        return;
      } catch (error) {
        this.context.failed(error);
        await this.context.pause(backoff(attempt));
      }
    }
  }

  /** Starts over when the client library says the consumer may have lost its place. */
  private async watch(reading: Reading, messages: ConsumerMessages): Promise<void> {
    const current = () => reading.generation === this.generation && !this.stopped;
    void messages.closed().then(() => {
      if (current()) this.reopen();
    });
    for await (const status of messages.status()) {
      if (!current()) return;
      switch (status.type) {
        case 'heartbeats_missed':
        case 'consumer_deleted':
        case 'consumer_not_found':
        case 'stream_not_found':
        case 'no_responders':
          this.reopen();
          return;
      }
    }
  }

  private receive(reading: Reading, message: JsMsg): void {
    if (reading.generation !== this.generation || this.stopped) return;
    reading.delivered++;
    if (message.info.deliverySequence !== reading.delivered) {
      // A delivery went missing on the way: read again from the last message delivered.
      this.reopen();
      return;
    }
    const seq = message.seq;
    if (seq <= this.last) return;
    const { prev, entry } = storedEntryOf(seq, message.subject, message.headers, message.data);
    let gap = prev !== this.last;
    if (prev === 0 && this.context.stream.facts?.mayEmpty) {
      // The subject was empty when this was published: everything before it aged out. A reader
      // that kept reading saw it all; one that started over after an outage cannot tell.
      gap = this.reopened;
    }
    gap ||= this.replaced;
    this.last = seq;
    this.reopened = false;
    this.replaced = false;
    this.context.observe(this.subject, seq);
    for (const listener of [...this.listeners]) {
      try {
        if (gap) listener.gap();
        listener.entry(entry);
      } catch (error) {
        this.context.onError(error);
      }
    }
  }

  private async release({ consumer, messages }: Reading): Promise<void> {
    messages?.stop();
    // The server drops an idle consumer by itself after a while; deleting it frees it now.
    if (this.context.connected()) {
      await this.context.stream.request(`Deleting a consumer of ${this.subject}`, () => consumer.delete()).catch(() => {});
    }
  }
}
