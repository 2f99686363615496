/** F. Churn: thousands of connect-and-disconnect cycles; nothing may stay behind. */
import { RunFailure } from '../run-failure.js';
import { defineScenario, nodeContestants, type Target } from '../scenario.js';
import type { ServerProcess } from '../server-process.js';
import { LABELS } from '../servers.js';
import { median } from '../stats.js';

const total = (handles: Record<string, number>) => Object.values(handles).reduce((sum, count) => sum + count, 0);

export const churn = defineScenario({
  id: 'F',
  title: 'Churn',
  scale: { full: { churnCycles: 20_000 }, quick: { churnCycles: 2000 } },
  describe: (s) =>
    `${s.churnCycles.toLocaleString('en')} connect-and-disconnect cycles (50 at a time, each on a new TCP connection, disconnecting once the head arrived), after 1,000 cycles to warm up. Heap used after forced GCs, and Node's active handles, before and after.`,
  metrics: [
    { key: 'heapGrowth', label: 'heap growth', unit: 'KB', digits: 0 },
    { key: 'handlesBefore', label: 'handles before', unit: '', digits: 0 },
    { key: 'handlesAfter', label: 'handles after', unit: '', digits: 0 },
    { key: 'streamsAfter', label: 'streams left', unit: '', digits: 0 },
  ],
  applies: nodeContestants,
  run: ({ withServer, clients, scale }) =>
    withServer(async (server) => {
      const cycle = async (cycles: number) => {
        const results = await Promise.all(
          clients
            .split(cycles)
            .map((share, i) =>
              clients.all[i]!.call<{ ok: number; failures: Record<string, number> }>(
                'churn',
                { url: server.url + '/events', cycles: share, concurrency: 25, timeoutMs: 240_000 },
                300_000,
              ),
            ),
        );
        const ok = results.reduce((sum, result) => sum + result.ok, 0);
        if (ok !== cycles)
          throw new RunFailure(
            `churn: ${ok} of ${cycles} cycles got their stream: ${results.map((r) => JSON.stringify(r.failures)).join(' ')}`,
          );
        // The server sees each disconnect a moment after the client made it.
        await server.until('every churned stream to close', (stats) => stats.streams === 0);
      };
      await cycle(1000);
      const before = await server.stats(true);
      await cycle(scale.churnCycles);
      const after = await settledStats(server, total(before.handles));
      if (total(after.handles) !== total(before.handles)) {
        console.log(`    handles before ${JSON.stringify(before.handles)}, after ${JSON.stringify(after.handles)}`);
      }
      return {
        heapGrowth: (after.memory.heapUsed - before.memory.heapUsed) / 1000,
        handlesBefore: total(before.handles),
        handlesAfter: total(after.handles),
        streamsAfter: after.streams,
      };
    }),
  targets: (results) =>
    results.ssekit.flatMap((impl): Target[] => {
      const runs = results.runs(impl);
      if (!runs?.length) return [];
      const growth = median(runs.map((m) => m.heapGrowth!));
      const handlesBack = runs.every((m) => m.handlesAfter === m.handlesBefore && m.streamsAfter === 0);
      return [
        {
          what: `F: ${LABELS[impl]} no heap growth beyond noise (≤ 1 MB), handles back to baseline`,
          measured: `${growth.toFixed(0)} KB; handles ${runs.map((m) => `${m.handlesBefore}→${m.handlesAfter}`).join(', ')}`,
          met: growth <= 1000 && handlesBack,
        },
      ];
    }),
});

/** Stats after forced GCs, once the handles are back to `handles` or 5 s have passed. */
async function settledStats(server: ServerProcess, handles: number) {
  // Closed sockets release their handles over the next turns of the event loop.
  let stats = await server.stats(true);
  const deadline = Date.now() + 5_000;
  while (total(stats.handles) > handles && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    stats = await server.stats(true);
  }
  return stats;
}
