/**
 * Runs the TypeScript compiler over the whole project, so the type tests in test/types (which
 * are never executed) gate the suite like any other test; and over test/types/legacy, the
 * adapters under Express 4's and Koa 2's types. The other tests prove the gate can
 * close: a wrong payload and a stale `@ts-expect-error` both fail tsc, and an adapter's type
 * augmentation arrives with its import.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..');
const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc');
const TIMEOUT_MS = 60_000;

interface TscResult {
  code: number | null;
  output: string;
}

function runTsc(project: string): Promise<TscResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSC, ['-p', project, '--noEmit', '--pretty', 'false'], { cwd: ROOT, timeout: TIMEOUT_MS });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, output: signal ? `${output}\n(tsc killed by ${signal})` : output }));
  });
}

/** `file.ts:line TSxxxx` for every error tsc reported. */
function errorsOf(output: string): string[] {
  return [...output.matchAll(/([\w-]+\.ts)\((\d+),\d+\): error (TS\d+)/g)].map(([, file, line, code]) => `${file}:${line} ${code}`);
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A throwaway project in the OS temp folder that extends the root tsconfig. */
function tempProject(files: Record<string, string>, compilerOptions: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ssekit-typecheck-'));
  tempDirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const tsconfig = {
    extends: path.join(ROOT, 'tsconfig.json'),
    // Type packages are looked up next to the config, which here is outside the repository.
    compilerOptions: { typeRoots: [path.join(ROOT, 'node_modules', '@types')], ...compilerOptions },
    include: Object.keys(files),
  };
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  return path.join(dir, 'tsconfig.json');
}

const lines = (...source: string[]) => source.join('\n') + '\n';

test(
  'the whole project type-checks, type tests included',
  async () => {
    const result = await runTsc(path.join(ROOT, 'tsconfig.json'));
    expect(result).toEqual({ code: 0, output: '' });
  },
  TIMEOUT_MS + 5_000,
);

test(
  'the Express and Koa adapters type-check under @types/express@4 and @types/koa@2, the older majors of their peer ranges',
  async () => {
    const result = await runTsc(path.join(ROOT, 'test', 'types', 'legacy', 'tsconfig.json'));
    expect(result).toEqual({ code: 0, output: '' });
  },
  TIMEOUT_MS + 5_000,
);

test(
  "@ssekit/web and core's main entry type-check with a Fetch runtime's types and none of Node's",
  async () => {
    const result = await runTsc(path.join(ROOT, 'test', 'types', 'neutral', 'tsconfig.json'));
    expect(result).toEqual({ code: 0, output: '' });
  },
  TIMEOUT_MS + 5_000,
);

test(
  'the benchmark suite type-checks against the built packages, as an app would',
  async () => {
    const result = await runTsc(path.join(ROOT, 'bench', 'tsconfig.json'));
    expect(result).toEqual({ code: 0, output: '' });
  },
  TIMEOUT_MS + 5_000,
);

test(
  'a wrong payload and a stale @ts-expect-error both fail tsc',
  async () => {
    const header = lines("import type { SseStream } from '@ssekit/core';", 'declare const stream: SseStream<{ tick: { n: number } }>;');
    const project = tempProject({
      'right.ts': header + lines("void stream.send({ event: 'tick', data: { n: 1 } });"),
      'wrong.ts': header + lines("void stream.send({ event: 'tick', data: 'not a tick' });"),
      'stale.ts': header + lines('// @ts-expect-error', "void stream.send({ event: 'tick', data: { n: 1 } });"),
    });
    const { code, output } = await runTsc(project);
    expect(code).not.toBe(0);
    // Only the two planted errors: the setup itself (paths, types) compiles.
    expect(errorsOf(output).sort()).toEqual(['stale.ts:3 TS2578', 'wrong.ts:3 TS2322']);
  },
  TIMEOUT_MS + 5_000,
);

test(
  "res.sse comes from importing @ssekit/express, not from the project's file list",
  async () => {
    // Express ships no types of its own: point the temporary project at @types/express.
    const root = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile);
    const paths = { ...root.config.compilerOptions.paths, express: ['node_modules/@types/express'] };
    const handler = lines(
      "import type { Request, Response } from 'express';",
      'export function handler(req: Request, res: Response): void {',
      "  void res.sse.send({ event: 'hello', data: { at: Date.now() } });",
      '}',
    );
    const [withImport, withoutImport] = await Promise.all([
      runTsc(tempProject({ 'handler.ts': "import '@ssekit/express';\n" + handler }, { paths })),
      runTsc(tempProject({ 'handler.ts': handler }, { paths })),
    ]);
    expect(withImport).toEqual({ code: 0, output: '' });
    expect(withoutImport.code).not.toBe(0);
    expect(errorsOf(withoutImport.output)).toEqual(['handler.ts:3 TS2339']);
  },
  TIMEOUT_MS + 5_000,
);
