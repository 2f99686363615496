/**
 * The strict event id policy, enforced both when ids are written and when a client sends them
 * back in `Last-Event-ID`.
 *
 * An id is 0 to 128 characters of printable ASCII (U+0020 to U+007E) with no space at either
 * end. Ids cross the network again on reconnect, so they must survive every hop unchanged:
 * ASCII passes header encodings as is, 128 bytes fits Fetch's CORS-safelisted header limit, and
 * clients or proxies may trim edge whitespace. The empty id is allowed: it tells the client to
 * forget its last id.
 */
const STRICT_ID = /^(?:[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?)?$/;

/** The longest id ssekit writes or accepts, in characters (all ASCII, so also in bytes). */
export const MAX_EVENT_ID_LENGTH = 128;

/** Whether `id` follows ssekit's strict event id policy. */
export function isValidEventId(id: string): boolean {
  return STRICT_ID.test(id);
}

/**
 * Reads a `Last-Event-ID` request header and returns it only when it is a valid, non-empty id.
 * Anything else (absent, oversized, non-ASCII, control characters) reads as `undefined`, so
 * hostile values never reach application code. Node joins a repeated header into `a, b`, which
 * is a well-formed id that matches nothing, so replay treats it as unknown.
 */
export function readLastEventId(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || header.length === 0 || header.length > MAX_EVENT_ID_LENGTH) {
    return undefined;
  }
  return STRICT_ID.test(header) ? header : undefined;
}
