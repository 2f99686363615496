/**
 * Summarizes a V8 CPU profile (`.cpuprofile`, as `pnpm bench --cpu-prof` writes them into
 * bench/profiles/): self time per function, and total time per package, highest first.
 *
 *   pnpm --filter @ssekit/bench exec tsx src/profile-summary.ts profiles/A-ssekit-node-rep1.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const file = args.find((arg) => !arg.startsWith('--'));
if (!file) {
  console.error('usage: profile-summary.ts FILE.cpuprofile [--top N]');
  process.exit(2);
}
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;

const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
// Time per sample: each sample lasts until the next one.
const selfMicros = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const delta = profile.timeDeltas[i + 1] ?? 0;
  selfMicros.set(profile.samples[i]!, (selfMicros.get(profile.samples[i]!) ?? 0) + delta);
}
const total = [...selfMicros.values()].reduce((sum, value) => sum + value, 0);

function where(url: string): string {
  if (!url) return '';
  const clean = url.replace(/^file:\/\//, '');
  const pnpm = clean.match(/node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/);
  if (pnpm) return `${pnpm[1]}/${pnpm[2]}`;
  const packages = clean.match(/packages\/([^/]+)\/(.*)$/);
  if (packages) return `@ssekit/${packages[1]}/${packages[2]}`;
  if (clean.startsWith('node:')) return clean;
  return path.basename(clean);
}

function area(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const at = where(url);
  if (at.startsWith('node:')) return 'node core';
  return at
    .split('/')
    .slice(0, at.startsWith('@') ? 2 : 1)
    .join('/');
}

const functions = new Map<string, number>();
const areas = new Map<string, number>();
for (const [id, micros] of selfMicros) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const key = `${functionName || '(anonymous)'}  ${where(url)}${url ? `:${lineNumber + 1}` : ''}`;
  functions.set(key, (functions.get(key) ?? 0) + micros);
  const group = area(url, functionName);
  areas.set(group, (areas.get(group) ?? 0) + micros);
}

const percent = (micros: number) => `${((micros / total) * 100).toFixed(1).padStart(5)}%`;
console.log(`${path.basename(file)}: ${(total / 1000).toFixed(0)} ms sampled`);
console.log('\nSelf time by function:');
for (const [key, micros] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${percent(micros)}  ${(micros / 1000).toFixed(1).padStart(8)} ms  ${key}`);
}
console.log('\nSelf time by area:');
for (const [key, micros] of [...areas].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
  console.log(`  ${percent(micros)}  ${(micros / 1000).toFixed(1).padStart(8)} ms  ${key}`);
}
