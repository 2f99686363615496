/**
 * ssekit-node with a listener on every `ssekit:` diagnostics channel, as @ssekit/metrics or an
 * APM would have: what diagnostics cost once someone listens. Opt-in (`--impls`).
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { SSE_DIAGNOSTICS } from '@ssekit/core';
import type { BenchServer } from './common.js';
import { start as startSsekitNode } from './ssekit-node.js';

export function start(): Promise<BenchServer> {
  // Reads a field of each message, as a metric would, so that nothing is optimized away.
  const seen: Record<string, number> = {};
  for (const name of Object.values(SSE_DIAGNOSTICS)) {
    seen[name] = 0;
    diagnostics_channel.subscribe(name, (message) => {
      seen[name]! += (message as { events?: number }).events ?? 1;
    });
  }
  return startSsekitNode();
}
