import type { BackplaneEntry, BackplanePosition, BackplanePublish } from '@ssekit/core';
import { headers as createHeaders, type MsgHdrs } from '@nats-io/nats-core';

/** The id before the first entry of every channel. */
export const ORIGIN_ID = '0';

/**
 * The headers each message carries. `Ssekit-Prev` chains a channel's messages: the stream
 * sequence of the previous message on the same subject, `0` for the first.
 */
export const HEADERS = {
  prev: 'Ssekit-Prev',
  event: 'Ssekit-Event',
  raw: 'Ssekit-Raw',
  noData: 'Ssekit-No-Data',
} as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SEQUENCE = /^(0|[1-9]\d{0,15})$/;

/** A message of the stream, as the backplane reads it. */
export interface StoredEntry {
  readonly seq: number;
  readonly subject: string;
  /** The sequence of the previous message on its subject; `undefined` when the header is missing. */
  readonly prev: number | undefined;
  readonly entry: BackplaneEntry;
}

/** The stream sequence an SSE id names, or `undefined` when it is not one. */
export function sequenceOf(id: string): number | undefined {
  if (!SEQUENCE.test(id)) return undefined;
  const seq = Number(id);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

export const positionAt = (seq: number): BackplanePosition => ({ id: String(seq), position: seq });

/**
 * The headers of a publish: the chain link, the event name (URI-encoded, since NATS trims
 * header values and they must be one line), and flags for a raw string and for no data.
 */
export function headersOf({ event, data, raw }: Pick<BackplanePublish, 'event' | 'data' | 'raw'>, prev: number): MsgHdrs {
  const headers = createHeaders();
  headers.set(HEADERS.prev, String(prev));
  if (event !== undefined) headers.set(HEADERS.event, encodeURIComponent(event));
  if (raw) headers.set(HEADERS.raw, '1');
  if (data === undefined) headers.set(HEADERS.noData, '1');
  return headers;
}

/** The payload of a publish: the data as it goes on the wire, in UTF-8. */
export function payloadOf({ data }: Pick<BackplanePublish, 'data'>): Uint8Array {
  return encoder.encode(data ?? '');
}

/** A stored message as the channel takes it, with its chain link. */
export function storedEntryOf(seq: number, subject: string, headers: MsgHdrs | undefined, payload: Uint8Array): StoredEntry {
  const prev = headers?.get(HEADERS.prev) ?? '';
  const event = headers?.has(HEADERS.event) ? headers.get(HEADERS.event) : undefined;
  const entry: BackplaneEntry = {
    id: String(seq),
    position: seq,
    event: event === undefined ? undefined : decodeEvent(event),
    data: headers?.get(HEADERS.noData) === '1' ? undefined : decoder.decode(payload),
    raw: headers?.get(HEADERS.raw) === '1',
  };
  return { seq, subject, prev: sequenceOf(prev), entry };
}

function decodeEvent(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded; // not written by this backplane
  }
}
