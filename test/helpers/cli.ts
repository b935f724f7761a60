/**
 * Runs the built CLI the way a user does: its own process, with the Node flags of the bin's #!
 * line, a throw-away GAXX_HOME, PATH and nothing else of our environment unless asked. The CLI
 * is the package's `gaxx` bin (the bundle, dist/bundle/gaxx.cjs; run `npm run build` first);
 * GAXX_TEST_CLI=tsc runs the tsc build (dist/cli/main.js) instead. The one place tests start the CLI: `runGaxx` for a command that
 * ends on its own, `spawnGaxx` for one the test talks to while it runs (reads its lines, signals it).
 */
import { execFile, spawn, type ChildProcess, type ExecFileOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { repoRoot } from './agent.js';
import { dyingWithTest, withInherited } from './procs.js';

/** Absolute path of a bin named in package.json. */
export function packageBin(name: 'gaxx' | 'gaxx-agent'): string {
  const root = repoRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  return resolve(root, pkg.bin[name] as string);
}

/** The CLI entry for `node <CLI_MAIN> ...` in tests. */
export const CLI_MAIN = process.env.GAXX_TEST_CLI === 'tsc' ? join(repoRoot(), 'dist', 'cli', 'main.js') : packageBin('gaxx');

const flagsOf = new Map<string, string[]>();

/**
 * The Node flags of `entry`'s #! line (`#!/usr/bin/env -S node FLAGS`), which a shell running the
 * installed bin starts Node with (--use-openssl-ca: without it the CLI's first TLS context builds
 * Node's own root store, about 20 ms); none for an entry without one (the tsc build).
 */
export function entryNodeFlags(entry: string): string[] {
  let flags = flagsOf.get(entry);
  if (!flags) {
    const head = Buffer.alloc(256);
    const fd = openSync(entry, 'r');
    let n: number;
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
    const m = /^#!\/usr\/bin\/env -S node((?: [^ \n]+)*)\n/.exec(head.subarray(0, n).toString('latin1'));
    flags = m ? (m[1] as string).split(' ').filter(Boolean) : [];
    flagsOf.set(entry, flags);
  }
  return flags;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as the bytes the CLI wrote (binary output). */
  stdoutBytes: Buffer;
}

export interface RunGaxxOptions {
  /** GAXX_HOME; omitted when undefined (the env may set it, or the test relies on XDG). */
  home?: string | undefined;
  env?: Record<string, string>;
  /** Written to the CLI's stdin, then closed; default: stdin closed at once. */
  input?: string | Buffer;
  cwd?: string;
  timeoutMs?: number;
  /** The signal that ends it after timeoutMs (default SIGTERM; SIGKILL for one that may hear none, as a busy loop). */
  killSignal?: NodeJS.Signals;
  /** Run as this user (root ignores file modes; a test of a permission problem runs as nobody). */
  user?: { uid: number; gid: number };
  /** The CLI entry to run (default CLI_MAIN), e.g. the other build. */
  main?: string;
  /** Node flags before the entry (e.g. `--import` of a preload). */
  nodeArgs?: string[];
  /** Execute the entry itself, as a shell runs the installed `gaxx` (its #! line picks Node and its flags). */
  asBin?: boolean;
  /**
   * Shell redirections the CLI runs with (`>/dev/full`, `2>/dev/full`, `1</dev/null`): a stream
   * redirected is not captured (its text here is empty).
   */
  redirect?: string;
}

/** The environment the CLI gets: PATH, GAXX_HOME when given, and `env`. */
export function gaxxEnv(o: Pick<RunGaxxOptions, 'home' | 'env'> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(o.home ? { GAXX_HOME: o.home } : {}), ...o.env };
}

/** A POSIX sh script that execs `words` with their exact bytes (each made by printf from octal escapes). */
function execScript(words: readonly (string | Buffer)[]): string {
  const set = words.map((w, i) => {
    const octal = [...Buffer.from(w)].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
    // The x keeps a last newline from being dropped by $(...).
    return `w${i}="$(printf '${octal}x')"; w${i}="\${w${i}%x}"`;
  });
  return `${set.join('\n')}\nexec ${words.map((_, i) => `"$w${i}"`).join(' ')}`;
}

/**
 * Runs `gaxx ARGS`; resolves with its exit code and output (never rejects on a non-zero exit).
 * An argument given as a Buffer reaches the CLI as those bytes (UTF-8 or not), through sh's exec:
 * Node itself passes only strings, as UTF-8.
 */
