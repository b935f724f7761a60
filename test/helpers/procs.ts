/**
 * Host processes by command line, for tests of what a task leaves behind. Tasks run in their own
 * PID namespace, so the pids they print are not host pids: tests give each process a unique
 * marker argument (e.g. `sleep 300.1234`) and look it up here.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { pidAlive } from '../../proto/index.js';
import { eventually } from './poll.js';

/** Whether process `pid` exists (signal 0; a process of another user is there too: EPERM). */
export const alive = pidAlive;

/**
 * The fields of `/proc/PID/stat` after the command name: `[0]` the state (`Z` a zombie), `[1]` the
 * parent's pid, and so on (proc(5) numbers them from 3); undefined when the process is gone.
 */
export function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Pids of every process, from /proc (as text, the way /proc names them). */
export function allPids(): string[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e));
}

/**
 * Host pids of live (non-zombie) processes with `marker` as one whole argument (`sleep <marker>`),
 * or with `anywhere`, anywhere in their command line. A whole argument is the process a test
 * counts: the shell whose script starts that sleep holds the marker inside its `-c` script, and so
 * does a child it forked until that child execs. Anywhere is what must be gone after a task.
 */
export function pidsWith(marker: string, anywhere = false): number[] {
  const out: number[] = [];
  for (const e of allPids()) {
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (anywhere ? !argv.some((a) => a.includes(marker)) : !argv.includes(marker)) continue;
    } catch {
      continue; // gone meanwhile
    }
    const state = statFields(e)?.[0];
    if (state !== undefined && state !== 'Z') out.push(Number(e));
  }
  return out;
}

/**
 * Waits until at least `count` processes carry `marker` (they start a moment after whatever
 * announced them: a fork, then an exec) or `ms` passed; how many it last saw. The count is taken
 * once per look, so what is returned is a number that was true at one moment.
 */
export async function awaitPidsWith(marker: string, count: number, ms = 45_000): Promise<number> {
  let seen = 0;
  await eventually(() => (seen = pidsWith(marker).length) >= count, ms, 20);
  return seen;
}

/** Whether `pid` is gone, or a zombie nobody reaped yet. */
export function deadOrZombie(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state === undefined || state === 'Z';
}

/** Pids of the children of `parent` (zombies included). */
export function childPids(parent: number): number[] {
  return allPids()
    .filter((e) => statFields(e)?.[1] === String(parent))
    .map(Number);
}

/**
 * True once no process has `marker` anywhere in its command line (a shell that was to start the
 * marked sleep too), looking for up to `ms` (a killed process takes a moment to go).
 */
export async function noneLeft(marker: string, ms = 5000): Promise<boolean> {
  return eventually(() => pidsWith(marker, true).length === 0, ms, 25);
}

/** A unique `sleep` duration to mark a process (seconds, long enough to outlive any test). */
export function sleepMarker(): string {
  return `${300 + Math.floor(Math.random() * 600)}.${process.pid}${Math.floor(Math.random() * 1e6)}`;
}

/** `stdio` with descriptor `ours` as the child's fd `theirs` for each pair (the fds between are not open). */
export function withInherited(
  stdio: Array<'ignore' | 'pipe' | 'inherit' | number>,
  fds: Array<[number, number]> = [],
): Array<'ignore' | 'pipe' | 'inherit' | number> {
  const all: Array<'ignore' | 'pipe' | 'inherit' | number> = [...stdio];
  for (const [theirs, ours] of fds) {
    while (all.length < theirs) all.push('ignore');
    all[theirs] = ours;
  }
  return all;
}

/** The fds of process `pid` open on `path` (none once it is gone). */
export function fdsOn(pid: number, path: string): number[] {
  const fds: number[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return fds;
  }
  for (const fd of names) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === path) fds.push(Number(fd));
    } catch {
      // closed meanwhile
    }
  }
  return fds;
}

/**
 * `file args` as a command that gets SIGTERM (or `signal`) when the test process that starts it dies, however
 * it dies (a SIGKILLed test runner left its agents, redis-servers and test hosts running for
 * good, as orphans): setpriv(1) sets the parent-death signal, then execs the command (same pid).
 * As it was where setpriv is missing.
 */
export function dyingWithTest(file: string, args: readonly string[], signal: 'TERM' | 'KILL' = 'TERM'): [string, string[]] {
  setpriv ??= ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? '';
  return setpriv ? [setpriv, ['--pdeathsig', signal, '--', file, ...args]] : [file, [...args]];
}

let setpriv: string | undefined;
