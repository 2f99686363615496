/**
 * The built packages, as users load them: plain `node` processes started from the repository
 * root resolve `@ssekit/*` through node_modules and each package.json `exports`, into
 * packages/<name>/dist. Every other test runs on the sources, so this one proves the build.
 * `pnpm test` builds first; run `pnpm build` yourself before running this file alone.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const PACKAGES = ['core', 'express', 'fastify', 'koa'] as const;
type PackageName = (typeof PACKAGES)[number];
const DIST_FILES = ['index.js', 'index.cjs', 'index.d.ts', 'index.d.cts'];

const distOf = (name: PackageName) => path.join(ROOT, 'packages', name, 'dist');

/** Fails, rather than skips, when the build is missing or incomplete. */
function requireBuilt(name: PackageName): void {
  const missing = DIST_FILES.filter((file) => !existsSync(path.join(distOf(name), file)));
  if (missing.length > 0) {
    throw new Error(
      `packages/${name}/dist is not built (missing ${missing.join(', ')}). Run \`pnpm build\` at the repository root first; \`pnpm test\` does it for you.`,
    );
  }
}

/** Runs a script in a fresh `node` from the repository root and returns what it printed as JSON. */
function runNode(format: 'cjs' | 'esm', script: string): Promise<Record<string, unknown>> {
  const args = format === 'esm' ? ['--input-type=module', '-e', script] : ['-e', script];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`node ${format} failed: ${error.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as Record<string, unknown>);
      } catch {
        reject(new Error(`node ${format} printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
  });
}

// What every entry point must show, loaded either way: core's API (the adapters re-export it),
// the same SseError class as core itself, and a working serializer and error code.
const probe = (load: string, name: PackageName) => `
${load}
const core = await importOrRequire('@ssekit/core');
let thrown;
try { m.formatEvent({ event: 'a\\nb', data: 'x' }); } catch (error) { thrown = error; }
console.log(JSON.stringify({
  resolved,
  formatEvent: typeof m.formatEvent,
  createSseStream: typeof m.createSseStream,
  SseError: typeof m.SseError,
  sameSseErrorAsCore: m.SseError === core.SseError,
  text: m.formatEvent({ data: 'x' }),
  thrownCode: thrown instanceof m.SseError ? thrown.code : String(thrown),
  sse: typeof m.sse,
  default: typeof m.default,
  ssePlugin: typeof m.ssePlugin,
  defaultIsSsePlugin: m.default === m.ssePlugin,
  name: ${JSON.stringify(name)},
  exported: Object.keys(m).sort(),
  coreExported: Object.keys(core).sort(),
}));
`;

const cjsScript = (name: PackageName) =>
  `(async () => {${probe(
    `const importOrRequire = async (id) => require(id);
const m = require('@ssekit/${name}');
const resolved = require.resolve('@ssekit/${name}');`,
    name,
  )}})().catch((error) => { console.error(error); process.exit(1); });`;

const esmScript = (name: PackageName) =>
  probe(
    `const importOrRequire = (id) => import(id);
const m = await import('@ssekit/${name}');
const resolved = new URL(import.meta.resolve('@ssekit/${name}')).pathname;`,
    name,
  );

const common = {
  formatEvent: 'function',
  SseError: 'function',
  sameSseErrorAsCore: true,
  text: 'data: x\n\n',
  thrownCode: 'ERR_SSE_INVALID_FIELD',
};

// The entry point each adapter adds on top of core's API.
const extras: Record<PackageName, Record<string, unknown>> = {
  // createSseStream is Node's: core keeps it in @ssekit/core/node, the Node adapters re-export it.
  core: { sse: 'undefined', default: 'undefined', ssePlugin: 'undefined', createSseStream: 'undefined' },
  express: { sse: 'function', default: 'undefined', ssePlugin: 'undefined', createSseStream: 'function' },
  koa: { sse: 'function', default: 'undefined', ssePlugin: 'undefined', createSseStream: 'function' },
  fastify: { sse: 'undefined', default: 'function', ssePlugin: 'function', defaultIsSsePlugin: true, createSseStream: 'function' },
};

