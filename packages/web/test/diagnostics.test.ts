/**
 * Core's diagnostics on every runtime @ssekit/web runs on: the neutral bundle finds
 * `node:diagnostics_channel` through `process.getBuiltinModule` on Node, Bun, Deno and workerd
 * (whose `nodejs_compat` is on by default since 2026-08-04), and publishes the same messages on
 * each. test/fixtures/diagnostics.mjs runs the same stream, replay and reset everywhere.
 * `pnpm test` builds first; run `pnpm build` yourself before running this file alone.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import workerd from 'workerd';
import { freePort, untilDone } from '@ssekit/test-kit';
import { bundleWeb, RUNTIMES, type Runtime } from './runtimes.js';

jest.setTimeout(60_000);

const ROOT = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = path.join(__dirname, 'fixtures');

interface Probe {
  texts: string[];
  seen: Array<Record<string, unknown>>;
}

/** Runs the probe script on Node, Bun or Deno, with the bundle. */
async function probeScript(runtime: Exclude<Runtime, 'workerd'>): Promise<Probe> {
  const { file } = await bundleWeb();
  const [binary, args] =
    runtime === 'node'
      ? [process.execPath, []]
      : [path.join(ROOT, 'node_modules', '.bin', runtime), runtime === 'deno' ? ['run', '--allow-all', '--quiet'] : []];
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      [...args, path.join(FIXTURES, 'diagnostics-script.mjs'), file],
      { cwd: ROOT, timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`${runtime} failed: ${error.message}\n${stderr}`));
        resolve(JSON.parse(stdout) as Probe);
      },
    );
  });
}

/** Serves the probe as a Worker on workerd and asks it once. */
async function probeWorker(): Promise<Probe> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ssekit-workerd-diagnostics-'));
  await build({
    entryPoints: [path.join(FIXTURES, 'diagnostics-worker.mjs')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    alias: { '@ssekit/web': path.join(ROOT, 'packages', 'web', 'dist', 'index.js') },
    external: ['node:*'],
    outfile: path.join(dir, 'worker.mjs'),
    logLevel: 'silent',
  });
  const port = await freePort();
  await writeFile(
    path.join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [(name = "worker.mjs", esModule = embed "worker.mjs")],
  compatibilityDate = "2026-11-01",
);
`,
  );
  const child = spawn(workerd, ['serve', path.join(dir, 'config.capnp')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  try {
    let answer: Probe | undefined;
    await untilDone(
      async () => {
        try {
          answer = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as Probe;
          return true;
        } catch {
          if (child.exitCode !== null) throw new Error(`workerd exited with ${child.exitCode}:\n${output}`);
          return false;
        }
      },
      () => output,
      { stallMs: 30_000, what: 'workerd to answer' },
    );
    return answer!;
  } finally {
    child.kill('SIGTERM');
  }
}

const closeOf = (events: number, bytes: number) => ({
  name: 'ssekit:stream:close',
  stream: 'object',
  reason: 'server',
  events,
  bytes,
  lifetimeMs: true,
});
const openOf = (path: string) => ({ name: 'ssekit:stream:open', stream: 'object', request: true, path });

test.each(RUNTIMES)('on %s, diagnostics_channel hears every ssekit:* message', async (runtime) => {
  const { texts, seen } = runtime === 'workerd' ? await probeWorker() : await probeScript(runtime);
  expect(texts).toEqual(['id: 1\ndata: hi\n\n: c\n', 'id: 4\ndata: 4\n\n', 'event: reset\nid: 4\ndata: {"lastEventId":"1"}\n\n']);
  const [first, ...rest] = seen;
  expect(first).toEqual(openOf('/events'));
  // The two channel streams run side by side: their messages interleave in no set order.
  expect(rest).toHaveLength(7);
  expect(rest).toEqual(
    expect.arrayContaining([
      closeOf(1, Buffer.byteLength(texts[0]!)),
      openOf('/feed'),
      openOf('/feed'),
      { name: 'ssekit:channel:replay', stream: 'object', channel: 'feed', lastEventId: '3', events: 1, durationMs: true, cause: 'resume' },
      { name: 'ssekit:channel:reset', stream: 'object', channel: 'feed', lastEventId: '1', id: '4' },
      closeOf(1, Buffer.byteLength(texts[1]!)),
      closeOf(1, Buffer.byteLength(texts[2]!)),
    ]),
  );
});
