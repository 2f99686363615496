import { defineConfig } from 'tsup';
import base from '../../tsup.config';

// Four entry points over one set of modules: split, so that all load the same stream class,
// symbols and SseError instead of a copy each (a copy's symbols and `instanceof` would not match).
export default defineConfig({
  ...(base as object),
  entry: ['src/index.ts', 'src/adapter.ts', 'src/node.ts', 'src/testing.ts'],
  splitting: true,
});
