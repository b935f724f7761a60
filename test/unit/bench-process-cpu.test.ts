// bench/lib/process-cpu: per-process CPU to ns precision, and the sums per group between two samples.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { groupCpuBetween, processCpuMs, processSchedMs, sampleGroups, schedOf, schedPer } from '../../bench/lib/process-cpu.js';

describe('bench process CPU', () => {
  it('counts what a process in both samples ran in between, all of a new one, and nothing of one that left', () => {
    const before = new Map([
      [1, { group: 'agents', cpuMs: 100 }],
      [2, { group: 'agents', cpuMs: 50 }],
      [3, { group: 'daemon', cpuMs: 10 }],
      [4, { group: 'launchers', cpuMs: 70 }],
    ]);
    const after = new Map([
      [1, { group: 'agents', cpuMs: 112.5 }],
      [2, { group: 'agents', cpuMs: 50 }],
      [3, { group: 'daemon', cpuMs: 14 }],
      // A new process (or a pid reused by another group's) counts all it ran.
      [5, { group: 'launchers', cpuMs: 3 }],
    ]);
    expect(Object.fromEntries(groupCpuBetween(before, after))).toEqual({ agents: 12.5, daemon: 4, launchers: 3 });
  });

  it("measures this process's threads, and finds it by its command line", () => {
    const t0 = processCpuMs(process.pid);
    const u0 = process.cpuUsage();
    let x = 0;
    while (process.cpuUsage(u0).user < 30_000) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    // At least the 30 ms of user time just spent (schedstat also counts system time and other threads).
    expect(processCpuMs(process.pid) - t0).toBeGreaterThanOrEqual(25);
    expect(processCpuMs(2 ** 30)).toBe(0);
    const seen = sampleGroups((_cmd, pid) => (pid === process.pid ? 'me' : undefined));
    expect([...seen.keys()]).toEqual([process.pid]);
    expect(seen.get(process.pid)?.group).toBe('me');
  });

  it("splits a process's time into on a CPU and runnable but waiting for one; per run between two samples", async () => {
    const first = processSchedMs(process.pid);
    expect(first?.cpuMs).toBeGreaterThan(0);
    expect(first?.waitMs).toBeGreaterThanOrEqual(0);
    expect(processSchedMs(2 ** 30)).toBeUndefined();
    // As many busy processes as there are cores, beside this busy one: someone waits for a CPU.
    const spinners = Array.from({ length: availableParallelism() }, () =>
      spawn(process.execPath, ['-e', 'const end = Date.now() + 400; while (Date.now() < end);']),
    );
    try {
      const pids: Record<string, number | undefined> = { me: process.pid, none: undefined };
      spinners.forEach((c, i) => (pids[`spinner${i}`] = c.pid));
      const before = schedOf(pids);
      const end = Date.now() + 300;
      let x = 0;
      while (Date.now() < end) x += Math.sqrt(x + 1);
      expect(x).toBeGreaterThan(0);
      const per = schedPer(before, schedOf(pids), 2);
      expect(per.none).toEqual({ cpuMs: 0, waitMs: 0 });
      expect(per.me?.cpuMs).toBeGreaterThan(0);
      // One more spinning process than cores: their waits add up to more than nothing.
      expect(Object.values(per).reduce((n, x) => n + x.waitMs, 0)).toBeGreaterThan(0);
    } finally {
      await Promise.all(spinners.map((c) => new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once('exit', r)))));
    }
    expect(schedPer({ p: { cpuMs: 10, waitMs: 4 } }, { p: { cpuMs: 30, waitMs: 10 } }, 4)).toEqual({ p: { cpuMs: 5, waitMs: 1.5 } });
  });
});
