/**
 * Where a `gaxx run`'s time and CPU go, for bench:fanout: the run's own moments (`--timings`:
 * gaxx loaded, Redis there, tasks enqueued, first and last result, done; medians) and the CPU
 * that each part of the machine spent on it (means per run): the CLI process, the agents, their
 * launchers, the daemon, redis-server, the whole machine (machineCpu) and what is left of it
 * (the tasks' sandboxes and commands, which the launchers reap; a redis-server started and
 * stopped within the run; the kernel's own work; anything else running). The machine's busy
 * time over its cores is the least wall time the run could have taken here.
 */
import { cpus } from 'node:os';
import { machineBusyMs } from './machine-cpu.js';
import { groupCpuBetween, sampleGroups, type Classify } from './process-cpu.js';
import { formatTable, median, pause, runMeasured, type TimedCommand } from './timing.js';

/** The process groups a breakdown reports, in its table's order (`classify` names them). */
export const GROUPS = ['agents', 'launchers', 'daemon', 'redis'] as const;
export type Group = (typeof GROUPS)[number];

/** The `--timings` moments a breakdown reports, as the JSON summary names them. */
const MOMENTS = [
  ['startedMs', 'loaded'],
  ['redisMs', 'redis'],
  ['enqueuedMs', 'enqueued'],
  ['firstResultMs', 'first'],
  ['lastResultMs', 'last'],
  ['doneMs', 'done'],
] as const;

export interface RunBreakdown {
  name: string;
  runs: number;
  /** Median of each moment, ms since the CLI started (NaN when no run reported it). */
  moments: Record<(typeof MOMENTS)[number][1], number>;
  /** Mean CPU ms per run: the CLI, each group, the machine, and the machine's rest. */
  cpu: Record<'cli' | Group | 'machine' | 'rest', number>;
  /** machine / cores: the least wall time the run's work takes here. */
  floorMs: number;
}

/** The `--timings` of a `gaxx run --json --timings`'s summary line. */
function timingsOf(stdout: string, name: string): Record<string, number> {
  const last = stdout.trimEnd().split('\n').pop() ?? '';
  let summary: { type?: string; timings?: Record<string, number> };
  try {
    summary = JSON.parse(last) as typeof summary;
  } catch {
    throw new Error(`${name}: no JSON summary at the end of its output: ${last.slice(0, 200)}`);
  }
  if (summary.type !== 'summary' || !summary.timings) throw new Error(`${name}: its summary has no timings (run with --json --timings)`);
  return summary.timings;
}

/**
 * Runs every command (a `gaxx run ... --json --timings`) `runs` times, taking turns as
 * timeCommands does, `gapMs` apart (untimed), and breaks each one's runs down.
 */
export function breakDownRuns(cmds: readonly TimedCommand[], runs: number, gapMs: number, classify: Classify): RunBreakdown[] {
  const moments = cmds.map(() => new Map<string, number[]>());
  const cpu = cmds.map(() => new Map<string, number>());
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  for (let i = 0; i < runs; i++) {
    cmds.forEach((c, j) => {
      pause(gapMs);
      const before = sampleGroups(classify);
      const busy0 = machineBusyMs();
      const r = runMeasured(c, { stdout: true });
      const busy = machineBusyMs() - busy0;
      const groups = groupCpuBetween(before, sampleGroups(classify));
      const sums = cpu[j] as Map<string, number>;
      add(sums, 'cli', r.cpuMs);
      add(sums, 'machine', busy);
      let known = r.cpuMs;
      for (const g of GROUPS) {
        add(sums, g, groups.get(g) ?? 0);
        known += groups.get(g) ?? 0;
      }
      add(sums, 'rest', busy - known);
      const t = timingsOf(r.stdout, c.name);
      for (const [key] of MOMENTS) if (typeof t[key] === 'number') moments[j]?.set(key, [...(moments[j]?.get(key) ?? []), t[key]]);
    });
  }
  return cmds.map((c, j) => {
    const sums = cpu[j] as Map<string, number>;
    const mean = (k: string) => (sums.get(k) ?? 0) / runs;
    const m = moments[j] as Map<string, number[]>;
    return {
      name: c.name,
      runs,
      moments: Object.fromEntries(MOMENTS.map(([key, label]) => [label, median(m.get(key) ?? [])])) as RunBreakdown['moments'],
      cpu: Object.fromEntries(['cli', ...GROUPS, 'machine', 'rest'].map((k) => [k, mean(k)])) as RunBreakdown['cpu'],
      floorMs: mean('machine') / cpus().length,
    };
  });
}

/** The two tables: the moments, then the CPU. */
export function formatBreakdowns(bs: readonly RunBreakdown[]): string {
  const n = bs[0]?.runs ?? 0;
  const ms = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(0));
  const moments = formatTable([
    ['what', ...MOMENTS.map(([, label]) => label)],
    ...bs.map((b) => [b.name, ...MOMENTS.map(([, label]) => ms(b.moments[label]))]),
  ]);
  const cores = cpus().length;
  const cpuRows = formatTable([
    ['what', 'cli', ...GROUPS, 'rest', 'machine', `/ ${cores} cores`],
    ...bs.map((b) => [b.name, ...(['cli', ...GROUPS, 'rest', 'machine'] as const).map((k) => ms(b.cpu[k])), ms(b.floorMs)]),
  ]);
  return (
    `where a run's time goes: ms since its CLI started (--timings), median of ${n}\n${moments}\n\n` +
    `where its CPU goes: ms per run, mean of ${n} (rest: the tasks' sandboxes and commands, a redis-server started for\n` +
    `the run alone, the kernel's own work; cli and machine count in 10 ms ticks, so rest is within ~20 ms;\n` +
    `machine / cores: the least wall time that work takes here)\n${cpuRows}`
  );
}
