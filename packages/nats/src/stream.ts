import { SseError } from '@ssekit/core';
import { nanos, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type DirectMsgRequest,
  type JetStreamClient,
  type JetStreamManager,
  type MsgRequest,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { storedEntryOf, type StoredEntry } from './entry.js';
import { unavailable } from './error.js';
import type { Link } from './link.js';
import { tokenOf } from './subject.js';

/** The JetStream API error codes the backplane acts on. */
const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;

/** What the backplane learned about its stream when it found or made it. */
export interface StreamFacts {
  /**
   * When the stream was made. Another value later means it was deleted and made again: its
   * sequences started over at 1.
   */
  readonly created: string;
  /** Whether the stream answers direct gets (`allow_direct`), or only the leader's message API. */
  readonly allowDirect: boolean;
  /**
   * Whether a subject may lose all its messages (an age limit, or stream-wide count or size
   * limits): then an empty subject does not prove that nothing was ever published on it.
   */
  readonly mayEmpty: boolean;
}

export interface StreamOptions {
  readonly connection: NatsConnection;
  readonly link: Link;
  readonly name: string;
  readonly maxLen: number;
  readonly maxAgeMs: number;
  readonly timeoutMs: number;
}

/**
 * The one JetStream stream a backplane keeps its channels in, `<name>` with the subjects
 * `<name>.<token>`: found or made on first use, then read and appended to, each request failing
 * at once while the connection is down.
 */
export class Stream {
  readonly name: string;
  private readonly link: Link;
  private readonly connection: NatsConnection;
  private readonly maxLen: number;
  private readonly maxAgeMs: number;
  readonly timeoutMs: number;
  private readonly client: JetStreamClient;
  private manager: Promise<JetStreamManager> | undefined;
  private setup: Promise<StreamFacts> | undefined;
  /** Known once the stream was found or made. */
  facts: StreamFacts | undefined;

  constructor({ connection, link, name, maxLen, maxAgeMs, timeoutMs }: StreamOptions) {
    this.connection = connection;
    this.link = link;
    this.name = name;
    this.maxLen = maxLen;
    this.maxAgeMs = maxAgeMs;
    this.timeoutMs = timeoutMs;
    this.client = jetstream(connection, { timeout: timeoutMs });
  }

  /** The subject of a channel. @throws {SseError} for a name that cannot be one. */
  subjectOf(channel: string): string {
    return `${this.name}.${tokenOf(channel)}`;
  }

  /**
   * Finds the stream, or makes it, and checks that its configuration is the one the options
   * describe; once, or again after {@link Stream.forget}. Safe when many instances start at once:
   * a stream that another one made meanwhile is read and accepted.
   */
  ready(): Promise<StreamFacts> {
    if (!this.setup) {
      const setup = this.findOrCreate().then(
        (facts) => (this.facts = facts),
        (error: unknown) => {
          if (this.setup === setup) this.setup = undefined;
          throw error;
        },
      );
      this.setup = setup;
    }
    return this.setup;
  }

  /** Looks for the stream again on next use: it was not where it was, so it may be gone. */
  forget(): void {
    this.setup = undefined;
  }

  /** Runs one request to NATS, failing at once while disconnected, with the backplane's errors. */
  request<T>(what: string, request: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.link.run(what, request).catch((error: unknown) => {
      if (codeOf(error) === STREAM_NOT_FOUND) this.forget(); // deleted: made again on next use
      throw unavailable(what, error, this.timeoutMs);
    });
  }

  /** Appends one message, if the newest on its subject is still `prev`, and resolves to its sequence. */
  async publish(subject: string, payload: Uint8Array, headers: MsgHdrs, prev: number): Promise<number> {
    await this.ready();
    // Errors pass through raw: the publisher reads the server's "wrong last sequence".
    const ack = await this.link.run(`Publishing to ${subject}`, () =>
      this.client.publish(subject, payload, {
        headers,
        // The server stores these headers with the message: only the one that chains it.
        expect: { lastSubjectSequence: prev },
        timeout: this.timeoutMs,
      }),
    );
    return ack.seq;
  }

  /** The newest message on `subject`. */
  last(subject: string): Promise<StoredEntry | undefined> {
    return this.get(`Reading the newest entry of ${subject}`, { last_by_subj: subject });
  }

  /** The message at `seq`, on whatever subject. */
  at(seq: number): Promise<StoredEntry | undefined> {
    return this.get(`Reading entry ${seq}`, { seq });
  }

  /** The first message on `subject` at or after `seq`. */
  next(subject: string, seq: number): Promise<StoredEntry | undefined> {
    return this.get(`Reading ${subject}`, { seq, next_by_subj: subject });
  }

  /**
   * A consumer of `subject` from `startSeq` on, as an ordered consumer has it: ephemeral, in
   * memory, one replica, no acks, each message delivered once. The server removes it after
   * `inactiveMs` without a pull.
   */
  async consumer(subject: string, startSeq: number, inactiveMs: number): Promise<Consumer> {
    await this.ready();
    const manager = await this.jsm();
    const info = await this.request(`Starting a consumer of ${subject}`, () =>
      manager.consumers.add(this.name, {
        name: `ssekit_${crypto.randomUUID().replaceAll('-', '')}`,
        // One subject: nats-server 2.9 has no consumers with several filters.
        filter_subject: subject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: startSeq,
        ack_policy: AckPolicy.None,
        max_deliver: 1,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: nanos(inactiveMs),
      }),
    );
    return this.client.consumers.getConsumerFromInfo(info);
  }

  private jsm(): Promise<JetStreamManager> {
    // checkAPI: false, so that making the manager sends nothing.
    this.manager ??= jetstreamManager(this.connection, { timeout: this.timeoutMs, checkAPI: false });
    return this.manager;
  }

  private async get(what: string, query: DirectMsgRequest): Promise<StoredEntry | undefined> {
    const { allowDirect } = await this.ready();
    const manager = await this.jsm();
    const message = await this.request(what, () =>
      // Direct gets cost the stream's leader less; without allow_direct, the message API does it.
      allowDirect ? manager.direct.getMessage(this.name, query) : manager.streams.getMessage(this.name, query as MsgRequest),
    );
    return message ? storedEntryOf(message.seq, message.subject, message.header, message.data) : undefined;
  }

  private async findOrCreate(): Promise<StreamFacts> {
    const what = `Setting up the JetStream stream ${this.name}`;
    try {
      const manager = await this.jsm();
      const read = () => this.link.run(what, () => manager.streams.info(this.name));
      // Read first, so that a user without the right to create streams can use one made for it.
      let info: StreamInfo | undefined = await read().catch((error: unknown) => {
        if (codeOf(error) === STREAM_NOT_FOUND) return undefined;
        throw error;
      });
      info ??= await this.link
        .run(what, () => manager.streams.add(this.wanted()))
        .catch((error: unknown) => {
          // Another instance made it first, with a configuration other than ours: read what it made.
          if (codeOf(error) === STREAM_NAME_IN_USE) return read();
          throw error;
        });
      return { created: info.created, ...this.check(info.config) };
    } catch (error) {
      throw unavailable(what, error, this.timeoutMs);
    }
  }

  /** The configuration this backplane makes its stream with. */
  private wanted(): Partial<StreamConfig> & { name: string } {
    return {
      name: this.name,
      subjects: [`${this.name}.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_msgs_per_subject: this.maxLen,
      max_age: nanos(this.maxAgeMs),
      allow_direct: true,
      num_replicas: 1,
    };
  }

  /** Accepts a stream whose configuration keeps the backplane's promises, and says why not otherwise. */
  private check(config: StreamConfig): Omit<StreamFacts, 'created'> {
    const problems: string[] = [];
    if (!config.subjects?.includes(`${this.name}.>`)) {
      problems.push(`its subjects are ${JSON.stringify(config.subjects ?? [])}, without "${this.name}.>"`);
    }
    if (config.retention !== RetentionPolicy.Limits) problems.push(`its retention is "${config.retention}", not "limits"`);
    if (config.discard !== DiscardPolicy.Old) problems.push(`its discard policy is "${config.discard}", not "old"`);
    if (config.max_msgs_per_subject !== this.maxLen) {
      problems.push(`its max_msgs_per_subject is ${config.max_msgs_per_subject}, but maxLen is ${this.maxLen}`);
    }
    if ((config.max_age ?? 0) !== nanos(this.maxAgeMs)) {
      problems.push(`its max_age is ${(config.max_age ?? 0) / 1e6} ms, but maxAgeMs is ${this.maxAgeMs}`);
    }
    if (config.no_ack) problems.push('it does not acknowledge publishes (no_ack)');
    if (config.sealed) problems.push('it is sealed');
    if (problems.length > 0) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        `The JetStream stream "${this.name}" exists with a configuration this backplane cannot use: ${problems.join('; ')}. ` +
          `Give the backplane the stream's settings, change the stream (\`nats stream edit ${this.name}\`), or use another stream name.`,
      );
    }
    const limited = (limit: number | undefined) => limit !== undefined && limit > 0;
    return {
      allowDirect: config.allow_direct === true,
      mayEmpty: limited(config.max_age) || limited(config.max_msgs) || limited(config.max_bytes),
    };
  }
}

/** The JetStream API error code of `error`, if it has one. */
export function codeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}
