/** C. Idle memory: what each idle connection on the broadcast costs the server. */
import { defineScenario, everyServer, multiple, target, type Target } from '../scenario.js';
import { LABELS } from '../servers.js';

export const idleMemory = defineScenario({
  id: 'C',
  title: 'Idle memory',
  scale: { full: { idleConnections: 5000 }, quick: { idleConnections: 1000 } },
  describe: (s) =>
    `${s.idleConnections} idle connections on the broadcast, after 100 connections opened and closed to warm up. Heap used and RSS after forced full GCs, before and after, divided by the connections.`,
  metrics: [
    {
      key: 'heapPerConnection',
      label: 'heap per idle connection',
      unit: 'KB',
      digits: 2,
      ratio: true,
      headline: 'heap per idle connection',
    },
    { key: 'rssPerConnection', label: 'RSS per idle connection', unit: 'KB', digits: 2, ratio: true },
  ],
  applies: everyServer,
  run: ({ withServer, clients, scale }) =>
    withServer(async (server) => {
      await clients.open(server, '/events', 100);
      await clients.closeStreams();
      await server.until('the warm-up streams to close', (stats) => stats.streams === 0);
      const before = await server.stats(true);
      await clients.open(server, '/events', scale.idleConnections);
      const after = await server.stats(true);
      const n = scale.idleConnections;
      return {
        heapPerConnection: (after.memory.heapUsed - before.memory.heapUsed) / n / 1000,
        rssPerConnection: (after.memory.rss - before.memory.rss) / n / 1000,
      };
    }),
  targets(results) {
    // Issue 16's bounds: below raw node:http on node:http itself (raw has no heartbeat; ssekit
    // has one, and must still cost less), within 10% of raw on Fastify.
    const targets: Target[] = (
      [
        ['ssekit-node', 1.0],
        ['ssekit-fastify', 1.1],
      ] as const
    )
      .filter(([impl]) => results.ssekit.includes(impl))
      .map(([impl, bound]) =>
        target(
          `C: ${LABELS[impl]} heap per idle connection ≤ ${bound.toFixed(1)}× raw`,
          results.ratio(impl, 'heapPerConnection'),
          multiple,
          (ratio) => ratio <= bound,
        ),
      );
    // Express and Koa cost memory of their own per request: measured against the same code by
    // hand in each framework (their floor), what ssekit adds must stay within 10%.
    for (const [impl, reference] of [
      ['ssekit-express', 'express-bare'],
      ['ssekit-koa', 'koa-bare'],
    ] as const) {
      const ours = results.median(impl, 'heapPerConnection');
      const theirs = results.median(reference, 'heapPerConnection');
      if (ours === undefined || theirs === undefined) continue;
      targets.push(
        target(
          `C: ${LABELS[impl]} heap per idle connection ≤ 1.1× ${LABELS[reference]}`,
          ours / theirs,
          (ratio) => `${multiple(ratio)} (${ours.toFixed(2)} KB vs ${theirs.toFixed(2)} KB)`,
          (ratio) => ratio <= 1.1,
        ),
      );
    }
    return targets;
  },
});
