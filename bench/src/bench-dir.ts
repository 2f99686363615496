/** Where the bench package lives: its sources, its results, its profiles. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bench package's directory, whatever the working directory. */
export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
