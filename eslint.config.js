// Lint: typescript-eslint, plus the import rules of ARCHITECTURE.md (who may import whom,
// and every module entered through its index.ts).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Relative paths to a top-level module from files up to four folders deep.
const ups = ['../', '../../', '../../../', '../../../../'];
const internals = (mod) => ({
  group: ups.flatMap((u) => [`${u}${mod}/*`, `!${u}${mod}/index.js`]),
  message: `enter ${mod}/ through its index.ts`,
});
const forbid = (mods, why) => mods.map((m) => ({ group: ups.flatMap((u) => [`${u}${m}`, `${u}${m}/*`]), message: why }));
const nodePkgs = (names, why) => names.map((name) => ({ name, message: why }));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'proto/gen/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['agent/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: nodePkgs(['bullmq', 'ioredis', 'ssh2'], 'the agent carries no queue, Redis or SSH code'),
        patterns: [
          ...forbid(['scheduler', 'cli'], 'agent imports only proto and certs'),
          internals('certs'),
          internals('proto'),
        ],
      }],
    },
  },
  {
    files: ['certs/**/*.ts', 'proto/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: nodePkgs(['bullmq', 'ioredis', 'ssh2'], 'certs and proto are shared with the agent'),
        patterns: [...forbid(['scheduler', 'cli', 'agent'], 'certs and proto depend on nothing above them'), internals('proto')],
      }],
    },
  },
  {
    files: ['scheduler/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: nodePkgs(['ssh2'], 'the scheduler carries no SSH code'),
        patterns: [...forbid(['cli', 'agent'], 'scheduler imports only proto and certs'), internals('certs'), internals('proto')],
      }],
    },
  },
  {
    files: ['cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [...forbid(['agent'], 'cli never imports the agent'), internals('certs'), internals('scheduler'), internals('proto')],
      }],
    },
  },
);
