/**
 * Runs the built CLI the way a user does: its own process, a throw-away GAXX_HOME, PATH and
 * nothing else of our environment unless asked. The CLI is the package's `gaxx` bin (the bundle,
 * dist/bundle/gaxx.mjs; run `npm run build` first); GAXX_TEST_CLI=tsc runs the tsc build
 * (dist/cli/main.js) instead.
 */
import { execFile, type ExecFileOptions } from 'node:child_process';
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

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunGaxxOptions {
  /** GAXX_HOME; omitted when undefined (the env may set it, or the test relies on XDG). */
  home?: string | undefined;
  env?: Record<string, string>;
  /** Written to the CLI's stdin, then closed; default: stdin closed at once. */
  input?: string | Buffer;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs `gaxx ARGS`; resolves with its exit code and output (never rejects on a non-zero exit). */
export function runGaxx(args: readonly string[], o: RunGaxxOptions = {}): Promise<CliRun> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(o.home ? { GAXX_HOME: o.home } : {}), ...o.env };
  const opts: ExecFileOptions = { env, maxBuffer: 64 * 1024 * 1024, ...(o.cwd ? { cwd: o.cwd } : {}), ...(o.timeoutMs ? { timeout: o.timeoutMs } : {}) };
  return new Promise((done) => {
    const child = execFile(process.execPath, [CLI_MAIN, ...args], opts, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      done({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    // The CLI may stop reading early (input over a limit, --no-stdin): EPIPE here is expected.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(o.input ?? '');
  });
}
