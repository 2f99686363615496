/**
 * Where the reconnecting readers of scenario J stand: what a load-client process answers to
 * `reconnect-status`, and what the orchestrator sums over them.
 */

/** Counts are over the readers' whole lives; times in microseconds (see `nowMicros`). */
export interface ReconnectStatus {
  readers: number;
  live: number;
  caughtUp: number;
  lastLiveAt: number;
  lastCaughtUpAt: number;
  attempts: number;
  deferred: number;
  gaveUp: number;
  drops: Record<string, number>;
}

/** A status with nothing counted yet: where a client's count, and the orchestrator's sum, start. */
export function noReconnects(): ReconnectStatus {
  return { readers: 0, live: 0, caughtUp: 0, lastLiveAt: 0, lastCaughtUpAt: 0, attempts: 0, deferred: 0, gaveUp: 0, drops: {} };
}
