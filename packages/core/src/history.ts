import { SseError } from './errors.js';
import type { BackplaneEntry } from './backplane.js';

/**
 * Where a channel keeps recent events for replay. Implement it to keep history elsewhere; the
 * in-memory backplane takes one per channel.
 */
export interface HistoryStore {
  /** Adds the newest entry. */
  append(entry: BackplaneEntry): void;
  /** Whether an entry with this id is still held. */
  has(id: string): boolean;
  /**
   * The entries after the one with id `afterId`, oldest first, at most `limit` of them, with the
   * position of `afterId` itself; `undefined` when that id is unknown or has fallen out.
   */
  after(afterId: string, limit: number): { position: number | bigint; entries: BackplaneEntry[] } | undefined;
  /** The newest entry still held. */
  latest(): BackplaneEntry | undefined;
  /** The oldest entry still held. */
  oldest(): BackplaneEntry | undefined;
}

/** Options of {@link createMemoryHistory}. */
export interface MemoryHistoryOptions {
  /**
   * The most events kept.
   * @default 1000
   */
  maxEvents?: number;
  /**
   * How long an event is kept, in milliseconds.
   * @default 300000 (5 minutes)
   */
  maxAgeMs?: number;
}

/** A history bounded by count and by age, held in this process's memory. */
export function createMemoryHistory({ maxEvents = 1000, maxAgeMs = 300_000 }: MemoryHistoryOptions = {}): HistoryStore {
  if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) {
    throw new SseError('ERR_SSE_INVALID_OPTION', `maxEvents must be a positive integer, not ${String(maxEvents)}.`);
  }
  if (!(maxAgeMs > 0)) {
    throw new SseError('ERR_SSE_INVALID_OPTION', `maxAgeMs must be a positive number, not ${String(maxAgeMs)}.`);
  }
  // A ring of entries with their arrival times, plus an index by sequence number for O(1)
  // resume lookups. `first` is the sequence number of the oldest entry, at ring slot `head`.
  const ring: Array<BackplaneEntry | undefined> = [];
  const times: number[] = [];
  const sequenceById = new Map<string, number>();
  let head = 0;
  let size = 0;
  let first = 0;

  // Slots fill in order from 0, so the ring grows without holes until it holds maxEvents.
  const at = (offset: number) => ring[(head + offset) % maxEvents]!;
  const dropOldest = () => {
    sequenceById.delete(ring[head]!.id);
    ring[head] = undefined; // let an expired event go now, not when its slot is reused
    head = (head + 1) % maxEvents;
    size--;
    first++;
  };
  const expire = (now: number) => {
    while (size > 0 && now - times[head]! > maxAgeMs) dropOldest();
  };

  return {
    append(entry) {
      const now = Date.now();
      expire(now);
      if (size === maxEvents) dropOldest();
      const slot = (head + size) % maxEvents;
      ring[slot] = entry;
      times[slot] = now;
      sequenceById.set(entry.id, first + size);
      size++;
    },
    has(id) {
      return sequenceById.has(id);
    },
    after(afterId, limit) {
      expire(Date.now());
      const sequence = sequenceById.get(afterId);
      if (sequence === undefined) return undefined;
      const offset = sequence - first;
      const tail: BackplaneEntry[] = [];
      for (let i = offset + 1; i < size && tail.length < limit; i++) tail.push(at(i));
      return { position: at(offset).position, entries: tail };
    },
    latest() {
      expire(Date.now());
      return size > 0 ? at(size - 1) : undefined;
    },
    oldest() {
      expire(Date.now());
      return size > 0 ? at(0) : undefined;
    },
  };
}
