#!/usr/bin/env node
// Bundles the CLI and the agent with esbuild (ESM, node20), after tsc:
//   dist/bundle/gaxx.mjs          the CLI; each command is a chunk beside it (dist/bundle/*.mjs),
//                                 imported when it runs, so --version/--help load ~nothing
//   dist/bundle/vendor-*.cjs      grpc-js and proto-loader for the CLI, one CommonJS file each:
//                                 proto/grpc-modules.cts require()s them on first use, and the
//                                 command chunks import the very same instances
//   dist/bundle/vendor-load.cjs  loads a vendor file with its V8 code cache (vendor-*.cjs.v8cache,
//                                 made here by scripts/vendor-cache.mjs)
//   dist/bundle/gaxx-agent.mjs    the agent's entry: a few lines that load gaxx-agent.cjs through
//                                 vendor-load.cjs, so that the agent, too, starts from a V8 code cache
//   dist/bundle/gaxx-agent.cjs    the agent as ONE CommonJS file in its function wrapper (no chunks,
//                                 no node_modules, no .proto files), with gaxx-agent.cjs.v8cache beside it (made here by
//                                 scripts/vendor-cache.mjs --agent): what bootstrap uploads and
//                                 local agents run, together with the entry and vendor-load.cjs
//   dist/bundle/gaxx-launcher.mjs the agent's task launcher (agent/exec/launcher-main.ts), one
//                                 small file installed and uploaded beside the agent
// Usage: node scripts/bundle.mjs [--analyze]   (--analyze prints each output's largest inputs)
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { createRequire } from 'node:module';
import { chmodSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'bundle');

// CommonJS packages inside an ESM bundle still call require() for Node built-ins and use
// __dirname; give them both.
const cjsShim = [
  "import { createRequire as __gaxxCreateRequire } from 'node:module';",
  "import { fileURLToPath as __gaxxFileURLToPath } from 'node:url';",
  "import { dirname as __gaxxDirname } from 'node:path';",
  'const require = __gaxxCreateRequire(import.meta.url);',
  'const __filename = __gaxxFileURLToPath(import.meta.url);',
  'const __dirname = __gaxxDirname(__filename);',
].join(' ');
// Node >= 22.1 caches V8's compiled code for the chunks a command imports; Node 20 has no such
// API for ES modules, so this is a no-op there.
const compileCache = "import * as __gaxxModule from 'node:module'; __gaxxModule.enableCompileCache?.();";
/** The agent's entry: the agent bundle, compiled with its code cache when that fits this Node. */
const AGENT_ENTRY = `#!/usr/bin/env node
// gaxx-agent: the agent is gaxx-agent.cjs beside this file; vendor-load.cjs compiles it with its
// V8 code cache (gaxx-agent.cjs.v8cache) when the cache was made from that very file by this
// Node version, and without it otherwise.
import { createRequire } from 'node:module';
createRequire(import.meta.url)('./vendor-load.cjs').loadVendor('gaxx-agent.cjs');
`;

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
 * Inside the CLI bundle every chunk imports from a chunk that holds proto/, so a bundled
 * grpc-js would be parsed on every start (~20 ms) even though only commands that talk to an
 * agent use it. Instead the CLI resolves these packages to vendor files beside the chunks.
 */
const VENDORED = { '@grpc/grpc-js': 'vendor-grpc-js.cjs', '@grpc/proto-loader': 'vendor-proto-loader.cjs' };
/**
 * Resolves the vendored packages (but `self`, the one being vendored) to their vendor files.
 * An ES `import` of a .cjs file makes Node scan the whole file for its export names (~60 ms for
 * grpc-js), so imports go through a one-line CommonJS module that require()s the vendor file:
 * Node then only compiles it.
 */
const vendored = (self) => ({
  name: 'vendored',
  setup(b) {
    b.onResolve({ filter: /^@grpc\/(grpc-js|proto-loader)$/ }, (a) => {
      if (a.path === self) return undefined;
      if (self !== undefined) return { path: `./${VENDORED[a.path]}`, external: true };
      return { path: a.path, namespace: 'vendor-require' };
    });
    b.onResolve({ filter: /^\.\/vendor-[\w-]+\.cjs$/ }, (a) => ({ path: a.path, external: true }));
    b.onLoad({ filter: /.*/, namespace: 'vendor-require' }, (a) => ({
      contents: `module.exports = require('./vendor-load.cjs').loadVendor('${VENDORED[a.path]}');\n`,
      loader: 'js',
    }));
  },
});

/**
 * One vendor file: the package as CommonJS, its export names spelled out so that Node finds
 * them when an ES module imports the file (esbuild adds the annotation Node's lexer reads).
 */
