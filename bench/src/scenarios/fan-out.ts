/**
 * The fan-out, which scenarios A and A2 share: the same clients and events, published at two
 * paces. How events follow one another matters as much as how many there are: a server that
 * merges the writes of one turn of the event loop to a socket (ssekit does) merges a whole
 * burst, and nothing when each event has a turn to itself.
 */
import { EVENT_BYTES } from '../payload.js';
import { defineScenario, everyServer, multiple, target, type Scenario } from '../scenario.js';
import type { PublishArgs } from '../server.js';
import { LABELS } from '../servers.js';

/** Events per fan-out; the issue fixes them, and their size. */
export const FANOUT_EVENTS = 500;

export interface FanOutOptions {
  readonly id: string;
  readonly title: string;
  readonly pace: Extract<PublishArgs['pace'], string>;
  /** How the events were published, for the description. */
  readonly published: string;
  /** Its column heading in the headline table, which says how the events were published. */
  readonly headline: string;
}

/** A fan-out scenario: every server on its own, 1000 clients, 500 events at `pace`. */
export function createFanOutScenario(options: FanOutOptions): Scenario {
  const { id, pace } = options;
  return defineScenario({
    id,
    title: options.title,
    scale: { full: { fanoutClients: 1000 }, quick: { fanoutClients: 200 } },
    describe: (s) =>
      `${s.fanoutClients} clients; ${FANOUT_EVENTS} events of ${EVENT_BYTES} bytes of data, ${options.published}. Server CPU (user + sys, from the server process) from the first publish until every client had every event.`,
    metrics: [
      { key: 'cpuPerEvent', label: 'server CPU per delivered event', unit: 'µs', digits: 2, ratio: true, headline: options.headline },
      { key: 'wallMs', label: 'wall time until every client had every event', unit: 'ms', digits: 0, ratio: true },
      { key: 'lost', label: 'lost events', unit: '', digits: 0 },
    ],
    applies: everyServer,
    run: ({ withServer, clients, measured, check, scale }) =>
      withServer(async (server) => {
        await clients.open(server, '/events', scale.fanoutClients, { expect: FANOUT_EVENTS });
        await server.stats(true);
        const { published, totals, stats } = await measured(server, async () => {
          const readers = clients.awaitReaders('await', 120_000);
          const published = await server.publish({ count: FANOUT_EVENTS, bytes: EVENT_BYTES, pace }, 120_000);
          const totals = await readers;
          return { published, totals, stats: await server.stats() };
        });
        check(totals);
        return {
          cpuPerEvent: stats.cpuMicros / totals.events,
          wallMs: (totals.lastCompleteAt - published.t0) / 1000,
          lost: totals.lost,
        };
      }),
    targets: (results) =>
      results.ssekit.map((impl) => {
        const bound = impl === 'ssekit-node' ? 1.0 : 1.1;
        const what = `${id}: ${LABELS[impl]} CPU per delivered event ≤ ${bound.toFixed(1)}× raw`;
        return target(what, results.ratio(impl, 'cpuPerEvent'), multiple, (ratio) => ratio <= bound);
      }),
  });
}
