/**
 * Whether a process lives, and its start time from /proc: the agent (its journal, launcher and
 * warm pool) and the CLI's fleet lock tell a live process from a later one with the same pid by
 * it; the embedded redis-server's users and lock are counted by the first.
 */
import { readFileSync } from 'node:fs';

/** The start time of `pid` in clock ticks since boot, or 0 when it is gone (Linux /proc). */
export function processStartTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]) || 0;
  } catch {
    return 0;
  }
}

/**
 * Whether `pid` is still running: not gone and not a zombie (exited, waiting to be reaped), by
 * its state in /proc/<pid>/stat. A signal sent to a zombie reaches nothing; kill() succeeds all
 * the same, so only this tells the two apart.
 */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X' && state !== 'x' && state !== '';
  } catch {
    return false;
  }
}

/** Whether `pid` lives (signal 0); a process of another user does too (EPERM). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