function vendor(pkg) {
  const names = Object.keys(createRequire(join(root, 'package.json'))(pkg)).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n) && n !== 'default');
  return build({
    ...common,
    stdin: { contents: `import * as m from '${pkg}';\nexport const { ${names.join(', ')} } = m;\n`, resolveDir: root, loader: 'js' },
    format: 'cjs',
    outfile: join(out, VENDORED[pkg]),
    plugins: [vendored(pkg)],
  });
}

rmSync(out, { recursive: true, force: true });
const results = await Promise.all([
  build({
    ...common,
    entryPoints: { gaxx: join(root, 'cli', 'main.ts') },
    outdir: out,
    splitting: true,
    // Chunks beside the entry, so that './vendor-*.cjs' names the same file from each of them.
    chunkNames: '[name]-[hash]',
    plugins: [vendored()],
    banner: { js: `${cjsShim} ${compileCache}` },
  }),
  build({
    ...common,
    // The task launcher, a small process of its own that the agent finds beside itself.
    entryPoints: { 'gaxx-launcher': join(root, 'agent', 'exec', 'launcher-main.ts') },
    outdir: out,
    banner: { js: cjsShim },
  }),
  // CommonJS, so that vendor-load.cjs can compile it with its code cache (Node 20 has none for ES
  // modules). import.meta.url is the file's own URL, as it was in the ES module.
  build({
    ...common,
    entryPoints: { 'gaxx-agent': join(root, 'agent', 'main.ts') },
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
    outdir: out,
    define: { 'import.meta.url': '__gaxxImportMetaUrl' },
    // The directive first: esbuild's own "use strict" comes after the banner.
    banner: { js: "'use strict'; const __gaxxImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  }),
  vendor('@grpc/grpc-js'),
  vendor('@grpc/proto-loader'),
]);
// The agent's file goes out in its CommonJS function wrapper (where agent/main.ts's #! line would
// be a syntax error), so that vendor-load.cjs compiles it as it is (see its wrapped()).
const agentCjs = join(out, 'gaxx-agent.cjs');
const { wrapped } = createRequire(import.meta.url)('./vendor-load.cjs');
writeFileSync(agentCjs, wrapped(readFileSync(agentCjs, 'utf8').replace(/^#!.*\n/, '')));
writeFileSync(join(out, 'gaxx-agent.mjs'), AGENT_ENTRY);
for (const bin of ['gaxx.mjs', 'gaxx-agent.mjs', 'gaxx-launcher.mjs']) chmodSync(join(out, bin), 0o755);
// The vendor files' loader and their V8 code caches (made by loading and using them once).
cpSync(join(root, 'scripts', 'vendor-load.cjs'), join(out, 'vendor-load.cjs'));
const cached = spawnSync(process.execPath, [join(root, 'scripts', 'vendor-cache.mjs'), out], { stdio: 'inherit' });
if (cached.status !== 0) throw new Error('making the vendor code caches failed');
// The agent's, by starting it once: with the environment agents run with (PATH) and no V8 flags,
// since V8 refuses a cache made under other V8 flags. It listens on a port found free just
// before, which another process may take in between: a start that finds it taken is tried again
// (3 times in all, each on a new port). Its log is shown only when it fails.
let agentCached;
for (let attempt = 1; attempt <= 3; attempt++) {
  agentCached = spawnSync(process.execPath, [join(root, 'scripts', 'vendor-cache.mjs'), out, '--agent'], {
    stdio: ['ignore', 'inherit', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeout: 120_000,
  });
  if (agentCached.status === 0 || !agentCached.stderr?.toString().includes('EADDRINUSE')) break;
}
if (agentCached.status !== 0) throw new Error(`making the agent code cache failed:\n${agentCached.stderr?.toString() ?? agentCached.error}`);
// The dashboard's page and uPlot, in ./assets beside the chunks (scheduler/ui/assets.ts reads
// them relative to its own module).
cpSync(join(root, 'scheduler', 'ui', 'assets'), join(out, 'assets'), { recursive: true });
for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) cpSync(join(root, 'node_modules', 'uplot', 'dist', f), join(out, 'assets', 'vendor', f));

if (process.argv.includes('--analyze')) {
  for (const r of results) {
    for (const [file, o] of Object.entries(r.metafile.outputs)) {
      if (file.endsWith('.map')) continue;
      const byPkg = new Map();
      for (const [input, v] of Object.entries(o.inputs)) {
        const m = input.match(/node_modules\/((@[^/]+\/)?[^/]+)/);
        const key = m ? m[1] : input.split('/')[0];
        byPkg.set(key, (byPkg.get(key) ?? 0) + v.bytesInOutput);
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
