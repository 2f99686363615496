/**
 * Where a server's heap goes per idle stream, object by object: each implementation's server
 * alone in a process, a heap snapshot before and after its connections, and the difference per
 * connection by kind of object (constructor, closure, array, code), beside raw node:http's.
 * Clients run in a process of their own, so that the snapshots hold the server's objects only.
 *
 *   pnpm exec tsx src/heap-census.ts [--connections 5000] [--impls raw,ssekit-node]
 *
 * This is how issue 16 found the bytes; scenario C is what measures them.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import { parseArgs } from 'node:util';
import { forkChild, tailOf } from './processes.js';

const SELF = 'heap-census.ts';
/** Rows below this many bytes per connection are left out of the table (their sum is not). */
const SHOWN_BYTES = 4;
const REQUEST = 'GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

type Census = Map<string, { count: number; bytes: number }>;
/** What a server's process reports: heap used, and each kind of object, per connection. */
interface CensusResult {
  heapUsed: number;
  perConnection: Record<string, { count: number; bytes: number }>;
}

/** Objects in a snapshot by kind: type, and the constructor or function name where it has one. */
function census(file: string): Census {
  const snapshot = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const {
    node_fields: fields,
    node_types: [types],
  } = snapshot.snapshot.meta;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field)) as [number, number, number];
  const kinds: Census = new Map();
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const type = types[snapshot.nodes[i + typeAt]!]!;
    // A string's or a number's name is its value: all of them are one kind.
    const named = type === 'object' || type === 'closure' || type === 'hidden' || type === 'native' || type === 'array';
    const kind = named ? `${type}: ${snapshot.strings[snapshot.nodes[i + nameAt]!]!.slice(0, 48) || '(anonymous)'}` : type;
    const entry = kinds.get(kind) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snapshot.nodes[i + sizeAt]!;
    kinds.set(kind, entry);
  }
  return kinds;
}

/** A process of `connections` idle clients of `port`, held until it is killed. */
function startClients(port: number, connections: number) {
  const clients = forkChild(SELF, ['--client', String(port), String(connections)]);
  tailOf(clients, '[clients] ', true);
  return clients;
}

async function child(impl: string, connections: number): Promise<void> {
  const { start } = (await import(`./impl/${impl}.js`)) as { start(): Promise<{ port: number; streams(): number }> };
  const server = await start();
  const gc = (globalThis as { gc?: () => void }).gc!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heap-census-'));
  const settle = async (streams: number) => {
    for (let waited = 0; server.streams() !== streams; waited += 10) {
      if (waited > 60_000) throw new Error(`${impl}: ${server.streams()} streams, not ${streams}`);
      await sleep(10);
    }
    gc();
    gc();
  };
  // A first round, closed again, so that what is made once (code, pools) is in both snapshots.
  const warmUp = startClients(server.port, 100);
  await settle(100);
  warmUp.kill();
  await settle(0);
  // Heap used is read before each snapshot, which makes garbage of its own.
  const heapBefore = process.memoryUsage().heapUsed;
  const before = census(v8.writeHeapSnapshot(path.join(dir, 'before.heapsnapshot')));
  const clients = startClients(server.port, connections);
  await settle(connections);
  const heapUsed = (process.memoryUsage().heapUsed - heapBefore) / connections;
  const after = census(v8.writeHeapSnapshot(path.join(dir, 'after.heapsnapshot')));
  clients.kill();
  fs.rmSync(dir, { recursive: true });
  const perConnection: Record<string, { count: number; bytes: number }> = {};
  for (const kind of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(kind) ?? { count: 0, bytes: 0 };
    const b = after.get(kind) ?? { count: 0, bytes: 0 };
    perConnection[kind] = { count: (b.count - a.count) / connections, bytes: (b.bytes - a.bytes) / connections };
  }
  process.send!({ heapUsed, perConnection } satisfies CensusResult, () => process.exit(0));
}

// The sockets stay open, and this process alive, until the census kills it: its IPC channel
// holds the event loop.
async function clients(port: number, connections: number): Promise<void> {
  for (let i = 0; i < connections; i++) {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(REQUEST));
    socket.on('data', noop);
    socket.on('error', noop);
    if (i % 250 === 249) await sleep(20);
  }
}

function noop(): void {}

async function run(impl: string, connections: number): Promise<CensusResult> {
  const server = forkChild(SELF, ['--child', impl, String(connections)]);
  const tail = tailOf(server, `[${impl}] `, true);
  const exited = once(server, 'exit');
  const reported = once(server, 'message') as Promise<[CensusResult]>;
  const outcome = await Promise.race([reported, exited.then(([code]: unknown[]) => new Error(`${impl}: exit ${String(code)}\n${tail()}`))]);
  if (outcome instanceof Error) throw outcome;
  await exited;
  return outcome[0];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { connections: { type: 'string', default: '5000' }, impls: { type: 'string', default: 'raw,ssekit-node' } },
  });
  const connections = Number(values.connections);
  const impls = values.impls.split(',');
  const results: CensusResult[] = [];
  for (const impl of impls) results.push(await run(impl, connections));
  const kinds = [...new Set(results.flatMap((result) => Object.keys(result.perConnection)))]
    .filter((kind) => results.some((result) => Math.abs(result.perConnection[kind]?.bytes ?? 0) >= SHOWN_BYTES))
    .sort((a, b) => (results.at(-1)!.perConnection[b]?.bytes ?? 0) - (results.at(-1)!.perConnection[a]?.bytes ?? 0));
  const cell = (result: CensusResult, kind: string) => {
    const entry = result.perConnection[kind] ?? { count: 0, bytes: 0 };
    return `${entry.bytes.toFixed(0)} B (${entry.count.toFixed(2)})`;
  };
  console.log(`Heap per idle connection, ${connections} connections: bytes (objects) per connection.\n`);
  console.log(`| kind | ${impls.join(' | ')} |`);
  console.log(`| --- |${impls.map(() => ' ---: |').join('')}`);
  for (const kind of kinds) console.log(`| ${kind} | ${results.map((result) => cell(result, kind)).join(' | ')} |`);
  const total = (result: CensusResult) => Object.values(result.perConnection).reduce((sum, entry) => sum + entry.bytes, 0);
  console.log(`| all of the snapshot | ${results.map((result) => `${total(result).toFixed(0)} B`).join(' | ')} |`);
  console.log(`| heap used | ${results.map((result) => `${result.heapUsed.toFixed(0)} B`).join(' | ')} |`);
}

const [mode, a, b] = process.argv.slice(2);
if (mode === '--child') await child(a!, Number(b));
else if (mode === '--client') await clients(Number(a), Number(b));
else await main();
