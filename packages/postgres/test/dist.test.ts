/**
 * The built package, as users load it: a plain `node` from the repository root resolves
 * `@ssekit/postgres` through node_modules and its `exports` into dist, in ESM and in CommonJS.
 * `pnpm test` builds first; run `pnpm build` yourself before running this file alone.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DIST = path.resolve(__dirname, '..', 'dist');

// Misuse throws core's own SseError, whichever way both packages were loaded.
const probe = (load: (id: string) => string) => `
const m = ${load('@ssekit/postgres')};
const core = ${load('@ssekit/core')};
let thrown;
try { m.createPostgresBackplane({ pool: {} }); } catch (error) { thrown = error; }
const error = new m.PostgresBackplaneError('x', { sent: false });
console.log(JSON.stringify({
  createPostgresBackplane: typeof m.createPostgresBackplane,
  PostgresBackplaneError: typeof m.PostgresBackplaneError,
  code: thrown && thrown.code,
  sameSseErrorAsCore: thrown instanceof core.SseError && error instanceof core.SseError,
}));
`;

function run(args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`${error.message}\n${stderr}`));
      resolve(JSON.parse(stdout));
    });
  });
}

test.each([
  ['ESM', ['--input-type=module', '-e', probe((id) => `await import('${id}')`)]],
  ['CommonJS', ['-e', probe((id) => `require('${id}')`)]],
])('the built package loads as %s', async (_format, args) => {
  for (const file of ['index.js', 'index.cjs', 'index.d.ts', 'index.d.cts']) {
    if (!existsSync(path.join(DIST, file)))
      throw new Error(`packages/postgres/dist/${file} is missing: run \`pnpm build\` at the repository root first.`);
  }
  await expect(run(args)).resolves.toEqual({
    createPostgresBackplane: 'function',
    PostgresBackplaneError: 'function',
    code: 'ERR_SSE_INVALID_OPTION',
    sameSseErrorAsCore: true,
  });
});
