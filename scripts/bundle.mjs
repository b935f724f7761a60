#!/usr/bin/env node
// Bundles the CLI and the agent with esbuild (node20), after tsc:
//   dist/bundle/gaxx.cjs          the CLI's entry: a few lines that load gaxx-cli.cjs through
//                                 vendor-load.cjs (CommonJS: Node needs no ES module loader for it),
//                                 or gaxx-front.cjs first for a command line that may ask only for
//                                 the program's help or version
//   dist/bundle/gaxx-front.cjs    cli/front.ts: those two answers without the commands (small)
//   dist/bundle/gaxx-cli.cjs      the CLI as ONE CommonJS file in its function wrapper, with
//                                 gaxx-cli.cjs.v8cache beside it: Node 20 caches no compiled code
//                                 for ES modules, and compiling the CLI as ES module chunks took
//                                 a good part of `gaxx exec`'s start. Each command's modules are
//                                 still initialised only when the command runs (esbuild's lazy
//                                 module wrappers), so `gaxx --version` runs none of them
//   dist/bundle/vendor-*.cjs      the large packages the CLI uses (grpc-js, proto-loader, BullMQ,
//                                 ioredis, node-forge, ssh2, ...), one CommonJS file each, in its
//                                 function wrapper as the CLI's own (load them with loadVendor, not
//                                 require()), each with its code cache (<file>.v8cache): gaxx-cli.cjs
//                                 loads one on first use, so a command loads only what it needs, and the
//                                 packages share one instance (BullMQ uses vendor-ioredis.cjs).
//                                 proto-loader (here and in the agent) makes its descriptors when
//                                 first read (scripts/proto-loader-lazy.mjs) and protobufjs
//                                 generates each function of a message type on its first call
//                                 (scripts/protobuf-lazy-setup.mjs); ioredis defines its
//                                 command methods in well under a ms (scripts/ioredis-commands.mjs)
//   dist/bundle/vendor-load.cjs   loads a file beside it with its V8 code cache (made here by
//                                 scripts/vendor-cache.mjs)
//   dist/bundle/gaxx-agent.mjs    the agent's entry: a few lines that load gaxx-agent.cjs through
//                                 vendor-load.cjs, so that the agent, too, starts from a V8 code cache
//   dist/bundle/gaxx-agent.cjs    the agent as ONE CommonJS file in its function wrapper (no chunks,
//                                 no node_modules, no .proto files), with gaxx-agent.cjs.v8cache beside it (made here by
//                                 scripts/vendor-cache.mjs --agent): what bootstrap uploads and
//                                 local agents run, together with the entry and vendor-load.cjs
//   dist/bundle/gaxx-launcher.mjs the agent's task launcher (agent/exec/launcher-main.ts), one
//                                 small file installed and uploaded beside the agent
//   dist/bundle/gaxx-spawn.node   the launcher's vfork spawn (scripts/build-native.mjs, run from
//                                 here: this script empties dist/bundle first, and an agent
//                                 without it forks every task through child_process and prlimit)
//   dist/bundle/gaxx-openssl.cnf  the OpenSSL configuration agents start with (no TLS 1.3 session
//                                 tickets; AGENT_OPENSSL_CONFIG in cli/providers/agent-bundle.ts)
//   dist/bundle/package.json      gaxx's name and version, for a copy of the bundle dir alone
// Usage: node scripts/bundle.mjs [--analyze]   (--analyze prints each output's largest inputs)
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { createRequire } from 'node:module';
import { chmodSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { assertNoDynamicImport } from './bundle-checks.mjs';
import { grpcLazyBuiltins } from './grpc-lazy-builtins.mjs';
import { ioredisCommands } from './ioredis-commands.mjs';
import { msgpackrNoExtract } from './msgpackr-no-extract.mjs';
import { lazyProtoLoader } from './proto-loader-lazy.mjs';
import { protobufLazySetup } from './protobuf-lazy-setup.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'bundle');

// CommonJS packages inside an ESM bundle (the launcher) still call require() for Node built-ins
// and use __dirname; give them both.
const cjsShim = [
  "import { createRequire as __gaxxCreateRequire } from 'node:module';",
  "import { fileURLToPath as __gaxxFileURLToPath } from 'node:url';",
  "import { dirname as __gaxxDirname } from 'node:path';",
  'const require = __gaxxCreateRequire(import.meta.url);',
  'const __filename = __gaxxFileURLToPath(import.meta.url);',
  'const __dirname = __gaxxDirname(__filename);',
].join(' ');
/**
 * How the CLI's entry starts: with Node's --use-openssl-ca. Node builds the trust store it ships
 * (about 140 certificates, parsed one by one; ~50 ms here) the first time any TLS context is given
 * a CA of its own, only to tell it apart: every connection to an agent, to a TLS Redis or to the
 * scheduler paid for it. With --use-openssl-ca that store is OpenSSL's, which reads a system CA
 * only when a peer's chain needs it; HTTPS to a cloud provider trusts the system's CAs (plus
 * NODE_EXTRA_CA_CERTS, as before). `env -S` passes the flag on (coreutils 8.30 and later).
 */
const CLI_SHEBANG = '#!/usr/bin/env -S node --use-openssl-ca';
/** The words of a command line the CLI's front (cli/front.ts) may answer: dispatch's own (tsc build). */
const { HELP_WORDS, VERSION_WORDS } = await import(pathToFileURL(join(root, 'dist', 'cli', 'dispatch.js')).href);
const FRONT_WORDS = [...HELP_WORDS, ...VERSION_WORDS];
/**
 * The entry of a program bundled as one CommonJS file, compiled with its code cache when that
 * fits this Node. The CLI's entry is CommonJS itself, so that Node starts it without setting up
 * its ES module loader (the CLI never needs it); the agent's stays the .mjs that installed
 * hosts' service units name.
 */
const entryOf = (name, file, format) => `${format === 'cjs' ? CLI_SHEBANG : '#!/usr/bin/env node'}
${format === 'cjs' ? "'use strict';\n" : ''}// ${name}: the program is ${file} beside this file; vendor-load.cjs compiles it with its V8 code
// cache (${file}.v8cache) when the cache was made from that very file by this Node version, and
// without it otherwise.
${format === 'cjs' ? cjsEntryBody(file) : `import { createRequire } from 'node:module';\ncreateRequire(import.meta.url)('./vendor-load.cjs').loadVendor('${file}');`}
`;

/**
 * The CLI's entry loads its front (gaxx-front.cjs, cli/front.ts; small: a plain require, no code
 * cache) first when the command line may ask only for the program's help or version (a word the
 * front answers is in it, before any `--`), and the CLI when the front does not answer. The CLI
 * is compiled with the cache of the command its first word names when the build made one
 * (`gaxx-cli.cjs.exec.v8cache`: scripts/vendor-cache.mjs --own), else with the cache of all
 * commands (vendor-load.cjs tries a word as a variant only when it is a plain lower-case word).
 * A line that starts with global flags (`gaxx --home D exec`) gets the latter: slower to start,
 * not otherwise different.
 */
const cjsEntryBody = (file) => `const argv = process.argv.slice(2);
const ask = new Set(${JSON.stringify(FRONT_WORDS)});
const end = argv.indexOf('--');
const asks = (end === -1 ? argv : argv.slice(0, end)).some((a) => ask.has(a));
if (!asks || !require('./gaxx-front.cjs').answered(argv)) require('./vendor-load.cjs').loadVendor('${file}', { variant: argv[0] });`;
/** In a CommonJS bundle, import.meta.url is the file's own URL, as it was in the ES module. */
const cjsBundle = {
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  define: { 'import.meta.url': '__gaxxImportMetaUrl' },
  // The directive first: esbuild's own "use strict" comes after the banner.
  banner: { js: "'use strict'; const __gaxxImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outExtension: { '.js': '.mjs' },
  // ssh2's optional native crypto binding: without it ssh2 uses its JavaScript code paths.
  external: ['*.node'],
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
};

/**
 * The packages the CLI loads from vendor files of their own (package: file) rather than from
 * gaxx-cli.cjs: a command that does not use one never reads it (the CLI's own file stays small,
 * and every command starts faster), and each file has its own code cache.
 */
const VENDORED = {
  '@grpc/grpc-js': 'vendor-grpc-js.cjs',
  '@grpc/proto-loader': 'vendor-proto-loader.cjs',
  bullmq: 'vendor-bullmq.cjs',
  ioredis: 'vendor-ioredis.cjs',
  'node-forge': 'vendor-node-forge.cjs',
  ssh2: 'vendor-ssh2.cjs',
  'prom-client': 'vendor-prom-client.cjs',
  pino: 'vendor-pino.cjs',
  yaml: 'vendor-yaml.cjs',
  // The config's schema and the state files' (cli/zod.cjs): a command that validates nothing
  // (gaxx exec) does not read it. Its CommonJS build cannot be tree-shaken: a third of the CLI's
  // text was zod's.
  zod: 'vendor-zod.cjs',
};
const VENDORED_NAME = new RegExp(
  `^(${Object.keys(VENDORED)
    .map((p) => p.replace(/[/.@-]/g, '\\$&'))
    .join('|')})$`,
);

/**
 * Resolves the vendored packages (but `self`, the one being vendored) to a module that loads
 * their vendor file through vendor-load.cjs, with its code cache: in the CLI, and inside another
 * vendor file (BullMQ's ioredis), which so gets the very instance the CLI uses.
 */
const vendored = (self) => ({
  name: 'vendored',
  setup(b) {
    b.onResolve({ filter: VENDORED_NAME }, (a) => {
      if (a.path === self) return undefined;
      return { path: a.path, namespace: 'vendor-require' };
    });
    b.onResolve({ filter: /^\.\/vendor-[\w-]+\.cjs$/ }, (a) => ({ path: a.path, external: true }));
    b.onLoad({ filter: /.*/, namespace: 'vendor-require' }, (a) => ({
      contents: `module.exports = require('./vendor-load.cjs').loadVendor('${VENDORED[a.path]}');\n`,
      loader: 'js',
    }));
  },
});

/** Leaves modules imported with import() out of a bundle (left as a require() that is never run). */
const withoutDynamicImports = {
  name: 'without-dynamic-imports',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (a) => (a.kind === 'dynamic-import' ? { path: a.path, external: true } : undefined));
  },
};

