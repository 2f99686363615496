/**
 * The benchmark suite as a smoke test: `pnpm bench --quick` runs every scenario on raw node:http
 * and ssekit on node:http, Express, Fastify and Koa, with fewer connections but the same events,
 * and the fan-out through Redis and the reconnect storm (they need the Redis at REDIS_URL, as
 * the Redis tests do).
 * It asserts correctness only (every reader got every event, once and in order, and every run
 * passed), never a timing: this machine's speed is not what CI judges.
 *
 * `pnpm test` has built the packages already, so this runs the orchestrator directly.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

const BENCH_DIR = path.resolve(__dirname, '..', 'bench');
const TIMEOUT_MS = 300_000;
/**
 * Each server, and how many runs it has in quick mode: every scenario that applies to it (A, A2,
 * B to F for all of them; G on ssekit only; H on ssekit on node:http, the in-memory baseline;
 * H and J on the Redis backplane; J on its admission variant). Quick mode leaves out I (density:
 * `--quick --scenarios I` runs it) and K (opt-in).
 */
const IMPLEMENTATIONS: Record<string, number> = {
  'raw node:http': 7,
  'ssekit on node:http': 9,
  'ssekit on Express': 8,
  'ssekit on Fastify': 8,
  'ssekit on Koa': 8,
  // Scenario H: two instances sharing a feed through the Redis at REDIS_URL; and J, the storm.
  'ssekit on node:http, Redis backplane': 2,
  // Scenario J only: the storm with admission control on the server's stream group.
  'ssekit on node:http, Redis backplane, with admission': 1,
};

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

function runQuickBench(): Promise<Run> {
  return new Promise((resolve, reject) => {
    // tsx resolves from the bench package, which depends on it; CI is not a TTY anyway.
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/bench.ts', '--quick'], {
      cwd: BENCH_DIR,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: TIMEOUT_MS - 10_000,
      killSignal: 'SIGKILL',
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, output }));
  });
}

test(
  '`pnpm bench --quick` passes: no event lost, duplicated or misordered on any implementation',
  async () => {
    const run = await runQuickBench();
    const tail = run.output.slice(-6000);
    expect({ code: run.code, signal: run.signal, tail }).toEqual({ code: 0, signal: null, tail });
    expect(run.output).toMatch(/^QUICK MODE: /m);
    expect(run.output).not.toMatch(/FAILED/);
    expect(run.output).toMatch(/^RESULT: PASS /m);
    for (const [implementation, expectedRuns] of Object.entries(IMPLEMENTATIONS)) {
      const escaped = implementation.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const line = run.output.match(
        new RegExp(
          `^  ${escaped} +(\\d+) runs, (\\d+) failed; ([\\d,]+) events checked: (\\d+) lost, (\\d+) duplicated, (\\d+) misordered, (\\d+) unexpected$`,
          'm',
        ),
      );
      expect({ implementation, line: line?.[0] }).toEqual({ implementation, line: expect.any(String) });
      const [, runs, failed, events, lost, duplicated, misordered, unexpected] = line!;
      expect({ implementation, failed, lost, duplicated, misordered, unexpected }).toEqual({
        implementation,
        failed: '0',
        lost: '0',
        duplicated: '0',
        misordered: '0',
        unexpected: '0',
      });
      // Every scenario ran, and the checks saw events: a run that checked nothing proves nothing.
      expect({ implementation, runs: Number(runs) }).toEqual({ implementation, runs: expectedRuns });
      expect(Number(events!.replace(/,/g, ''))).toBeGreaterThan(0);
    }
  },
  TIMEOUT_MS,
);
