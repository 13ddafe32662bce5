// Type-aware linting for every workspace, tests included.
import js from '@eslint/js';
import globals from 'globals';
import jest from 'eslint-plugin-jest';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // infra/compose/*.js are mongosh scripts (its globals, not Node's), run inside the mongo image.
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      'coverage/**',
      '.state/**',
      'jest.config.js',
      'eslint.config.mjs',
      'infra/compose/*.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Fastify handlers and jest callbacks are async by contract even when they do not await.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // The web page's modules: plain browser JavaScript, not part of the TypeScript project.
    files: ['services/gateway/src/web/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: globals.browser,
      sourceType: 'module',
    },
  },
  {
    // Tests that prove what their names claim: none focused or skipped by accident, each with an
    // assertion (the project's own expect* helpers count), none asserting only on some paths.
    files: ['**/*.test.ts', 'tests/**/*.ts'],
    plugins: { jest },
    rules: {
      'jest/no-focused-tests': 'error',
      'jest/no-disabled-tests': 'error',
      'jest/expect-expect': ['error', { assertFunctionNames: ['expect', 'expect*'] }],
      'jest/no-conditional-expect': 'error',
      'jest/valid-expect': 'error',
      'jest/no-identical-title': 'error',
    },
  },
);
