/**
 * The CLI run in-process (runCli) with captured stdout and stderr, no config file, and a home
 * that does not exist: for unit tests of what a command line is answered with.
 */
import { PassThrough } from 'node:stream';
import { runCli } from '../../cli/dispatch.js';

export interface CliOptions {
  /** Default: GAXX_HOME pointing nowhere. */
  env?: Record<string, string>;
  /** Counts how often the CLI asked for the user's name and home directory. */
  reads?: { userName: number; homeDir: number };
  /** The bytes of argv's words as a process would have got them (main.ts reads /proc/self/cmdline). */
  argvBytes?: () => readonly Buffer[] | undefined;
}

/** Runs `argv`; resolves to the exit code and what was written to stdout and stderr. */
export async function cliInProcess(argv: string[], opts: CliOptions = {}): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const text = { out: '', err: '' };
  stdout.on('data', (d: Buffer) => (text.out += d.toString()));
  stderr.on('data', (d: Buffer) => (text.err += d.toString()));
  const reads = opts.reads;
  const code = await runCli({
    argv,
    env: opts.env ?? { GAXX_HOME: '/nonexistent-gaxx-home' },
    io: { stdout, stderr, stderrLive: false },
    readFile: () => undefined,
    get homeDir() {
      if (reads) reads.homeDir += 1;
      return '/nonexistent';
    },
    get userName() {
      if (reads) reads.userName += 1;
      return 'u';
    },
    cwd: '/',
    ...(opts.argvBytes ? { argvBytes: opts.argvBytes } : {}),
    signal: new AbortController().signal,
  });
  return { code, ...text };
}
