/**
 * The events every server sends: the same data, in the same bytes, whatever the implementation.
 * `seq` lets the client find loss, duplicates and misordering; `t` is the send time for latency.
 */

/** Size of one event's data in the fan-out, single-stream, latency and churn scenarios. */
export const EVENT_BYTES = 100;

/**
 * Wall-clock time in microseconds, with sub-millisecond resolution. Server and clients run on
 * the same machine, so the same clock: `performance.timeOrigin` is read from the system clock
 * at process start, and `performance.now()` is monotonic from there.
 */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

export interface EventData {
  seq: number;
  /** Send time, microseconds since the epoch (see {@link nowMicros}). */
  t: number;
  pad: string;
}

const pads = new Map<number, string>();

/** The data of event `seq`, padded so that its JSON is `bytes` long (for a 16-digit `t`). */
export function makeData(seq: number, bytes = EVENT_BYTES): EventData {
  // {"seq":N,"t":T,"pad":"..."} without the pad is 22 bytes, plus the digits of N and T.
  const fixed = 22 + String(seq).length + 16;
  const padLength = Math.max(0, bytes - fixed);
  let pad = pads.get(padLength);
  if (pad === undefined) pads.set(padLength, (pad = 'x'.repeat(padLength)));
  return { seq, t: nowMicros(), pad };
}
