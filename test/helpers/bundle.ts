// The built bundle's files (dist/bundle), for tests that check what the build made.
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from './agent.js';

/** dist/bundle, where `npm run build` writes the bundles. */
export const bundleDir = join(repoRoot(), 'dist', 'bundle');

/**
 * Whether the build had a C compiler, as scripts/build-native.mjs picks it ($CC, else cc), and so
 * made gaxx-spawn.node, the launcher's vfork spawn (without one the build goes on without it).
 */
export const hasCompiler = spawnSync(process.env.CC || 'cc', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * The exports of a file of the bundle (the CLI's vendor files), loaded as the CLI loads them:
 * through vendor-load.cjs, since the build writes them in their CommonJS function wrapper, which
 * a plain require() would only evaluate.
 */
export function loadBundled<T>(name: string): T {
  const { loadVendor } = createRequire(join(bundleDir, 'index.cjs'))('./vendor-load.cjs') as { loadVendor(n: string): unknown };
  return loadVendor(name) as T;
}

/**
 * Runs `script` in a Node of its own with a bare environment, from a file (`probe.cjs` in `dir`:
 * `node -e` itself sets up node:crypto, and the test runner modules of its own), and returns what
 * it wrote to stdout, parsed as JSON. The script can call `loaded(name)`: whether Node has set up
 * its module `name` (e.g. 'zlib') in that process so far.
 */
export function probeInFreshNode<T>(dir: string, script: string): T {
  const probe = join(dir, 'probe.cjs');
  writeFileSync(probe, `const loaded = (m) => process.moduleLoadList.includes('NativeModule ' + m);\n${script}`);
  return JSON.parse(execFileSync(process.execPath, [probe], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })) as T;
}
