/** G. Shutdown: ssekit's call that ends every open stream, and how long until the server closed. */
import { RunFailure } from '../run-failure.js';
import { contestants, defineScenario } from '../scenario.js';
import { SHUTDOWN_CAPABLE } from '../servers.js';

export const shutdown = defineScenario({
  id: 'G',
  title: 'Shutdown',
  scale: { full: { shutdownStreams: 1000 }, quick: { shutdownStreams: 200 } },
  describe: (s) =>
    `${s.shutdownStreams} open streams; the shutdown call (node:http: the stream group's \`shutdown()\`; Express and Koa: the middleware's \`.sseStreams.shutdown()\`; Fastify: \`app.close()\` with the plugin's \`shutdown\` option), with a final \`bye\` event, retryMs 1000 and jitterMs 1000, then the HTTP server's \`close()\`. Time from the call until \`close()\` completed; every client must see its stream end cleanly with the final event and a retry from 1000 to 2000 ms. Peers have no such call: not run.`,
  metrics: [{ key: 'shutdownMs', label: 'shutdown until server closed', unit: 'ms', digits: 1 }],
  applies: (impl) => SHUTDOWN_CAPABLE.includes(impl),
  // Its table lists the peers too, to say why they have no figure.
  notRun: { listed: contestants, reason: 'not run: no shutdown API' },
  run: ({ withServer, clients, scale }) =>
    withServer(async (server) => {
      await clients.open(server, '/events', scale.shutdownStreams);
      const ends = clients.awaitReaders('await-end', 60_000);
      const { ms } = await server.peer.call<{ ms: number }>('shutdown', {}, 60_000);
      const totals = await ends;
      const n = scale.shutdownStreams;
      const problems: string[] = [];
      if (totals.ended !== n) problems.push(`${n - totals.ended} streams did not end cleanly`);
      if (totals.farewells !== n) problems.push(`${n - totals.farewells} clients missed the final event`);
      if (totals.retries !== n || totals.retryMin < 1000 || totals.retryMax > 2000) {
        problems.push(`retry: ${totals.retries} of ${n} clients got one, from ${totals.retryMin} to ${totals.retryMax} ms`);
      }
      if (totals.timedOut) problems.push('timed out');
      if (problems.length) throw new RunFailure(problems.join(', '));
      return { shutdownMs: ms };
    }),
});
