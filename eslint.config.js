// Lint: typescript-eslint, plus the import rules of ARCHITECTURE.md (who may import whom, and
// every module entered through its index.ts). The layers are one table: a top-level folder
// holding TypeScript that is not in it fails `npm run lint` (scripts/check-layers.mjs), so a new
// folder is layer-checked from its first file.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Top-level modules: what each may import, and the npm packages it must not carry. */
export const LAYERS = {
  proto: { may: [], banned: ['bullmq', 'ioredis', 'ssh2', 'prom-client'], why: 'proto is shared with the agent' },
  certs: { may: ['proto'], banned: ['bullmq', 'ioredis', 'ssh2', 'prom-client'], why: 'certs is shared with the agent' },
  agent: { may: ['proto', 'certs'], banned: ['bullmq', 'ioredis', 'ssh2'], why: 'the agent carries no queue, Redis or SSH code' },
  scheduler: { may: ['proto', 'certs'], banned: ['ssh2'], why: 'the scheduler carries no SSH code' },
  cli: { may: ['proto', 'certs', 'scheduler'], banned: [], why: 'cli sits on top' },
  // Tools around the product: they may use every module, still through its index.ts.
  scripts: { may: ['proto', 'certs', 'scheduler', 'cli', 'agent', 'test'], banned: [], why: '' },
  bench: { may: ['proto', 'certs', 'scheduler', 'cli', 'agent', 'test'], banned: [], why: '' },
  test: { may: ['proto', 'certs', 'scheduler', 'cli', 'agent', 'scripts', 'bench', 'modules'], banned: [], why: '' },
  modules: { may: [], banned: [], why: '' },
};
const MODULES = ['proto', 'certs', 'agent', 'scheduler', 'cli'];

// A relative specifier reaching a top-level folder from anywhere below the root.
const up = '^(\\.\\./)+';
/** Import of `mod` other than through its entry points. */
const intoInternals = (mod, entries) => ({
  regex: `${up}${mod}/(?!(${entries.map((e) => e.replace(/[./]/g, (c) => `\\${c}`)).join('|')})$)`,
  message: `enter ${mod}/ through ${entries.join(' or ')}`,
});
const ENTRIES = { scheduler: ['index.js', 'client/index.js', 'light/index.js'], proto: ['index.js', 'light.js'] };
const forbidModule = (mod, why) => ({ regex: `${up}${mod}(/|$)`, message: why });

function layerRules(name) {
  const layer = LAYERS[name];
  const patterns = [];
  for (const mod of Object.keys(LAYERS)) {
    if (mod === name) continue;
    if (!layer.may.includes(mod)) patterns.push(forbidModule(mod, `${name} may import only ${layer.may.join(', ') || 'nothing of the project'}`));
    else if (MODULES.includes(mod) && MODULES.includes(name)) patterns.push(intoInternals(mod, ENTRIES[mod] ?? ['index.js']));
  }
  return {
    files: [`${name}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: layer.banned.map((p) => ({ name: p, message: layer.why })),
          patterns,
        },
      ],
    },
  };
}

// The agent client (scheduler/client) is loaded by `gaxx exec`: no queue code, nothing else of
// the scheduler.
const clientRule = {
  files: ['scheduler/client/**/*.ts'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        paths: ['bullmq', 'ioredis', 'prom-client', 'ssh2', 'pino'].map((p) => ({
          name: p,
          message: 'the agent client stays light: no queue, Redis, metrics or SSH code',
        })),
        patterns: [
          { regex: '^\\.\\./(?!\\.\\./)', message: 'the agent client imports only proto and certs, not the rest of the scheduler' },
          forbidModule('cli', 'scheduler imports only proto and certs'),
          forbidModule('agent', 'scheduler imports only proto and certs'),
          intoInternals('proto', ['index.js']),
          intoInternals('certs', ['index.js']),
        ],
      },
    ],
  },
};

// Type-aware rules on the product code: a promise nobody awaits or handles is how a daemon loses
// an error or a task silently. (GAXX_LINT_UNTYPED=1 skips them: the layer-rule tests lint
// virtual files that no tsconfig knows.)
const typed =
  process.env.GAXX_LINT_UNTYPED === '1'
    ? []
    : [
        {
          files: MODULES.map((m) => `${m}/**/*.ts`),
          languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
          rules: {
            '@typescript-eslint/no-floating-promises': 'error',
            '@typescript-eslint/no-misused-promises': 'error',
            '@typescript-eslint/await-thenable': 'error',
          },
        },
      ];

// Node 20 can deadlock exporting a generated key pair as JWK (a GC during the export runs the
// key job's destructor, which waits for the lock the export holds): a test or a command then
// hangs forever, and no timeout can end a thread that waits on a lock. DER carries the same bytes.
const noJwk = {
  selector: "Property[key.name='format'][value.value='jwk']",
  message: "export keys as DER ('spki' or 'pkcs8'): Node 20 can deadlock exporting a generated key pair as JWK",
};

// Node 20's recursive mkdir retries for ever where mkdir keeps failing with ENOENT (under /proc),
// synchronously: a path a user names there hung the process, deaf to signals. makeDirs walks up
// once instead.
const noRecursiveMkdir = {
  selector:
    "CallExpression[callee.name=/^mkdir(Sync)?$/] Property[key.name='recursive'], CallExpression[callee.property.name=/^mkdir(Sync)?$/] Property[key.name='recursive']",
  message: 'make directories with makeDirs / makeDirsAsync (proto): Node 20 recursive mkdir loops for ever on ENOENT (e.g. under /proc)',
};

// Commands live for a fraction of a second: ICU's collator, built on the first localeCompare or
// Intl.Collator (~13 ms here), would be paid by every one that sorts a list. proto's compareText
// orders by code units instead.
const textOrder = {
  files: MODULES.map((m) => `${m}/**/*.ts`),
  rules: {
    'no-restricted-syntax': [
      'error',
      noJwk,
      noRecursiveMkdir,
      {
        selector: "CallExpression[callee.property.name='localeCompare']",
        message: "order text with compareText (proto): localeCompare builds ICU's collator (~13 ms) on first use",
      },
      {
        selector: "MemberExpression[object.name='Intl'][property.name='Collator']",
        message: 'order text with compareText (proto): a collator costs ~13 ms to build',
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'proto/gen/**', '.tmp/**', 'test/fixtures/lint/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
  },
  {
    // The dashboard's page: plain browser scripts, served as they are.
    files: ['scheduler/ui/assets/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        performance: 'readonly',
        requestAnimationFrame: 'readonly',
        EventSource: 'readonly',
        fetch: 'readonly',
        URLSearchParams: 'readonly',
        uPlot: 'readonly',
      },
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  ...Object.keys(LAYERS).map(layerRules),
  clientRule,
  // Everywhere (tests and tools too); textOrder below repeats it for the modules, whose
  // no-restricted-syntax it replaces.
  { files: ['**/*.ts', '**/*.mjs', '**/*.js'], rules: { 'no-restricted-syntax': ['error', noJwk] } },
  textOrder,
  ...typed,
);
