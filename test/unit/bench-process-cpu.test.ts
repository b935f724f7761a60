// bench/lib/process-cpu: per-process CPU to ns precision, and the sums per group between two samples.
import { describe, expect, it } from 'vitest';
import { groupCpuBetween, processCpuMs, sampleGroups } from '../../bench/lib/process-cpu.js';

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
});
