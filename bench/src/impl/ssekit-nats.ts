/**
 * ssekit on node:http with its channel on a NATS JetStream backplane (`@ssekit/nats`): the
 * instances that share `BENCH_BACKPLANE_NAMESPACE` (the stream) share one feed. Scenario H runs
 * two of them.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createNatsBackplane } from '@ssekit/nats';
import { backplaneNamespace, serveBackplaneChannel } from './backplane-server.js';
import type { BenchServer } from './common.js';

export async function start(): Promise<BenchServer> {
  const stream = backplaneNamespace('ssekit-nats');
  // The settings @ssekit/nats's README asks for.
  const connection = await connect({
    servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 10_000,
    maxPingOut: 2,
    // Its README's advice for publishers: no stack trace captured per request.
    noAsyncTraces: true,
  });
  return serveBackplaneChannel('ssekit-nats', createNatsBackplane({ connection, stream }), async () => {
    await (await jetstreamManager(connection)).streams.delete(stream).catch(() => {});
    await connection.close();
  });
}
