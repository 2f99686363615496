import { defineConfig } from 'tsup';

// One build recipe for every published package: dual ESM and CJS, with types for each.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
  treeshake: true,
  // `node:http`, not `http`: Deno and bundlers for other runtimes know a Node built-in by it.
  removeNodeProtocol: false,
});