export function runGaxx(args: readonly (string | Buffer)[], o: RunGaxxOptions = {}): Promise<CliRun> {
  const opts: ExecFileOptions & { encoding: 'buffer' } = {
    env: gaxxEnv(o),
    encoding: 'buffer',
    maxBuffer: 256 * 1024 * 1024,
    ...(o.cwd ? { cwd: o.cwd } : {}),
    ...(o.timeoutMs ? { timeout: o.timeoutMs } : {}),
    ...(o.killSignal ? { killSignal: o.killSignal } : {}),
    ...o.user,
  };
  return new Promise((done) => {
    if (o.asBin && o.nodeArgs) throw new Error('runGaxx: asBin runs the entry as it is: pass Node flags in NODE_OPTIONS');
    const entry = o.main ?? CLI_MAIN;
    const [program, words] = o.asBin ? [entry, args] : [process.execPath, [...entryNodeFlags(entry), ...(o.nodeArgs ?? []), entry, ...args]];
    const bytes = words.some((a) => typeof a !== 'string');
    // Buffers reach the CLI as their bytes through sh's exec; a redirect is sh's too.
    const [file, argv] = bytes
      ? ['/bin/sh', ['-c', `${execScript([program, ...words])} ${o.redirect ?? ''}`]]
      : o.redirect === undefined
        ? [program, words as string[]]
        : ['sh', ['-c', `exec "$@" ${o.redirect}`, 'sh', program, ...(words as string[])]];
    const child = execFile(file, argv, opts, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      done({ code, stdout: stdout.toString(), stderr: stderr.toString(), stdoutBytes: stdout });
    });
    // The CLI may stop reading early (input over a limit, --no-stdin): EPIPE here is expected.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(o.input ?? '');
  });
}

export interface SpawnGaxxOptions extends Pick<RunGaxxOptions, 'home' | 'env' | 'cwd' | 'user' | 'main' | 'nodeArgs'> {
  /** stdin: 'ignore' (default: /dev/null, as a service or a benchmark runs a command) or 'pipe' (the test writes `child.stdin`; the default with `terminal`). */
  stdin?: 'ignore' | 'pipe';
  /** Run under script(1): the CLI gets a pseudo-terminal as stdin and stdout, as in a shell. */
  terminal?: boolean;
  /** Descriptors of ours the CLI is started with, as [its fd, ours] (`exec 40<file` in a shell; `--tasks <(cmd)`). */
  fds?: Array<[number, number]>;
}

/** How a spawned CLI ended, with all it printed. */
export interface GaxxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A `gaxx` process the test talks to while it runs. */
export interface GaxxProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything printed so far. */
  stdout(): string;
  stderr(): string;
  /**
   * The first whole line of `stream` that `match` accepts (printed before or after the call).
   * Rejects when the CLI exits without printing one, or after `timeoutMs` (a deadline, default 60 s).
   */
  line(stream: 'stdout' | 'stderr', match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
  /** Resolves when the process has exited. */
  done: Promise<GaxxExit>;
}

const live = new Set<ChildProcess>();

/** Starts `gaxx ARGS` as a child process; stop it, or call stopAllGaxx() in afterAll. */
export function spawnGaxx(args: readonly string[], o: SpawnGaxxOptions = {}): GaxxProcess {
  const entry = o.main ?? CLI_MAIN;
  const argv = [process.execPath, ...entryNodeFlags(entry), ...(o.nodeArgs ?? []), entry, ...args];
  // script(1) runs one shell command line: quote each word.
  const [file, fileArgs] = o.terminal
    ? ['script', ['-qec', argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), '/dev/null']]
    : [argv[0] as string, argv.slice(1)];
  const child = spawn(...dyingWithTest(file, fileArgs), {
    env: gaxxEnv(o),
    stdio: withInherited([o.stdin ?? (o.terminal ? 'pipe' : 'ignore'), 'pipe', 'pipe'], o.fds),
    ...(o.cwd ? { cwd: o.cwd } : {}),
    ...o.user,
  });
  live.add(child);
  const text = { stdout: '', stderr: '' };
  child.stdout?.on('data', (b: Buffer) => (text.stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (text.stderr += b.toString()));
  child.stdin?.on('error', () => undefined);
  const done = new Promise<GaxxExit>((r) =>
    child.once('close', (code, signal) => {
      live.delete(child);
      r({ code, signal, ...text });
    }),
  );
  const line = (stream: 'stdout' | 'stderr', match: (l: string) => boolean, timeoutMs = 60_000): Promise<string> =>
    new Promise((found, fail) => {
      const find = (): string | undefined => text[stream].split('\n').slice(0, -1).find(match);
      const check = (): void => {
        const l = find();
        if (l === undefined) return;
        stop();
        found(l);
      };
      const timer = setTimeout(() => (stop(), fail(new Error(`no such line from gaxx ${args.join(' ')} in ${timeoutMs} ms: ${text[stream]}`))), timeoutMs);
      const stop = (): void => {
        clearTimeout(timer);
        child[stream]?.off('data', onData);
      };
      // Checked after this chunk was appended (the listener above was added first).
      const onData = (): void => check();
      child[stream]?.on('data', onData);
      void done.then(() => {
        check();
        stop();
        fail(new Error(`gaxx ${args.join(' ')} exited before printing the line: ${text.stderr}`));
      });
      check();
    });
  return { child, pid: child.pid as number, stdout: () => text.stdout, stderr: () => text.stderr, line, kill: (s = 'SIGTERM') => child.kill(s), done };
}

/** SIGKILLs every CLI process started by spawnGaxx that still runs (afterAll). */
export async function stopAllGaxx(): Promise<void> {
  const all = [...live];
  for (const c of all) c.kill('SIGKILL');
  await Promise.all(all.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('close', r)))));
}

/** The JSON objects of `gaxx ... --json` output, one per line. */
export function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
