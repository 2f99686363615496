/**
 * App instances as separate processes (fixtures/instance.ts, on the test kit's harness), each on
 * a client library of its own.
 */
import path from 'node:path';
import { startInstance as startAppInstance, type Framework, type Instance as AppInstance } from '@ssekit/test-kit';
import type { Flavour } from './postgres.js';

const FIXTURE = path.join(__dirname, 'fixtures', 'instance.ts');

/** Ids are 1, 2, 3...: ordered as numbers. */
export const byId = (a: string, b: string) => Number(a) - Number(b);

/** One app instance in a process of its own, on `flavour`. */
export interface Instance extends AppInstance {
  readonly flavour: Flavour;
}

export async function startInstance(name: string, framework: Framework, flavour: Flavour, url: string, table: string): Promise<Instance> {
  const instance = await startAppInstance({
    fixture: FIXTURE,
    name,
    framework,
    detail: flavour,
    env: { FLAVOUR: flavour, PG_URL: url, TABLE: table },
  });
  // The same object: kill() and close() mark it as no longer alive.
  return Object.assign(instance, { flavour });
}
