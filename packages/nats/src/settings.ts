import type { NatsConnection } from '@nats-io/nats-core';

/** The reconnect settings of a connection, where the client exposes them. */
interface Settings {
  readonly options?: {
    readonly reconnect?: unknown;
    readonly maxReconnectAttempts?: unknown;
    readonly reconnectTimeWait?: unknown;
  };
}

/** The longest reconnect wait that still lets delivery resume within 5 s of the server's return. */
const MAX_RECONNECT_TIME_WAIT_MS = 1000;

/**
 * Why the injected connection cannot keep the backplane's promises, if it cannot: the backplane
 * uses the connection as it is, so only its owner can fix its reconnect settings. `undefined`
 * when they are fine, or unknown.
 */
export function connectionWarning(connection: NatsConnection): string | undefined {
  const options = (connection as Settings).options;
  if (!options) return undefined;
  const problems: string[] = [];
  if (options.reconnect === false) problems.push('reconnect is false, so the first outage ends it for good');
  const attempts = options.maxReconnectAttempts;
  if (typeof attempts === 'number' && attempts !== -1) {
    problems.push(`maxReconnectAttempts is ${attempts}, so it closes for good after an outage that long (use -1)`);
  }
  const wait = options.reconnectTimeWait;
  if (typeof wait === 'number' && wait > MAX_RECONNECT_TIME_WAIT_MS) {
    problems.push(`reconnectTimeWait is ${wait} ms, so it notices the server's return late (use 250)`);
  }
  if (problems.length === 0) return undefined;
  return `The NATS connection given to the backplane will not recover quickly from an outage: ${problems.join('; ')}. See the README of @ssekit/nats for the settings to pass to connect().`;
}
