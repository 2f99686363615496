// ESLint with typescript-eslint's type-checked rules, chosen over Biome because the rules that
// need types are the ones that matter most for a library built on promises and streams:
// floating and misused promises, awaits of non-promises, any flowing where it should not.
// Formatting is Prettier's (.prettierrc.json), so ESLint's stylistic rules are off. `pnpm lint`
// runs both, and .ci/run fails on any finding.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const TEST_CODE = ['**/test/**', 'test/**', 'demo/**', 'bench/**', 'packages/test-kit/**'];

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      '.node-versions/**',
      'coverage/**',
      'bench/profiles/**',
      'bench/.baseline/**',
      '**/.next/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        projectService: { allowDefaultProject: ['*.mjs', 'tsup.config.ts', 'packages/*/tsup.config.ts', 'scripts/*.d.mts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // `any` is written on purpose where variance demands it (`res.sse` is `SseStream<any>`, so
      // that a handler narrows it to its event map without a cast); the no-unsafe-* rules still
      // catch any flowing on from there.
      '@typescript-eslint/no-explicit-any': 'off',
      // Type tests name their assertions `_x` so that tsc checks them; callbacks name unused
      // parameters `_x` to keep the signature readable.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests wrap methods to count calls, read JSON and framework internals, and pass a typed
    // stream where `res.sse` is declared `any`: what these rules guard in library code. And
    // they hand Koa's `app.callback()`, which returns a promise that never rejects, to
    // `http.createServer`, as every Koa app does.
    files: TEST_CODE,
    rules: {
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      // Async generators that only yield are the async sources that pipe() must take.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  // Type tests declare values to take their types: used as types only, by design.
  { files: ['test/types/**'], rules: { '@typescript-eslint/no-unused-vars': 'off' } },
  { files: ['**/*.cjs', '**/*.mjs', '**/*.js'], ...tseslint.configs.disableTypeChecked },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs' }, rules: { '@typescript-eslint/no-require-imports': 'off' } },
  prettier,
);
