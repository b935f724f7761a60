/**
 * CPU time of live processes, grouped (the agents, their launchers, a daemon, redis-server), to
 * ns precision: the sum of each thread's time on a CPU (/proc/PID/task/TID/schedstat), not the
 * 10 ms ticks of /proc/PID/stat, which would round each of a hundred processes down by up to a
 * tick per sample (those ticks only where the kernel keeps no schedstat). Processes that ended
 * between two samples (a task's sandbox, reaped by its launcher) are not counted: compare the
 * groups' sum with machineCpu()'s busy time for the rest.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { processCpuUs } from './load.js';

/** Which group a process is in (by its command line and pid), or undefined for none. */
export type Classify = (cmdline: string, pid: number) => string | undefined;

/**
 * CPU ms every thread of `pid` has run so far; 0 when it is gone. From a kernel without
 * schedstat, the process's user and system ticks (load.ts processCpuUs).
 */
export function processCpuMs(pid: number): number {
  let ns = 0;
  let read = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      read++;
    } catch {
      // The thread ended meanwhile (or there is no schedstat).
    }
  }
  return read > 0 ? ns / 1e6 : (processCpuUs(pid) ?? 0) / 1000;
}

/** CPU ms per pid of every live process `classify` puts in a group, with its group. */
export function sampleGroups(classify: Classify): Map<number, { group: string; cpuMs: number }> {
  const out = new Map<number, { group: string; cpuMs: number }>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    const group = classify(cmdline, pid);
    if (group !== undefined) out.set(pid, { group, cpuMs: processCpuMs(pid) });
  }
  return out;
}

/**
 * CPU ms per group between two samples: a process in both counts its difference, one that
 * started in between counts all it ran.
 */
export function groupCpuBetween(
  before: ReadonlyMap<number, { group: string; cpuMs: number }>,
  after: ReadonlyMap<number, { group: string; cpuMs: number }>,
): Map<string, number> {
  const sums = new Map<string, number>();
  for (const [pid, a] of after) {
    const b = before.get(pid);
    const used = b && b.group === a.group ? a.cpuMs - b.cpuMs : a.cpuMs;
    sums.set(a.group, (sums.get(a.group) ?? 0) + Math.max(0, used));
  }
  return sums;
}
