import { defineConfig } from 'tsup';
import base from '../../tsup.config';

// For browsers, Node, Deno and Bun: no Node built-ins, and the parser bundled in (it ships as
// ESM only, and CommonJS users must get it too). Split, so that the tab-sharing code is a chunk
// of its own that only a source with `share: 'tabs'` loads.
export default defineConfig({
  ...(base as object),
  platform: 'neutral',
  target: 'es2022',
  noExternal: ['eventsource-parser'],
  splitting: true,
});
