/**
 * The test of a backplane package's build, as users load it: a plain `node` from the repository
 * root resolves the package through node_modules and its `exports` into dist, in ESM and in
 * CommonJS. `pnpm test` builds first; run `pnpm build` yourself before running it alone.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export interface BuiltBackplane {
  /** The package's directory, packages/<name>. */
  directory: string;
  /** The name users import it by. */
  name: string;
  /** Its factory, which must throw core's own SseError when handed `misuse`. */
  factory: string;
  /** Options the factory must refuse, as JavaScript source: `{ client: {} }`. */
  misuse: string;
  /** Its error class, which must extend core's own SseError; the test makes one with `('x', { sent: false })`. */
  error: string;
}

/** Defines the tests `the built package loads as ESM` and `… as CommonJS`. */
export function testBuiltBackplane({ directory, name, factory, misuse, error }: BuiltBackplane): void {
  const root = path.resolve(directory, '..', '..');
  const dist = path.join(directory, 'dist');

  // Misuse throws core's own SseError, whichever way both packages were loaded.
  const probe = (load: (id: string) => string) => `
const m = ${load(name)};
const core = ${load('@ssekit/core')};
let thrown;
try { m.${factory}(${misuse}); } catch (error) { thrown = error; }
const error = new m.${error}('x', { sent: false });
console.log(JSON.stringify({
  ${factory}: typeof m.${factory},
  ${error}: typeof m.${error},
  code: thrown && thrown.code,
  sameSseErrorAsCore: thrown instanceof core.SseError && error instanceof core.SseError,
}));
`;

  const run = (args: string[]): Promise<unknown> =>
    new Promise((resolve, reject) => {
      execFile(process.execPath, args, { cwd: root, timeout: 20_000 }, (failure, stdout, stderr) => {
        if (failure) return reject(new Error(`${failure.message}\n${stderr}`));
        resolve(JSON.parse(stdout));
      });
    });

  test.each([
    ['ESM', ['--input-type=module', '-e', probe((id) => `await import('${id}')`)]],
    ['CommonJS', ['-e', probe((id) => `require('${id}')`)]],
  ])('the built package loads as %s', async (_format, args) => {
    for (const file of ['index.js', 'index.cjs', 'index.d.ts', 'index.d.cts']) {
      if (!existsSync(path.join(dist, file)))
        throw new Error(`${path.relative(root, path.join(dist, file))} is missing: run \`pnpm build\` at the repository root first.`);
    }
    await expect(run(args)).resolves.toEqual({
      [factory]: 'function',
      [error]: 'function',
      code: 'ERR_SSE_INVALID_OPTION',
      sameSseErrorAsCore: true,
    });
  });
}
