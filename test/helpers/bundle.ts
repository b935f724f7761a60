// The built bundle's files (dist/bundle), for tests that check what the build made.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from './agent.js';

/** dist/bundle, where `npm run build` writes the bundles. */
export const bundleDir = join(repoRoot(), 'dist', 'bundle');

/**
 * The exports of a file of the bundle (the CLI's vendor files), loaded as the CLI loads them:
 * through vendor-load.cjs, since the build writes them in their CommonJS function wrapper, which
 * a plain require() would only evaluate.
 */
export function loadBundled<T>(name: string): T {
  const { loadVendor } = createRequire(join(bundleDir, 'index.cjs'))('./vendor-load.cjs') as { loadVendor(n: string): unknown };
  return loadVendor(name) as T;
}
