import diagnostics_channel from 'node:diagnostics_channel';
import { SSE_DIAGNOSTICS, type SseBackplaneMessage } from '@ssekit/core';

/** What one backplane reported to diagnostics while recorded, until `stop()`. */
export interface BackplaneDiagnostics {
  /** The `error` of each `ssekit:backplane:error` message, in order. */
  readonly errors: unknown[];
  /** How many `ssekit:backplane:reconnect` messages came. */
  readonly reconnects: () => number;
  stop(): void;
}

/** Records the `ssekit:backplane:*` messages of the backplane named `backplane` (`redis`, ...). */
export function recordBackplaneDiagnostics(backplane: string): BackplaneDiagnostics {
  const errors: unknown[] = [];
  let reconnects = 0;
  const onError = (message: unknown) => {
    if ((message as SseBackplaneMessage).backplane === backplane) errors.push((message as SseBackplaneMessage).error);
  };
  const onReconnect = (message: unknown) => {
    if ((message as SseBackplaneMessage).backplane === backplane) reconnects++;
  };
  diagnostics_channel.subscribe(SSE_DIAGNOSTICS.backplaneError, onError);
  diagnostics_channel.subscribe(SSE_DIAGNOSTICS.backplaneReconnect, onReconnect);
  return {
    errors,
    reconnects: () => reconnects,
    stop() {
      diagnostics_channel.unsubscribe(SSE_DIAGNOSTICS.backplaneError, onError);
      diagnostics_channel.unsubscribe(SSE_DIAGNOSTICS.backplaneReconnect, onReconnect);
    },
  };
}