/** The edits some packages get wherever they are bundled (each script says why). */
const packageEdits = [lazyProtoLoader, protobufLazySetup, ioredisCommands, grpcLazyBuiltins, msgpackrNoExtract];

/** One vendor file: the package's CommonJS build, its module.exports as the file's. */
function vendor(pkg) {
  return build({
    ...common,
    stdin: { contents: `module.exports = require('${pkg}');\n`, resolveDir: root, loader: 'js' },
    format: 'cjs',
    outfile: join(out, VENDORED[pkg]),
    // Without comments and layout: a third less text to read, check and hand to V8 at each load
    // (BullMQ's 1.3 MB became 0.9 MB, and ASCII: a comment's arrows had made Node decode all of
    // it as UTF-8, and V8 keep it as a two-byte string). Vendor code is not read here.
    minifyWhitespace: true,
    plugins: [vendored(pkg), ...packageEdits],
  });
}

rmSync(out, { recursive: true, force: true });
const results = await Promise.all([
  // CommonJS, so that vendor-load.cjs can compile it with its code cache (Node 20 has none for ES
  // modules). Without splitting, esbuild wraps each module a command imports with import() in a
  // lazy initialiser: a command's modules still run only when it runs.
  build({
    ...common,
    ...cjsBundle,
    entryPoints: { 'gaxx-cli': join(root, 'cli', 'main.ts') },
    outdir: out,
    // Without comments and layout, as the vendor files (whose comment says why); the names stay,
    // so a stack trace (GAXX_DEBUG=1) still names the functions.
    minifyWhitespace: true,
    plugins: [vendored()],
  }),
  // The front (cli/front.ts): the program's help and version without the commands. What they
  // load only when run (the commands, the config) is left out: the front never runs them.
  build({
    ...common,
    ...cjsBundle,
    entryPoints: { 'gaxx-front': join(root, 'cli', 'front.ts') },
    outdir: out,
    plugins: [vendored(), withoutDynamicImports],
  }),
  build({
    ...common,
    // The task launcher, a small process of its own that the agent finds beside itself.
    entryPoints: { 'gaxx-launcher': join(root, 'agent', 'exec', 'launcher-main.ts') },
    outdir: out,
    banner: { js: cjsShim },
  }),
  build({
    ...common,
    ...cjsBundle,
    entryPoints: { 'gaxx-agent': join(root, 'agent', 'main.ts') },
    outdir: out,
    plugins: packageEdits,
  }),
  ...Object.keys(VENDORED).map(vendor),
]);
const { wrapped } = createRequire(import.meta.url)('./vendor-load.cjs');
/** The package an esbuild input belongs to (`@scope/name` or `name`), or its first folder for gaxx's own files. */
const packageOf = (input) => input.match(/node_modules\/((@[^/]+\/)?[^/]+)/)?.[1] ?? input.split('/')[0];
/**
 * A minified file has none of the `// node_modules/<pkg>/...` comments esbuild puts before each
 * bundled file: it starts with one such line per package it carries instead (metafile output `o`).
 */
