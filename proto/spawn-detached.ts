/**
 * Starts a child that outlives this process (the embedded redis-server, a local agent) without
 * the descriptors this process was started with, and without taking them from this process.
 *
 * A descriptor above 15 that whatever started gaxx left open stays inheritable (see
 * inherited-fds.ts), and a detached child would keep it for its whole life: a pipe's write end
 * held there keeps the pipe's reader waiting for its end long after gaxx exited. Closing them
 * here is no answer: they may be the user's own (`--tasks <(cmd)` reads /dev/fd/63), and the CLI
 * that closed them before it started its redis-server then found no task list. A shell that
 * closes them and execs the program does not do either: dash (/bin/sh on Debian) takes only
 * descriptors 0 to 9 in a redirection. So the child gets /dev/null in each one's place (libuv
 * dup2s a stdio entry onto its number in the child before exec): it holds none of them, and this
 * process keeps all of its own.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { nodeChildProcess } from './builtins.js';
import { inheritedFds } from './inherited-fds.js';

/** What a child's fds 0 to 2 are: ignored (/dev/null) or one of this process's descriptors. */
export type DetachedStdio = ['ignore' | number, 'ignore' | number, 'ignore' | number];

/** spawn()'s options for a detached child, but stdio: its fds 0 to 2 only. */
export interface DetachedSpawnOptions extends Omit<SpawnOptions, 'stdio' | 'detached'> {
  stdio?: DetachedStdio;
}

/**
 * The stdio spawn() is given for `stdio` when this process holds the inheritable descriptors
 * `inherited` (each >= 3): `devNull` in each one's place, nothing else passed on.
 */
export function stdioWithout(stdio: DetachedStdio, inherited: number[], devNull: number): Array<'ignore' | number> {
  const all: Array<'ignore' | number> = [...stdio];
  for (const fd of inherited) {
    while (all.length < fd) all.push('ignore');
    all[fd] = devNull;
  }
  return all;
}

/**
 * spawn(file, args) detached (its own session, so it outlives this process and its terminal's
 * signals), holding none of this process's inheritable descriptors (see above). Call `unref()` on
 * the child as usual.
 */
export function spawnDetached(file: string, args: readonly string[], opts: DetachedSpawnOptions = {}): ChildProcess {
  const stdio: DetachedStdio = opts.stdio ?? ['ignore', 'ignore', 'ignore'];
  const inherited = belowLimit(inheritedFds());
  if (inherited.length === 0) return nodeChildProcess().spawn(file, args, { ...opts, stdio, detached: true });
  // Opened close-on-exec (as Node opens every file): it reaches the child only where dup2'd.
  const devNull = openSync('/dev/null', 'r');
  try {
    return nodeChildProcess().spawn(file, args, { ...opts, stdio: stdioWithout(stdio, inherited, devNull), detached: true });
  } finally {
    closeSync(devNull);
  }
}

/**
 * `fds` without those at or above this process's soft limit of open files (/proc/self/limits;
 * read only when there are any): one held from before a lower `ulimit -n` cannot be given a
 * number in the child (spawn fails with EINVAL: "internal error"), and is left to the child as it
 * is rather than the command refused.
 */
function belowLimit(fds: number[]): number[] {
  if (fds.length === 0) return fds;
  let soft: string | undefined;
  try {
    soft = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  } catch {
    return fds;
  }
  return soft === undefined ? fds : fds.filter((fd) => fd < Number(soft));
}
