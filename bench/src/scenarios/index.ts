/**
 * Every scenario, in the order the bench runs them and RESULTS.md shows them. Adding one means
 * a module of its own here and one entry in this list.
 */
import type { Scenario } from '../scenario.js';
import { fanOutBurst } from './a-fan-out-burst.js';
import { fanOutPaced } from './a2-fan-out-paced.js';
import { singleStream } from './b-single-stream.js';
import { idleMemory } from './c-idle-memory.js';
import { latency } from './d-latency.js';
import { slowClients } from './e-slow-clients.js';
import { churn } from './f-churn.js';
import { shutdown } from './g-shutdown.js';
import { backplaneFanOut } from './h-backplane-fan-out.js';
import { density } from './i-density.js';
import { reconnectStorm } from './j-reconnect-storm.js';
import { manyProcesses } from './k-many-processes.js';

export const SCENARIOS: readonly Scenario[] = [
  fanOutBurst,
  fanOutPaced,
  singleStream,
  idleMemory,
  latency,
  slowClients,
  churn,
  shutdown,
  backplaneFanOut,
  density,
  reconnectStorm,
  manyProcesses,
];
