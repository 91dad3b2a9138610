// ESLint flat config: typed rules for promises and imports on all TypeScript sources.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {
    ignores: ['dist/**', 'node_modules/**', 'test/reporter.cjs', '.mocharc.cjs', 'bin/**', 'eslint.config.js',
      // kafkajs' own code, kept in upstream's style so the fork diffs cleanly against it (packages/kafkajs/FORK.md).
      'packages/kafkajs/index.js', 'packages/kafkajs/src/**', 'packages/kafkajs/types/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'describe', property: 'only' }, { object: 'it', property: 'only' }],
    },
  },
  {
    // The kafkajs fork's tests: CommonJS like the package, run by mocha straight from the source.
    files: ['packages/*/test/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: Object.fromEntries(
        ['require', 'module', '__dirname', 'Buffer', 'process', 'setTimeout', 'clearTimeout',
          'describe', 'it', 'before', 'after', 'beforeEach', 'afterEach'].map((name) => [name, 'readonly']),
      ),
    },
    rules: {
      '@typescript-eslint/no-require-imports': 'off',
      'no-restricted-properties': ['error', { object: 'describe', property: 'only' }, { object: 'it', property: 'only' }],
    },
  },
)