/** What an application gets from @ssekit/core at run time: deliberate, so pinned here. */
const CORE_VALUES = [
  'MAX_EVENT_ID_LENGTH',
  'SSE_DIAGNOSTICS',
  'SseError',
  'createChannel',
  'createMemoryBackplane',
  'createMemoryHistory',
  'createStreamGroup',
  'formatComment',
  'formatEvent',
  'formatRetry',
  'isValidEventId',
];
/** What each adapter adds to core's values, which it re-exports by name. */
const OWN_VALUES: Record<PackageName, string[]> = {
  core: [],
  express: ['createSseStream', 'sse'],
  koa: ['createSseStream', 'sse'],
  fastify: ['createSseStream', 'default', 'ssePlugin'],
};

describe.each(PACKAGES)('@ssekit/%s', (name) => {
  test('dist has ESM, CJS and a declaration file for each', () => {
    requireBuilt(name);
    for (const file of DIST_FILES) expect(existsSync(path.join(distOf(name), file))).toBe(true);
  });

  test('require() loads the CJS build', async () => {
    requireBuilt(name);
    const result = await runNode('cjs', cjsScript(name));
    expect(result).toMatchObject({ ...common, ...extras[name], resolved: path.join(distOf(name), 'index.cjs') });
  });

  test('import() loads the ESM build', async () => {
    requireBuilt(name);
    const result = await runNode('esm', esmScript(name));
    expect(result).toMatchObject({ ...common, ...extras[name], resolved: path.join(distOf(name), 'index.js') });
  });

  test("exports core's application values and its own, and no adapter plumbing", async () => {
    requireBuilt(name);
    const result = await runNode('esm', esmScript(name));
    expect(result.coreExported).toEqual(CORE_VALUES);
    expect(result.exported).toEqual([...CORE_VALUES, ...OWN_VALUES[name]].sort());
  });
});

describe.each(['cjs', 'esm'] as const)('@ssekit/core/adapter and @ssekit/core/node (%s)', (format) => {
  // The entry points must share one copy of core's modules: a stream that the adapter entry
  // makes is one that the main entry's channel accepts, and its errors are core's SseError.
  const script = (load: (id: string) => string) => `
const core = ${load('@ssekit/core')};
const adapter = ${load('@ssekit/core/adapter')};
const node = ${load('@ssekit/core/node')};
const chunks = [];
const sink = {
  lastEventIdHeader: undefined, closedBy: undefined, headersSent: false, bufferedBytes: 0,
  open(headers, first) { this.headersSent = true; if (first) chunks.push(first); return true; },
  reject() {}, write(chunk) { chunks.push(chunk); return true; }, onceDrain() {}, offDrain() {},
  onClose() {}, end() {}, destroy() {},
};
const stream = adapter.createSseStreamFromSink(sink, { keepAliveMs: 0 });
const channel = core.createChannel();
let subscribed;
try { channel.subscribe(stream); subscribed = true; } catch (error) { subscribed = String(error); }
let thrown;
try { stream.send({ id: 'a\\nb' }); } catch (error) { thrown = error; }
console.log(JSON.stringify({
  exported: Object.keys(adapter).sort(),
  node: Object.keys(node).sort(),
  subscribed,
  sameSseError: thrown instanceof core.SseError,
  written: chunks.join(''),
}));
channel.close();
`;
  test('loads, and shares one copy of core with the main entry', async () => {
    requireBuilt('core');
    const result =
      format === 'esm'
        ? await runNode(
            'esm',
            script((id) => `await import('${id}')`),
          )
        : await runNode(
            'cjs',
            `(async () => {${script((id) => `require('${id}')`)}})().catch((error) => { console.error(error); process.exit(1); });`,
          );
    expect(result).toEqual({
      exported: [
        'SSE_HEADERS',
        'createSseStreamFromSink',
        'defineLazyStream',
        'failStream',
        'kLazyStream',
        'lazyStream',
        'readLastEventId',
        'reportBackplaneEvent',
        'resolveAdapterOptions',
        'resolveStreamOptions',
      ],
      node: ['createNodeSink', 'createSseStream'],
      subscribed: true,
      sameSseError: true,
      written: 'id: 0\n\n',
    });
  });
});

test('the CJS fastify plugin, require(...).default, carries its fastify-plugin metadata', async () => {
  requireBuilt('fastify');
  const result = await runNode(
    'cjs',
    `const m = require('@ssekit/fastify');
console.log(JSON.stringify({ type: typeof m.default, same: m.default === m.ssePlugin, name: m.default[Symbol.for('plugin-meta')]?.name ?? null }));`,
  );
  expect(result).toEqual({ type: 'function', same: true, name: '@ssekit/fastify' });
});
