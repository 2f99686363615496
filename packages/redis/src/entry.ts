import type { BackplaneEntry, BackplanePublish } from '@ssekit/core';
import type { RawEntry } from './reply.js';

/** The id before the first entry of every stream. */
export const ORIGIN_ID = '0-0';

/**
 * The fields of a stream entry for `XADD`, kept short because every entry stores them: `e` the
 * event name (absent for `message`), `d` the data as it goes on the wire (absent without data),
 * and `r`, whether the data was published as a string, so that other processes can decode it.
 */
export function fieldsOf({ event, data, raw }: Pick<BackplanePublish, 'event' | 'data' | 'raw'>): string[] {
  const fields: string[] = [];
  if (event !== undefined) fields.push('e', event);
  if (data !== undefined) fields.push('d', data);
  fields.push('r', raw ? '1' : '0');
  return fields;
}

/** A stream entry as Redis returned it, as the channel takes it; `position` is its id's. */
export function toEntry({ id, fields }: RawEntry, position: bigint): BackplaneEntry {
  return { id, position, event: fields.get('e'), data: fields.get('d'), raw: fields.get('r') === '1' };
}
