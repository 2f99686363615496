/**
 * This folder's project type-checks ../adapter-express.ts and ../adapter-koa.ts again, with
 * `express` resolving to @types/express@4 and `koa` to @types/koa@2 (installed under aliases),
 * as in an app that still runs the older majors the adapters' peer ranges claim. This file
 * proves that those really are the types in use. Never executed.
 */
import type { Response } from 'express';
import type Koa from 'koa';
import type { Equal, Expect } from '../assert.js';

// Express 4's types: `res.sendfile` is gone from Express 5's.
export type Express4 = Expect<Equal<'sendfile' extends keyof Response ? true : false, true>>;
// Koa 2's types: `ctx.back()` came with Koa 3.
export type Koa2 = Expect<Equal<'back' extends keyof Koa.BaseContext ? true : false, false>>;
