/**
 * A. Fan-out, burst: 500 events published back to back, each as soon as the previous publish
 * resolved. For an in-memory channel that is a microtask, so all 500 land in one turn of the
 * event loop: the best case for a server that merges a turn's writes to a socket.
 */
import { createFanOutScenario, FANOUT_EVENTS } from './fan-out.js';

export const fanOutBurst = createFanOutScenario({
  id: 'A',
  title: 'Fan-out, burst',
  pace: 'burst',
  published:
    'published in a burst: each as soon as the previous publish resolved (the same loop for every server), which is a microtask when the publish is in memory, so every event lands in one turn of the event loop',
  headline: `fan-out server CPU per delivered event, published in a burst (${FANOUT_EVENTS} in one event-loop turn)`,
});
