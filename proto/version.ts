/**
 * The one lookup of gaxx's version: the package.json above a module file (the checkout, an npm
 * installation, or an installed agent bundle's own package.json). The CLI, the agent and the
 * agent installer read it the same way, so `gaxx --version` and an agent's reported version agree.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Package names whose package.json carries gaxx's version. */
const GAXX_PACKAGES: readonly string[] = ['gaxx', 'gaxx-agent'];

/**
 * The version in the nearest package.json above `fromFile` (at most `levels` directories up)
 * whose name is one of `names`; undefined when there is none. A package.json of another package
 * (a project gaxx sits in) is passed over.
 */
export function packageVersion(fromFile: string, names: readonly string[] = GAXX_PACKAGES, levels = 5): string | undefined {
  let dir = dirname(fromFile);
  for (let i = 0; i < levels; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name !== undefined && names.includes(pkg.name) && pkg.version) return pkg.version;
    } catch {
      // none here (or not JSON): look one level up
    }
    dir = dirname(dir);
  }
  return undefined;
}
