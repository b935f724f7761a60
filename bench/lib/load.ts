/**
 * Load generators shared by every bench section: a sequential loop that records each
 * operation's latency, and a fixed number of operations kept N in flight. Both are bounded by
 * their counts; an operation that fails fails the run (a bench of errors measures nothing).
 * CPU per operation is sampled for this process and, when given, for another pid (the agent),
 * because on a shared machine CPU time is steadier than wall time.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** One operation of a section (one Exec, one spawn, one unary call). */
export type Op = () => Promise<void>;

export interface LatencyStats {
  n: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

export interface ThroughputPoint {
  inFlight: number;
  ops: number;
  seconds: number;
  perSecond: number;
  /** CPU of the bench process per operation, µs. */
  benchCpuUs: number;
  /** CPU of the observed process (the agent) per operation, µs; null when none is observed. */
  agentCpuUs: number | null;
}

/** The value at quantile q (0..1) of sorted values, nearest rank. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

/** Runs `op` `n` times one after another; per-operation latency stats. */
export async function sequential(op: Op, n: number): Promise<LatencyStats> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await op();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return {
    n,
    p50Ms: quantile(ms, 0.5),
    p99Ms: quantile(ms, 0.99),
    meanMs: ms.reduce((s, v) => s + v, 0) / n,
    maxMs: ms[ms.length - 1] ?? NaN,
  };
}

/** Runs `op` `total` times with `inFlight` workers, each starting its next op when one ends. */
export async function inFlight(op: Op, total: number, inFlightCount: number, observedPid?: number): Promise<ThroughputPoint> {
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      await op();
    }
  };
  const cpu0 = process.cpuUsage();
  const agent0 = observedPid === undefined ? undefined : processCpuUs(observedPid);
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(inFlightCount, total) }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const agent1 = observedPid === undefined ? undefined : processCpuUs(observedPid);
  return {
    inFlight: inFlightCount,
    ops: total,
    seconds,
    perSecond: total / seconds,
    benchCpuUs: (cpu.user + cpu.system) / total,
    agentCpuUs: agent0 === undefined || agent1 === undefined ? null : (agent1 - agent0) / total,
  };
}

let ticksPerSecond: number | undefined;

/** User+system CPU of `pid` itself (not its children) in µs, from /proc; undefined when unreadable. */
export function processCpuUs(pid: number): number | undefined {
  try {
    ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1e6) / ticksPerSecond : undefined;
  } catch {
    return undefined;
  }
}
