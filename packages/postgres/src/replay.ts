import type { BackplaneReplay } from '@ssekit/core';
import { entryOf, idOf, type Row, type Statements } from './statements.js';

/** The id before every channel's first entry. */
export const ORIGIN_ID = '0';

/** An id as the backplane writes them: decimal digits, no sign, no leading zero, below 2^53. */
const CANONICAL_ID = /^(0|[1-9]\d{0,15})$/;

/**
 * Every entry of `channel` after `afterId`, or not found, with the newest entry, when the id is
 * malformed, unknown, trimmed away, or more than `limit` entries behind. One statement, so one
 * snapshot: the channel's last id, its oldest and newest remaining ids, and the entries after
 * `afterId`. Ids are contiguous, so `afterId` is in the log exactly when it lies between the
 * oldest and the newest; the origin resumes while the log still starts at 1.
 */
export async function replayAfter(
  run: (text: string, values: readonly unknown[], what: string) => Promise<readonly Row[]>,
  statements: Statements,
  channel: string,
  afterId: string,
  limit: number,
): Promise<BackplaneReplay> {
  const after = CANONICAL_ID.test(afterId) && Number.isSafeInteger(Number(afterId)) ? Number(afterId) : undefined;
  // Without an id to resume from, only the channel's head is read.
  const rows = await run(statements.replay, [channel, after ?? 0, after === undefined ? 0 : limit + 1], `Replaying ${channel}`);
  const head = rows[0]!;
  const last = numberOrZero(head.last_id);
  const oldest = numberOrZero(head.oldest);
  const newest = numberOrZero(head.newest);
  const entries = rows.filter((row) => row.id !== null && row.id !== undefined).map(entryOf);
  const inLog = after !== undefined && oldest > 0 && oldest <= after && after <= newest;
  // The origin stands before entry 1: still there, or never written.
  const fromOrigin = after === 0 && (oldest === 1 || last === 0);
  if ((inLog || fromOrigin) && entries.length <= limit) return { found: true, position: after, entries };
  return { found: false, latest: newest > 0 ? { id: String(newest), position: newest } : undefined };
}

const numberOrZero = (value: unknown) => (value === null || value === undefined ? 0 : idOf(value));
