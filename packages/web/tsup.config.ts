import { defineConfig } from 'tsup';
import base from '../../tsup.config';

// For every Fetch API runtime: nothing from Node.
export default defineConfig({
  ...(base as object),
  platform: 'neutral',
  target: 'es2022',
});
