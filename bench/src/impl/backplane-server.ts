/**
 * What the backplane servers of scenarios H and J share: ssekit on node:http, streams in a
 * stream group as on ssekit-node, one channel on the backplane, and the namespace (key prefix,
 * table, stream) that a run's instances share. A module of its own, so that only those servers
 * load it.
 */
import http from 'node:http';
import { createChannel, createStreamGroup, type Backplane, type SseStreamGroup } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { keepAliveOption, listen, notFound, type BenchServer, type Payloads } from './common.js';

/** `BENCH_BACKPLANE_NAMESPACE`, which scenario H sets for both instances of a run. */
export function backplaneNamespace(impl: string): string {
  const namespace = process.env.BENCH_BACKPLANE_NAMESPACE;
  if (!namespace) throw new Error(`${impl}: BENCH_BACKPLANE_NAMESPACE is not set`);
  return namespace;
}

/**
 * Serves `/events` from a channel on `backplane`, each stream in `group`; `release` runs after
 * the channel and the backplane are closed, to drop what the run left in the engine and end the
 * client.
 */
export async function serveBackplaneChannel(
  impl: string,
  backplane: Backplane,
  release: () => Promise<void>,
  group: SseStreamGroup = createStreamGroup(),
): Promise<BenchServer> {
  const channel = createChannel<Payloads>({ backplane });
  const options = { group, ...keepAliveOption() };
  const server = http.createServer((req, res) => {
    if (req.url === '/events') channel.subscribe(createSseStream(req, res, options));
    else notFound(res);
  });
  return {
    port: await listen(server),
    streams: () => channel.size,
    publish: (data) => channel.publish({ data }),
    hasSingle: () => false,
    sendSingle: () => {
      throw new Error(`${impl} serves no single stream`);
    },
    async dispose() {
      await channel.close();
      await backplane.close();
      await release();
    },
  };
}
