/**
 * Runs the built CLI (`node dist/cli/main.js`, so run `npm run build` first) the way a user does:
 * its own process, a throw-away GAXX_HOME, PATH and nothing else of our environment unless asked.
 */
import { execFile, type ExecFileOptions } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './agent.js';

export const CLI_MAIN = join(repoRoot(), 'dist', 'cli', 'main.js');

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
    child.stdin?.end(o.input ?? '');
  });
}
