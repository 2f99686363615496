import type { BackplaneEntry, BackplanePublish } from '@ssekit/core';

/**
 * NOTIFY payloads must stay under 8000 bytes (PostgreSQL's default build). An entry that fits
 * well under it travels whole, so that readers deliver it without a query; a larger one travels
 * as a reference (channel and id), and readers fetch it from the table.
 */
const MAX_INLINE_BYTES = 7000;

/** One notification, as readers decode it. */
export interface Notification {
  readonly channel: string;
  readonly id: number;
  /** The entry itself, when it fit in the payload. */
  readonly entry: BackplaneEntry | undefined;
}

/**
 * What a publish NOTIFYs after the id that PostgreSQL assigns: `id` then a space then a JSON
 * array, `[channel, event, data, raw]` for an entry that travels whole, `[channel]` for a
 * reference. JSON escapes every control character, so the payload is always valid text.
 */
export function payloadSuffix(channel: string, { event, data, raw }: Pick<BackplanePublish, 'event' | 'data' | 'raw'>): string {
  const reference = ' ' + JSON.stringify([channel]);
  // A UTF-8 string has at least as many bytes as UTF-16 code units: no need to encode a large
  // one to know that it does not fit.
  if ((data?.length ?? 0) + (event?.length ?? 0) + channel.length > MAX_INLINE_BYTES) return reference;
  const whole = ' ' + JSON.stringify([channel, event ?? null, data ?? null, raw ? 1 : 0]);
  return Buffer.byteLength(whole) > MAX_INLINE_BYTES ? reference : whole;
}

/** Decodes a payload; `undefined` for one that no backplane of this version wrote. */
export function parsePayload(payload: string): Notification | undefined {
  const space = payload.indexOf(' ');
  const id = Number(payload.slice(0, space));
  if (space < 1 || !Number.isSafeInteger(id) || id < 1) return undefined;
  let fields: unknown;
  try {
    fields = JSON.parse(payload.slice(space + 1));
  } catch {
    return undefined;
  }
  if (!Array.isArray(fields) || typeof fields[0] !== 'string') return undefined;
  const [channel, event, data, raw] = fields as [string, unknown, unknown, unknown];
  if (fields.length === 1) return { channel, id, entry: undefined };
  if (fields.length !== 4 || !isOptionalString(event) || !isOptionalString(data)) return undefined;
  return {
    channel,
    id,
    entry: { id: String(id), position: id, event: event ?? undefined, data: data ?? undefined, raw: raw === 1 },
  };
}

const isOptionalString = (value: unknown): value is string | null => value === null || typeof value === 'string';
