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
 * What every thread of `pid` has spent so far, in ms: on a CPU, and runnable but waiting for one
 * (in a run queue: woken, not yet running; schedstat's second field). Undefined when the process
 * is gone or the kernel keeps no schedstat.
 */
export function processSchedMs(pid: number): { cpuMs: number; waitMs: number } | undefined {
  let cpu = 0;
  let wait = 0;
  let read = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  for (const tid of tids) {
    try {
      const [onCpu = '0', waiting = '0'] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      cpu += Number(onCpu);
      wait += Number(waiting);
      read++;
    } catch {
      // The thread ended meanwhile (or there is no schedstat).
    }
  }
  return read > 0 ? { cpuMs: cpu / 1e6, waitMs: wait / 1e6 } : undefined;
}

/**
 * CPU ms every thread of `pid` has run so far; 0 when it is gone. From a kernel without
 * schedstat, the process's user and system ticks (load.ts processCpuUs).
 */
export function processCpuMs(pid: number): number {
  return processSchedMs(pid)?.cpuMs ?? (processCpuUs(pid) ?? 0) / 1000;
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

/** processSchedMs of several named processes (those gone or unknown count 0). */
export function schedOf(pids: Readonly<Record<string, number | undefined>>): Record<string, { cpuMs: number; waitMs: number }> {
  return Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, (pid !== undefined ? processSchedMs(pid) : undefined) ?? { cpuMs: 0, waitMs: 0 }]),
  );
}

/** What each process of `before` spent between it and `after`, divided by `n` (per run). */
export function schedPer(
  before: Readonly<Record<string, { cpuMs: number; waitMs: number }>>,
  after: Readonly<Record<string, { cpuMs: number; waitMs: number }>>,
  n: number,
): Record<string, { cpuMs: number; waitMs: number }> {
  return Object.fromEntries(
    Object.entries(before).map(([name, b]) => {
      const a = after[name] ?? b;
      return [name, { cpuMs: Math.max(0, a.cpuMs - b.cpuMs) / n, waitMs: Math.max(0, a.waitMs - b.waitMs) / n }];
    }),
  );
}

/** An agent's task launcher (its child running gaxx-launcher), or undefined (no such child, or the agent is gone). */
export function launcherOf(agentPid: number): number | undefined {
  let kids: number[];
  try {
    kids = readFileSync(`/proc/${agentPid}/task/${agentPid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return undefined;
  }
  return kids.find((k) => {
    try {
      return readFileSync(`/proc/${k}/cmdline`, 'utf8').includes('gaxx-launcher');
    } catch {
      return false; // gone meanwhile
    }
  });
}
