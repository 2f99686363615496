#!/usr/bin/env node
// Runs the whole jest suite once per Node.js major that users run, each on its pinned release
// (scripts/node-versions.mjs), and ends with one line that sums them all: `N passed, N failed`.
//
//   pnpm test:matrix              every major of NODE_VERSIONS
//   pnpm test:matrix 22 26        only these majors
//   pnpm test:matrix --except 20  every major but these (.ci/run: 20 already ran as `pnpm test`)
//   pnpm test:matrix 24 test/large-events.test.ts    other arguments go to jest
//
// Expects built packages (`pnpm test:matrix` builds first). Binaries are cached in
// .node-versions/; a major whose pinned version is the Node running this script uses it as is.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_VERSIONS, nodeBinary } from './node-versions.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const except = new Set();
  const only = [];
  const jestArgs = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') continue;
    if (argv[i] === '--except') except.add(argv[++i]);
    else if (/^\d+$/.test(argv[i])) only.push(argv[i]);
    else jestArgs.push(argv[i]);
  }
  const majors = (only.length ? only : Object.keys(NODE_VERSIONS)).filter((major) => !except.has(major));
  for (const major of majors) {
    if (!NODE_VERSIONS[major])
      throw new Error(`No pinned Node.js release for major ${major}; known: ${Object.keys(NODE_VERSIONS).join(', ')}`);
  }
  return { majors, jestArgs };
}

/** Runs jest on `binary`, with that binary first on PATH for every process the tests start. */
function runJest(binary, major, jestArgs) {
  const resultsFile = path.join(ROOT, `.jest-results-node${major}.json`);
  rmSync(resultsFile, { force: true });
  const env = {
    ...process.env,
    PATH: `${path.dirname(binary)}${path.delimiter}${process.env.PATH}`,
    JEST_RESULTS_FILE: resultsFile,
  };
  return new Promise((resolve) => {
    const child = spawn(binary, [path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), ...jestArgs], {
      cwd: ROOT,
      env,
      stdio: 'inherit',
    });
    child.on('close', (code) => {
      let totals = { passed: 0, failed: 1, skipped: 0 }; // no results file: jest never got to report
      try {
        totals = JSON.parse(readFileSync(resultsFile, 'utf8'));
      } catch {
        // Keeps the failure above.
      }
      resolve({ major, code, ...totals });
    });
  });
}

const { majors, jestArgs } = parseArgs(process.argv.slice(2));
const runs = [];
for (const major of majors) {
  const version = NODE_VERSIONS[major];
  console.log(`\n[matrix] Node.js ${version}`);
  let binary;
  try {
    binary = nodeBinary(version);
  } catch (error) {
    console.error(`[matrix] Node.js ${version} is unavailable: ${error.message}`);
    runs.push({ major, code: 1, passed: 0, failed: 1, skipped: 0 });
    continue;
  }
  runs.push(await runJest(binary, major, ['--ci', ...jestArgs]));
}

console.log('\n[matrix] results');
for (const run of runs) {
  console.log(
    `[matrix] Node.js ${NODE_VERSIONS[run.major]}: ${run.passed} passed, ${run.failed} failed${run.skipped ? `, ${run.skipped} skipped` : ''}`,
  );
}
const sum = (key) => runs.reduce((total, run) => total + run[key], 0);
console.log(`${sum('passed')} passed, ${sum('failed')} failed`);
process.exit(runs.every((run) => run.code === 0 && run.failed === 0) ? 0 : 1);
