/**
 * A2. Fan-out, paced: the same as A, with one publish per macrotask (`await setImmediate()`
 * between publishes), as events usually arrive in an app: each event has a turn of the event
 * loop to itself, so no server can merge one event's writes with the next's.
 */
import { createFanOutScenario } from './fan-out.js';

export const fanOutPaced = createFanOutScenario({
  id: 'A2',
  title: 'Fan-out, paced',
  pace: 'macrotask',
  published:
    'published one per macrotask: `await setImmediate()` between publishes (the same loop for every server), so each event has a turn of the event loop to itself, as events usually arrive in an app',
  headline: 'fan-out server CPU per delivered event, published one per event-loop turn (setImmediate)',
});
