/**
 * The runtimes @ssekit/web is tested on, and @ssekit/web as they load it: one ES module,
 * bundled by esbuild for `platform: 'neutral'` from the built packages, with nothing from Node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
// The native binary itself: the package's bin is a Node script that spawns it, and a signal to
// the script would leave the binary running.
import workerd from 'workerd';
import { freePort } from '@ssekit/test-kit';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/**
 * Node through Hono's node server; the real Bun and Deno; and workerd, the runtime of
 * Cloudflare Workers: all four from the npm registry's packages.
 */
export const RUNTIMES = ['node', 'bun', 'deno', 'workerd'] as const;
export type Runtime = (typeof RUNTIMES)[number];

/** The command that runs a script on `runtime`: Bun and Deno fail loudly when not installed. */
function command(runtime: Runtime): { binary: string; args: string[] } {
  if (runtime === 'node') return { binary: process.execPath, args: [] };
  const bin = path.join(ROOT, 'node_modules', '.bin', runtime);
  return { binary: bin, args: runtime === 'deno' ? ['run', '--allow-all', '--quiet'] : [] };
}

let bundled: Promise<{ file: string; text: string }> | undefined;

/**
 * @ssekit/web with core inside, as one ES module for a runtime that has only web globals. Made
 * once per test file, from the built dist (`pnpm test` builds first).
 */
export function bundleWeb(): Promise<{ file: string; text: string }> {
  bundled ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ssekit-web-bundle-'));
    const file = path.join(dir, 'ssekit-web.mjs');
    const result = await build({
      entryPoints: [path.join(ROOT, 'packages', 'web', 'dist', 'index.js')],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      outfile: file,
      write: false,
      logLevel: 'silent',
    });
    const text = result.outputFiles[0]!.text;
    await writeFile(file, text);
    return { file, text };
  })();
  return bundled;
}

/** A fixture server on a runtime, and how to reach and stop it. */
export interface RuntimeServer {
  readonly runtime: Runtime;
  readonly url: string;
  /** What the server recorded: closes and their reasons, errors, sends, live streams and timers. */
  state(): Promise<ServerState>;
  close(): Promise<void>;
}

export interface ServerState {
  runtime: Runtime;
  closes: Array<{ name: string; reason: string }>;
  churn: Record<string, number>;
  errors: string[];
  sends: Array<Record<string, unknown>>;
  groupSize: number;
  channelSize: number;
  liveTimers: number;
}

/**
 * The fixture as a Worker for workerd: test/fixtures/worker.mjs bundled with @ssekit/web into
 * one module, and a config that serves it on `port`.
 */
async function workerConfig(port: number): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ssekit-workerd-'));
  await build({
    entryPoints: [path.join(__dirname, 'fixtures', 'worker.mjs')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    alias: { '@ssekit/web': path.join(ROOT, 'packages', 'web', 'dist', 'index.js') },
    outfile: path.join(dir, 'worker.mjs'),
    logLevel: 'silent',
  });
  const config = path.join(dir, 'config.capnp');
  await writeFile(
    config,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [(name = "worker.mjs", esModule = embed "worker.mjs")],
  compatibilityDate = "2026-11-01",
  compatibilityFlags = ["enable_request_signal"],
);
`,
  );
  return config;
}

/** Starts the fixture on `runtime` (test/fixtures/server.mjs, or the Worker on workerd) and waits for its port. */
export async function startRuntimeServer(runtime: Runtime, env: Record<string, string> = {}): Promise<RuntimeServer> {
  const { file } = await bundleWeb();
  const workerdPort = runtime === 'workerd' ? await freePort() : 0;
  const child: ChildProcess =
    runtime === 'workerd'
      ? spawn(workerd, ['serve', await workerConfig(workerdPort)], {
          cwd: ROOT,
          stdio: ['pipe', 'pipe', 'pipe'],
        })
      : spawn(command(runtime).binary, [...command(runtime).args, path.join(__dirname, 'fixtures', 'server.mjs'), file], {
          cwd: ROOT,
          env: { ...process.env, ...env },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    // workerd prints no port: it listens on the one its config names, once it answers.
    if (runtime === 'workerd') void untilAnswers(`http://127.0.0.1:${workerdPort}/state`, 30_000).then(() => resolve(workerdPort), reject);
    const timer = setTimeout(() => reject(new Error(`${runtime} did not start within 30 s:\n${output}`)), 30_000);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const match = /\{"port":(\d+)\}/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${runtime} could not start (${child.spawnfile}): ${error.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${runtime} exited with ${code} before it listened:\n${output}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    runtime,
    url,
    state: async () => (await (await fetch(`${url}/state`)).json()) as ServerState,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        if (runtime === 'workerd') child.kill('SIGTERM');
        else child.stdin!.end();
      }),
  };
}

/** Resolves once `url` answers at all; rejects after `timeoutMs`. */
async function untilAnswers(url: string, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 100))) {
    try {
      await fetch(url);
      return;
    } catch {
      // Not listening yet.
    }
  }
  throw new Error(`nothing answered at ${url} within ${timeoutMs} ms`);
}
