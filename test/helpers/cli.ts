/**
 * The gaxx CLI the tests run: the package's `gaxx` bin (the bundle, dist/bundle/gaxx.mjs), as
 * users run it. GAXX_TEST_CLI=tsc runs the tsc build (dist/cli/main.js) instead.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { repoRoot } from './agent.js';

/** Absolute path of a bin named in package.json. */
export function packageBin(name: 'gaxx' | 'gaxx-agent'): string {
  const root = repoRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  return resolve(root, pkg.bin[name] as string);
}

/** The CLI entry for `node <CLI_MAIN> ...` in tests. */
export const CLI_MAIN = process.env.GAXX_TEST_CLI === 'tsc' ? join(repoRoot(), 'dist', 'cli', 'main.js') : packageBin('gaxx');
