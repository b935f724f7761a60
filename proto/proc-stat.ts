/**
 * Whether a process lives, and its start time from /proc: the agent (its journal, launcher and
 * warm pool) and the CLI's fleet lock tell a live process from a later one with the same pid by
 * it; the embedded redis-server's users and lock are counted by the first. A ProcessMark (pid,
 * start time, boot id) names a process in a file: claims (claim-file.ts) and the dashboard's
 * URL file.
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
  const state = procState(pid);
  return state !== undefined && !ENDED.has(state);
}

/** The states of a process that has exited (a zombie waiting to be reaped, or dead). */
const ENDED = new Set(['Z', 'X', 'x', '']);

/** The state letter of `pid` in /proc/<pid>/stat, or undefined when it cannot be read. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return undefined;
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

/** A process, told from a later one with the same pid by its start time and the boot's id. */
export interface ProcessMark {
  pid: number;
  /** Clock ticks since boot (/proc/<pid>/stat). */
  start?: string | undefined;
  boot?: string | undefined;
}

/** This boot's id (a pid and start time recorded before a reboot name no process of this one). */
function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The mark of process `pid` (this one by default), as it runs now. */
export function processMark(pid: number = process.pid): ProcessMark {
  const ticks = processStartTicks(pid);
  return { pid, start: ticks === 0 ? undefined : String(ticks), boot: bootId() };
}

/** `m` read back from JSON, or undefined when it is not one. */
export function asProcessMark(m: unknown): ProcessMark | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const { pid, start, boot } = m as Record<string, unknown>;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, start: typeof start === 'string' ? start : undefined, boot: typeof boot === 'string' ? boot : undefined };
}

/** Whether the process `m` marks still runs (the same pid after a reboot, or a later process's, does not). */
export function processLives(m: ProcessMark): boolean {
  if (!pidAlive(m.pid)) return false;
  // An exited process its parent has not reaped yet holds nothing (kill(pid, 0) still succeeds).
  const state = procState(m.pid);
  if (state !== undefined && ENDED.has(state)) return false;
  if (m.boot !== undefined && m.boot !== bootId()) return false;
  if (m.start === undefined) return true;
  const now = processStartTicks(m.pid);
  return now !== 0 && String(now) === m.start;
}
