import type { BackplaneEntry, BackplaneReplay } from '@ssekit/core';
import { positionAt, sequenceOf, storedEntryOf, type StoredEntry } from './entry.js';
import type { Stream } from './stream.js';

/** Up to this many entries, replay reads message by message (direct gets) instead of starting a consumer. */
const WALK_ENTRIES = 8;
/** How long the server keeps a replay's consumer should this process not delete it. */
const REPLAY_INACTIVE_MS = 10_000;

/**
 * Every entry of `subject` after `afterId`, or not found, with the newest entry, when the id is
 * malformed, not a message of this subject (unknown, trimmed, another channel's), or more than
 * `limit` entries behind. The `Ssekit-Prev` chain proves each answer: found only if the entries
 * link from `afterId` to the newest one without a hole.
 */
export async function replayAfter(stream: Stream, subject: string, afterId: string, limit: number): Promise<BackplaneReplay> {
  const after = sequenceOf(afterId);
  const [newest, at] = await Promise.all([stream.last(subject), after ? stream.at(after) : undefined]);
  const notFound: BackplaneReplay = { found: false, latest: newest && positionAt(newest.seq) };
  if (after === undefined) return notFound;
  // The origin: a client that connected before its channel delivered anything. It missed
  // nothing only if the subject's chain still begins with the first message ever (Prev 0), and
  // nothing can have aged out of it: with age limits, a chain that starts at 0 may have started
  // over after the subject emptied.
  if (after === 0 && stream.facts?.mayEmpty) return notFound;
  if (after !== 0 && at?.subject !== subject) return notFound;
  if (!newest) return after === 0 ? { found: true, position: 0, entries: [] } : notFound;
  if (newest.seq === after) return { found: true, position: after, entries: [] };
  if (newest.seq < after) return notFound;
  const entries = await entriesBetween(stream, subject, after, newest, limit);
  return entries ? { found: true, position: after, entries } : notFound;
}

/**
 * The entries after `after` up to `newest`, each linked to the one before; `undefined` when the
 * chain breaks (entries were trimmed meanwhile) or holds more than `limit`.
 */
async function entriesBetween(
  stream: Stream,
  subject: string,
  after: number,
  newest: StoredEntry,
  limit: number,
): Promise<BackplaneEntry[] | undefined> {
  if (newest.prev === after) return limit >= 1 ? [newest.entry] : undefined;
  const entries: BackplaneEntry[] = [];
  let last = after;
  // A client that missed a few events: read them one by one, cheaper than a consumer.
  while (entries.length < WALK_ENTRIES) {
    const next = await stream.next(subject, last + 1);
    if (!next || next.prev !== last || entries.length >= limit) return undefined;
    entries.push(next.entry);
    last = next.seq;
    if (last >= newest.seq) return entries;
  }
  const rest = await fetchBetween(stream, subject, last, newest.seq, limit - entries.length);
  return rest && entries.concat(rest);
}

/** The same through a consumer, for longer replays. */
async function fetchBetween(
  stream: Stream,
  subject: string,
  after: number,
  until: number,
  limit: number,
): Promise<BackplaneEntry[] | undefined> {
  const consumer = await stream.consumer(subject, after + 1, REPLAY_INACTIVE_MS);
  try {
    return await stream.request(`Replaying ${subject}`, async (signal) => {
      const messages = await consumer.fetch({ max_messages: limit + 1, expires: Math.max(1000, stream.timeoutMs) });
      signal.addEventListener('abort', () => messages.stop());
      const entries: BackplaneEntry[] = [];
      let last = after;
      try {
        for await (const message of messages) {
          const { prev, entry, seq } = storedEntryOf(message.seq, message.subject, message.headers, message.data);
          if (prev !== last || entries.length >= limit) return undefined;
          entries.push(entry);
          last = seq;
          if (last >= until) return entries;
        }
        return undefined; // the fetch ended before the newest entry: it left the stream meanwhile
      } finally {
        messages.stop();
      }
    });
  } finally {
    void stream.request(`Deleting a consumer of ${subject}`, () => consumer.delete()).catch(() => {});
  }
}
