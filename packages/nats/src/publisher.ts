import { SseError, type BackplanePublish } from '@ssekit/core';
import { headersOf, payloadOf } from './entry.js';
import { NatsBackplaneError, unavailable } from './error.js';
import { codeOf, type Stream } from './stream.js';
import { isWellFormed } from './subject.js';

/** The server's answer when the expected last subject sequence is not the real one. */
const WRONG_LAST_SEQUENCE = 10071;
/**
 * How often one publish may try again after other publishers appended to its channel first; it
 * also stops once `timeoutMs` has passed.
 */
const MAX_ATTEMPTS = 1000;
/** The longest pause between two tries, in ms, with racing publishers. */
const MAX_RACE_PAUSE_MS = 10;

/**
 * Appends to channels, each message chained to the previous one on its subject: its
 * `Ssekit-Prev` header names that message's sequence, and the server appends it only if that is
 * still the newest (`Nats-Expected-Last-Subject-Sequence`), so the chain has no hole even with
 * many publishers. Publishes to one channel go one at a time in this process, each knowing the
 * sequence the previous one got; across processes, the loser of a race learns the newest
 * sequence from the server's refusal and tries again.
 */
export class Publisher {
  private readonly stream: Stream;
  /** The newest sequence known on each subject, from this process' publishes and deliveries. */
  private readonly newest = new Map<string, number>();
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(stream: Stream) {
    this.stream = stream;
  }

  /** Appends `entry` to `subject` after every earlier publish to it from this process. */
  publish(subject: string, entry: BackplanePublish): Promise<string> {
    const append = () => this.append(subject, entry);
    const previous = this.queues.get(subject);
    const result = previous ? previous.then(append, append) : append();
    const settled = result.catch(() => {});
    this.queues.set(subject, settled);
    void settled.then(() => {
      if (this.queues.get(subject) === settled) this.queues.delete(subject);
    });
    return result;
  }

  /** Records that `seq` is on `subject`: a later publish then expects at least that. */
  observe(subject: string, seq: number): void {
    if (seq > (this.newest.get(subject) ?? 0)) this.newest.set(subject, seq);
  }

  private async append(subject: string, entry: BackplanePublish): Promise<string> {
    const what = `Publishing to ${subject}`;
    const payload = payloadOf(entry);
    const deadline = performance.now() + this.stream.timeoutMs;
    let prev = this.newest.get(subject);
    for (let attempt = 1; ; attempt++) {
      prev ??= (await this.stream.last(subject))?.seq ?? 0;
      try {
        const seq = await this.stream.publish(subject, payload, headersOf(entry, prev), prev);
        this.observe(subject, seq);
        return String(seq);
      } catch (error) {
        if (codeOf(error) !== WRONG_LAST_SEQUENCE) {
          // No stream took it: it may have been deleted. Look for it, and the newest sequences, again.
          if ((error as Error | undefined)?.name === 'JetStreamNotEnabled') {
            this.stream.forget();
            this.newest.clear();
          }
          throw unavailable(what, error, this.stream.timeoutMs);
        }
        if (attempt >= MAX_ATTEMPTS || performance.now() > deadline) {
          const message = `${what} failed: other publishers appended to this channel first, ${attempt} times in a row.`;
          throw new NatsBackplaneError(message, { cause: error, sent: false });
        }
        // "wrong last sequence: 42": the newest on the subject is 42. Without a number, read it.
        const actual = /(\d+)\s*$/.exec((error as Error).message)?.[1];
        if (actual === undefined) this.newest.delete(subject);
        else this.newest.set(subject, Number(actual)); // lower too: a subject whose entries all aged out starts at 0
        if (attempt >= 2) {
          // Publishers in lockstep: the same one would keep losing. A random pause, longer each
          // time, breaks the step; what this process delivered meanwhile keeps `prev` fresh.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(MAX_RACE_PAUSE_MS, 2 * attempt)));
        }
        prev = this.newest.get(subject);
      }
    }
  }
}

/** Checks what only a publish can get wrong, before anything is sent. */
export function checkPublish(entry: BackplanePublish): SseError | undefined {
  if (entry.id !== undefined) {
    return new SseError(
      'ERR_SSE_INVALID_FIELD',
      `The NATS backplane assigns every id itself (the stream sequence, such as "42"); publish without an id, not with ${JSON.stringify(entry.id)}.`,
    );
  }
  if (entry.event !== undefined && !isWellFormed(entry.event)) {
    return new SseError('ERR_SSE_INVALID_FIELD', 'The event name is not well-formed UTF-16 (it has a lone surrogate).');
  }
  return undefined;
}
