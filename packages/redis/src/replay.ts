import type { BackplaneReplay } from '@ssekit/core';
import type { Commands } from './commands.js';
import { ORIGIN_ID, toEntry } from './entry.js';
import { entriesOf, positionOf } from './reply.js';

/**
 * Every entry of the stream at `key` after `afterId`, or not found, with the newest entry, when
 * the id is unknown, malformed, trimmed away, or more than `limit` entries behind.
 */
export async function replayAfter(commands: Commands, key: string, afterId: string, limit: number): Promise<BackplaneReplay> {
  if (afterId === ORIGIN_ID) {
    // A client holds the origin when it subscribed before its instance delivered anything.
    // Only an empty stream proves that it missed nothing since: any entry might be one it
    // missed, or one from before it came, so it gets the reset event.
    if ((await commands.newest(key)) === undefined) {
      const exists = Number(await commands.send(['EXISTS', key], `Replaying ${key}`));
      if (exists === 0) return { found: true, position: 0n, entries: [] };
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
