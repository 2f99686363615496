import type { BackplaneReplay } from '@ssekit/core';
import type { Commands } from './commands.js';
import { ORIGIN_ID, toEntry } from './entry.js';
import { bulkString, entriesOf, pairsOf, positionOf } from './reply.js';

/**
 * Every entry of the stream at `key` after `afterId`, or not found, with the newest entry, when
 * the id is unknown, malformed, trimmed away, or more than `limit` entries behind.
 */
export async function replayAfter(commands: Commands, key: string, afterId: string, limit: number): Promise<BackplaneReplay> {
  if (afterId === ORIGIN_ID) {
    // The whole stream, while nothing has left it. Read first, then check: if nothing was ever
    // removed by the time of the check (Redis 7 counts every entry added), the read was whole.
    const entries = entriesOf(await commands.send(['XRANGE', key, '-', '+', 'COUNT', String(limit + 1)], `Replaying ${key}`));
    if (entries.length <= limit && (await neverTrimmed(commands, key))) {
      return { found: true, position: 0n, entries: entries.map((raw) => toEntry(raw, positionOf(raw.id)!)) };
    }
    return notFound(commands, key);
  }
  const position = positionOf(afterId);
  if (position !== undefined) {
    // Inclusive start: the first entry must be afterId itself, which proves it is still in
    // the stream (not trimmed, not made up) in the same read as what follows it.
    const entries = entriesOf(await commands.send(['XRANGE', key, afterId, '+', 'COUNT', String(limit + 2)], `Replaying ${key}`));
    if (entries[0]?.id === afterId && entries.length - 1 <= limit) {
      return { found: true, position, entries: entries.slice(1).map((raw) => toEntry(raw, positionOf(raw.id)!)) };
    }
  }
  return notFound(commands, key);
}

async function notFound(commands: Commands, key: string): Promise<BackplaneReplay> {
  const latest = await commands.newest(key);
  return { found: false, latest: latest && { id: latest.id, position: positionOf(latest.id)! } };
}

async function neverTrimmed(commands: Commands, key: string): Promise<boolean> {
  if (Number(await commands.send(['EXISTS', key], `Replaying ${key}`)) === 0) return true;
  const info = new Map(
    pairsOf(await commands.send(['XINFO', 'STREAM', key], `Replaying ${key}`)).map(([name, value]) => [bulkString(name), value]),
  );
  return info.has('entries-added') && Number(info.get('entries-added')) === Number(info.get('length'));
}
