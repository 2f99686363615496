/**
 * Readers for raw Redis replies. The same command answers in different shapes depending on the
 * client and the protocol: RESP2 arrays of pairs, RESP3 maps as flat arrays (ioredis' legacy
 * mapping), plain objects (node-redis) or `Map`s (a type mapping), strings or Buffers.
 */

/** A stream entry id, `<ms>-<seq>`, in decimal digits without sign or leading zeros. */
const ENTRY_ID = /^(0|[1-9]\d{0,19})-(0|[1-9]\d{0,19})$/;
const MAX_PART = (1n << 64n) - 1n;

/**
 * Where an entry id sits in its stream: `ms * 2^64 + seq`, a bigint that orders exactly as
 * Redis orders ids. `undefined` when `id` is not a stream entry id.
 */
export function positionOf(id: string): bigint | undefined {
  const match = ENTRY_ID.exec(id);
  if (!match) return undefined;
  const ms = BigInt(match[1]!);
  const seq = BigInt(match[2]!);
  return ms > MAX_PART || seq > MAX_PART ? undefined : (ms << 64n) | seq;
}

/** A Redis bulk string (a Buffer or a string, by client and protocol) as a string. */
export function bulkString(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/** `[name, value]` pairs of a map reply in any of its shapes. */
export function pairsOf(reply: unknown): Array<[unknown, unknown]> {
  if (reply === null || reply === undefined) return [];
  if (reply instanceof Map) return [...reply.entries()];
  if (!Array.isArray(reply)) return Object.entries(reply as Record<string, unknown>);
  // RESP2 (and XREAD under it) nests pairs; a flattened map alternates name and value.
  if (reply.length > 0 && Array.isArray(reply[0])) return (reply as unknown[][]).map((pair) => [pair[0], pair[1]]);
  const pairs: Array<[unknown, unknown]> = [];
  for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([reply[i], reply[i + 1]]);
  return pairs;
}

/** One stream entry as Redis returns it: its id and its fields by name. */
export interface RawEntry {
  readonly id: string;
  readonly fields: ReadonlyMap<string, string>;
}

/** The entries of an XRANGE, XREVRANGE, or one stream of an XREAD reply. */
export function entriesOf(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((item) => {
    const [id, fields] = Array.isArray(item) ? (item as unknown[]) : [(item as { id: unknown }).id, (item as { message: unknown }).message];
    const map = new Map<string, string>();
    for (const [name, value] of pairsOf(fields)) map.set(bulkString(name), bulkString(value));
    return { id: bulkString(id), fields: map };
  });
}
