/**
 * The README's Next.js App Router recipe in a real Next.js app: `next build`, then `next start`
 * on a free port, with the route handler in test/fixtures/next-app/app/events/route.js. Next
 * must neither buffer nor cache the stream, and the stream must keep its headers, its resume
 * and its cleanup there.
 * `pnpm test` builds first; run `pnpm build` yourself before running this file alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { EventSource } from 'eventsource';
import { freePort, readSse, untilDone } from '@ssekit/test-kit';

const APP = path.join(__dirname, 'fixtures', 'next-app');
const NEXT = path.join(__dirname, '..', '..', '..', 'node_modules', 'next', 'dist', 'bin', 'next');
// No telemetry: the only network here is the registry, and tests stay on 127.0.0.1.
const ENV = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };

jest.setTimeout(60_000);

let server: ChildProcess | undefined;
let url = '';

/** Runs `next <args>` in the app and resolves with its output once it exits with 0. */
function next(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [NEXT, ...args], { cwd: APP, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`next ${args.join(' ')} exited with ${code}:\n${output}`)),
    );
  });
}

const removeBuild = () => {
  for (const dir of ['.next', 'cache']) rmSync(path.join(APP, dir), { recursive: true, force: true });
};

beforeAll(async () => {
  removeBuild();
  await next(['build']);
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const child = (server = spawn(process.execPath, [NEXT, 'start', '--port', String(port), '--hostname', '127.0.0.1'], {
    cwd: APP,
    env: ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await untilDone(
    async () => (await fetch(`${url}/events`, { method: 'POST', body: '{}' }).catch(() => undefined))?.ok === true,
    () => output.length,
    { stallMs: 30_000, what: 'answer from next start' },
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${output}`);
  });
}, 180_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  removeBuild();
});

const command = async (body: object) =>
  (await (await fetch(`${url}/events`, { method: 'POST', body: JSON.stringify(body) })).json()) as {
    ids?: string[];
    closes?: string[];
    subscribers?: number;
  };

test('the route answers 200 with the SSE headers, and each event arrives as it is published', async () => {
  const reader = await readSse(`${url}/events`);
  expect(reader.status).toBe(200);
  expect(reader.headers['content-type']).toBe('text/event-stream; charset=utf-8');
  expect(reader.headers['cache-control']).toBe('no-cache, no-transform');
  expect(reader.headers['x-accel-buffering']).toBe('no');
  // One at a time: an event that waited for the next one, or for the end, was buffered.
  for (const n of [1, 2, 3]) {
    const { ids } = await command({ publish: [{ n }] });
    const events = await reader.waitForEvents(n);
    expect(events[n - 1]).toMatchObject({ event: 'n', id: ids![0], data: JSON.stringify({ n }) });
  }
  reader.close();
});

test('the eventsource package resumes with Last-Event-ID and misses nothing', async () => {
  const first = await readSse(`${url}/events`);
  const { ids } = await command({ publish: [{ n: 10 }, { n: 11 }] });
  await first.waitForEvents(2);
  first.close();
  // Published while no one listens: the channel's history replays them after the last id.
  await command({ publish: [{ n: 12 }, { n: 13 }] });
  const source = new EventSource(`${url}/events`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, 'last-event-id': ids![1]! } }),
  });
  const received: number[] = [];
  await new Promise<void>((resolve, reject) => {
    source.addEventListener('n', (event) => {
      received.push((JSON.parse(event.data) as { n: number }).n);
      if (received.length === 2) resolve();
    });
    source.onerror = () => source.readyState === EventSource.CLOSED && reject(new Error('EventSource failed'));
  });
  source.close();
  expect(received).toEqual([12, 13]);
});

test('a client that leaves closes its stream with reason client, and the channel forgets it', async () => {
  const state = () => command({});
  // The readers of the tests before are gone first, so that only this one's close is counted.
  await untilDone(async () => (await state()).subscribers === 0, state, { what: 'change in the subscribers' });
  const before = await state();
  const reader = await readSse(`${url}/events`);
  await untilDone(async () => (await state()).subscribers === 1, state, { what: 'subscriber' });
  reader.close();
  await untilDone(async () => (await state()).subscribers === 0, state, { stallMs: 10_000, what: 'close' });
  const after = await state();
  expect(after.closes!.slice(before.closes!.length)).toEqual(['client']);
});
