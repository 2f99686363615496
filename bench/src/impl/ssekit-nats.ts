/**
 * ssekit on node:http with its channel on a NATS JetStream backplane (`@ssekit/nats`): the
 * instances that share `BENCH_BACKPLANE_NAMESPACE` (the stream) share one feed. Scenario H runs
 * two of them.
 */
import http from 'node:http';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createChannel } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { createNatsBackplane } from '@ssekit/nats';
import { listen, notFound, type BenchServer, type Payloads } from './common.js';

export async function start(): Promise<BenchServer> {
  const stream = process.env.BENCH_BACKPLANE_NAMESPACE;
  if (!stream) throw new Error('ssekit-nats: BENCH_BACKPLANE_NAMESPACE is not set');
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
  const backplane = createNatsBackplane({ connection, stream });
  const channel = createChannel<Payloads>({ backplane });
  const server = http.createServer((req, res) => {
    if (req.url === '/events') channel.subscribe(createSseStream(req, res));
    else notFound(res);
  });
  return {
    port: await listen(server),
    streams: () => channel.size,
    publish: (data) => channel.publish({ data }),
    hasSingle: () => false,
    sendSingle: () => {
      throw new Error('ssekit-nats serves no single stream');
    },
    async dispose() {
      await channel.close();
      await backplane.close();
      await (await jetstreamManager(connection)).streams.delete(stream).catch(() => {});
      await connection.close();
    },
  };
}
