/**
 * Descriptors a process was started with beyond stdin, stdout and stderr: whatever started it
 * left them open (a shell's, a CI runner's, make's jobserver pipes; `gaxx spawn --provider
 * local` passes on those of the operator's shell). Node marks the low ones close-on-exec as it
 * starts (libuv's uv_disable_stdio_inheritance: fds 0 to 15, and on while they are open), so
 * those reach no child; one further up (a shell's fd 40, say) stays inheritable and would reach
 * every task: the launcher is the agent's child and tasks are the launcher's, and neither bwrap
 * nor prlimit closes it. The agent and the launcher close those first thing (nothing of theirs is
 * read later). The CLI must keep them: they may be the user's (`--tasks <(cmd)` is /dev/fd/63);
 * it starts the children that outlive it (the embedded redis-server, local agents) without them
 * instead (spawn-detached.ts). Node opens its own descriptors close-on-exec, so one without that
 * flag is an inherited one.
 */
import { closeSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;
const FDINFO = '/proc/self/fdinfo';

/** Whether descriptor `fd` is open without close-on-exec (flags in octal in /proc/self/fdinfo). */
function inheritable(fd: number): boolean {
  try {
    const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`${FDINFO}/${fd}`, 'utf8'))?.[1];
    return flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0;
  } catch {
    // Closed meanwhile (the directory listing's own descriptor).
    return false;
  }
}

/**
 * The descriptors from `from` (3: all but stdio) up that are open without close-on-exec, in
 * order. None where /proc is not mounted.
 */
export function inheritedFds(from = 3): number[] {
  let names: string[];
  try {
    names = readdirSync(FDINFO);
  } catch {
    return [];
  }
  return names
    .map(Number)
    .filter((n) => Number.isInteger(n) && n >= from && inheritable(n))
    .sort((a, b) => a - b);
}

/** Closes every descriptor inheritedFds(from) names; returns their numbers. */
export function closeInheritedFds(from = 3): number[] {
  const closed: number[] = [];
  for (const fd of inheritedFds(from)) {
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      // gone already
    }
  }
  return closed;
}
