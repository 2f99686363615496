/**
 * Type-level assertions for the type tests in this folder. These files are only type-checked
 * (`tsc --noEmit`, run by test/typecheck.test.ts), never executed.
 */

/** True when `A` and `B` are the same type, not merely assignable to each other. */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** Compiles only when given `true`. */
export type Expect<T extends true> = T;
