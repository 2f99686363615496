/**
 * The size budget, as an app's bundler would ship the client: the built ES module bundled for
 * browsers, minified and gzipped. The core client at most 4 KiB; the tab-sharing code, a chunk
 * that only a source with `share: 'tabs'` loads, at most 2 KiB more.
 * `pnpm test` builds first; run `pnpm build` yourself before running this file alone.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const ENTRY = path.join(__dirname, '..', 'dist', 'index.js');
const KiB = 1024;

test('core at most 4 KiB and tab sharing at most 2 KiB more, minified and gzipped', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ssekit-client-size-'));
  try {
    const app = path.join(dir, 'app.js');
    writeFileSync(app, `import { createEventSource } from ${JSON.stringify(ENTRY)};\nglobalThis.source = createEventSource('/events');\n`);
    const result = await build({
      entryPoints: [app],
      bundle: true,
      minify: true,
      splitting: true,
      format: 'esm',
      platform: 'browser',
      outdir: path.join(dir, 'out'),
      metafile: true,
      write: true,
      logLevel: 'silent',
    });
    const outputs = result.metafile.outputs;
    const gzipped = (file: string) => gzipSync(readFileSync(path.resolve(file)), { level: 9 }).length;
    // What a page that never shares loads: the entry and every chunk it imports statically.
    const entry = Object.keys(outputs).find((file) => file.endsWith('.js') && outputs[file]!.entryPoint !== undefined)!;
    const loaded = new Set<string>();
    const load = (file: string) => {
      if (loaded.has(file)) return;
      loaded.add(file);
      for (const { path: imported, kind } of outputs[file]!.imports) if (kind === 'import-statement') load(imported);
    };
    load(entry);
    // The rest loads only behind the dynamic import of `share: 'tabs'`.
    const lazy = Object.keys(outputs).filter((file) => file.endsWith('.js') && !loaded.has(file));
    const core = [...loaded].reduce((sum, file) => sum + gzipped(file), 0);
    const tabs = lazy.reduce((sum, file) => sum + gzipped(file), 0);
    console.info(`[client size] core ${core} B, tabs ${tabs} B more (gzip -9, minified, bundled for browsers)`);
    expect(lazy).toHaveLength(1);
    expect(readFileSync(path.resolve(lazy[0]!), 'utf8')).toContain('new BroadcastChannel');
    for (const file of loaded) expect(readFileSync(path.resolve(file), 'utf8')).not.toContain('new BroadcastChannel');
    expect(core).toBeLessThanOrEqual(4 * KiB);
    expect(tabs).toBeLessThanOrEqual(2 * KiB);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