const packageLines = (o) =>
  [
    ...new Set(
      Object.keys(o.inputs)
        .filter((i) => i.includes('node_modules/'))
        .map(packageOf),
    ),
  ]
    .sort()
    .map((p) => `// node_modules/${p}/\n`)
    .join('');
/** The metafile output of the bundle file `name`. */
const outputOf = (name) => results.flatMap((r) => Object.entries(r.metafile.outputs)).find(([f]) => basename(f) === name)?.[1];
// The CLI's and the agent's files go out in their CommonJS function wrapper (where a #! line
// would be a syntax error), so that vendor-load.cjs compiles them as they are (see its wrapped()).
for (const [entry, file, name] of [
  ['gaxx.cjs', 'gaxx-cli.cjs', 'gaxx'],
  ['gaxx-agent.mjs', 'gaxx-agent.cjs', 'gaxx-agent'],
]) {
  const cjs = join(out, file);
  // The CLI is minified (its package lines first); the agent keeps esbuild's comments.
  const head = file === 'gaxx-cli.cjs' ? packageLines(outputOf(file)) : '';
  writeFileSync(cjs, wrapped(head + readFileSync(cjs, 'utf8').replace(/^#!.*\n/, '')));
  writeFileSync(join(out, entry), entryOf(name, file, entry.endsWith('.cjs') ? 'cjs' : 'esm'));
}
for (const bin of ['gaxx.cjs', 'gaxx-agent.mjs', 'gaxx-launcher.mjs']) chmodSync(join(out, bin), 0o755);
// The vendor files, minified too, with their package lines first.
for (const r of results) {
  for (const [file, o] of Object.entries(r.metafile.outputs)) {
    if (!/(^|\/)vendor-[\w-]+\.cjs$/.test(file)) continue;
    const path = resolve(file); // metafile paths are relative to the working dir esbuild ran in
    // In its function wrapper too, as the CLI and the agent: a file vendor-load.cjs has to wrap
    // becomes a second string, and V8 copies the two into one flat string of its heap to look the
    // script up (0.4 MB of page faults for grpc-js alone at each `gaxx exec`).
    writeFileSync(path, wrapped(packageLines(o) + readFileSync(path, 'utf8')));
  }
}
// gaxx's version beside its entries (proto/version.ts looks for the package.json above a module):
// a copy of the bundle dir alone, with no checkout or installation around it, still knows it.
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(join(out, 'package.json'), `${JSON.stringify({ name: 'gaxx', version, private: true })}\n`);
// The files vendor-load.cjs compiles through vm.Script must not call import() (scripts/bundle-checks.mjs).
for (const file of ['gaxx-cli.cjs', 'gaxx-agent.cjs', ...Object.values(VENDORED)]) assertNoDynamicImport(file, readFileSync(join(out, file), 'utf8'));
// The vendor files' loader and the V8 code caches (made by loading and using each file once).
cpSync(join(root, 'scripts', 'vendor-load.cjs'), join(out, 'vendor-load.cjs'));
// Made with no V8 flags, as users run the CLI: V8 refuses a cache made under other flags, so
// NODE_OPTIONS from the environment of the build is left out.
const { NODE_OPTIONS: _flags, ...cacheEnv } = process.env;
// Every step has a time limit: a child that never ends would hold the build, and CI, for good.
const STEP_LIMIT_MS = 120_000;
/** Why a step's child failed: its exit code, or the signal or error that ended it (the limit). */
const why = (r) =>
  r.error
    ? `${r.error.message}${r.error.code === 'ETIMEDOUT' ? ` (over the ${STEP_LIMIT_MS / 1000} s limit)` : ''}`
    : r.signal
      ? `ended by ${r.signal}`
      : `exit ${r.status}`;
// The launcher's native spawn, before the agent below runs for its cache: as agents will run.
// It goes where this script emptied dist/bundle; the build of a host without a C compiler
// goes on without it (build-native.mjs says what to install).
const native = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit', timeout: STEP_LIMIT_MS });
if (native.status !== 0) throw new Error(`building gaxx-spawn.node failed: ${why(native)}`);
const cached = spawnSync(process.execPath, [join(root, 'scripts', 'vendor-cache.mjs'), out], { stdio: 'inherit', env: cacheEnv, timeout: STEP_LIMIT_MS });
if (cached.status !== 0) throw new Error(`making the vendor code caches failed: ${why(cached)}`);
// The CLI's, from a run of `gaxx exec --help` (its help text is not shown).
const cliCached = spawnSync(process.execPath, [join(root, 'scripts', 'vendor-cache.mjs'), out, '--cli'], {
  stdio: ['ignore', 'ignore', 'inherit'],
  env: cacheEnv,
  timeout: STEP_LIMIT_MS,
});
if (cliCached.status !== 0) throw new Error(`making the CLI code cache failed: ${why(cliCached)}`);
// The agent's, by starting it once: with the environment agents run with (PATH) and no V8 flags,
// since V8 refuses a cache made under other V8 flags. While it runs, the CLI runs `gaxx exec --
// true` and `gaxx run -- true` on it, which remake the caches of the CLI and of the vendor files
// those load with the connection, the call and the queue in them, then each command's own cache
// of the CLI (gaxx-cli.cjs.exec.v8cache, ...run.v8cache; see vendor-cache.mjs --own). The
// agent listens on a port found free just before, which another process may take in between: a
// start that finds it taken is tried again (3 times in all, each on a new port). Its log is
// shown only when it fails, or when a command of the CLI failed.
// The agent's cache is made under the Node flags every agent runs with (AGENT_NODE_FLAGS, from
// the tsc build): V8 refuses a cache made under other heap flags.
const { AGENT_NODE_FLAGS, AGENT_OPENSSL_CONFIG, OPENSSL_CONFIG_FILE } = await import(
  pathToFileURL(join(root, 'dist', 'cli', 'providers', 'agent-bundle.js')).href
);
// The OpenSSL configuration every agent's Node is started with (agentNodeFlags), beside its entry.
writeFileSync(join(out, OPENSSL_CONFIG_FILE), AGENT_OPENSSL_CONFIG, { mode: 0o644 });
let agentCached;
for (let attempt = 1; attempt <= 3; attempt++) {
  agentCached = spawnSync(process.execPath, [...AGENT_NODE_FLAGS, join(root, 'scripts', 'vendor-cache.mjs'), out, '--agent'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeout: STEP_LIMIT_MS,
  });
  if (agentCached.status === 0 || !agentCached.stderr?.toString().includes('EADDRINUSE')) break;
}
const agentLog = `${agentCached.stdout?.toString() ?? ''}${agentCached.stderr?.toString() ?? agentCached.error ?? ''}`;
if (agentCached.status !== 0) throw new Error(`making the agent code cache failed (${why(agentCached)}):\n${agentLog}`);
// A CLI command that failed left the caches as they were (exec --help's, or the exec's): said, not fatal.
if (/the CLI's caches stay without|starts from the cache of all commands/.test(agentCached.stderr?.toString() ?? '')) process.stderr.write(agentLog);
// The dashboard's page and uPlot, in ./assets beside the CLI (scheduler/ui/assets.ts reads
// them relative to its own module).
cpSync(join(root, 'scheduler', 'ui', 'assets'), join(out, 'assets'), { recursive: true });
for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) cpSync(join(root, 'node_modules', 'uplot', 'dist', f), join(out, 'assets', 'vendor', f));

if (process.argv.includes('--analyze')) {
  for (const r of results) {
    for (const [file, o] of Object.entries(r.metafile.outputs)) {
      if (file.endsWith('.map')) continue;
      const byPkg = new Map();
      for (const [input, v] of Object.entries(o.inputs)) {
        const pkg = packageOf(input);
        byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + v.bytesInOutput);
      }
      const top = [...byPkg]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([k, b]) => `${k} ${(b / 1024).toFixed(0)}k`);
      const staticImports = o.imports.filter((i) => i.kind === 'import-statement' && !i.external).map((i) => i.path.split('/').pop());
      console.log(
        `${file.replace(`${root}/`, '')} ${(o.bytes / 1024).toFixed(0)}k: ${top.join(', ')}${staticImports.length ? ` | imports ${staticImports.join(' ')}` : ''}`,
      );
    }
  }
}
