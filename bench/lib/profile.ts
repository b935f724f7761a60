/**
 * The standard measurement profile every bench section applies to its operation: a warm-up
 * (connections, JIT, the agent's first task dirs), then sequential latency, then throughput at
 * each in-flight level. Counts are fixed by the plan, so a run is bounded.
 */
import { inFlight, sequential, type LatencyStats, type Op, type ThroughputPoint } from './load.js';

/** How much work each section does. */
export interface Plan {
  warmup: number;
  sequential: number;
  /** Operations per in-flight level. */
  perLevel: number;
  levels: number[];
}

/** One section's results. */
export interface Measurement {
  /** Short key the ratios refer to, e.g. 'agent-exec'. */
  name: string;
  /** What was measured, for the table. */
  label: string;
  sequential: LatencyStats;
  levels: ThroughputPoint[];
}

/** The plan for `--iterations N` (operations per level); sequential and warm-up scale with it. */
export function planFor(iterations: number, levels: number[] = [1, 8, 32]): Plan {
  return {
    warmup: Math.max(10, Math.round(iterations / 20)),
    sequential: Math.max(20, Math.round(iterations * 0.3)),
    perLevel: iterations,
    levels,
  };
}

/** Measures `op` with the plan; `observedPid`'s CPU (the agent's) is sampled per level. */
export async function profile(meta: { name: string; label: string }, plan: Plan, op: Op, observedPid?: number): Promise<Measurement> {
  await inFlight(op, plan.warmup, Math.min(8, plan.warmup));
  const seq = await sequential(op, plan.sequential);
  const levels: ThroughputPoint[] = [];
  for (const n of plan.levels) levels.push(await inFlight(op, plan.perLevel, n, observedPid));
  return { ...meta, sequential: seq, levels };
}

/**
 * What a bench/lib script run in a child process (bench:agent's measuredInChild) does with its
 * Measurement: prints it as one JSON line, or says why `name` failed and exits non-zero.
 */
export function printMeasurement(name: string, measured: Promise<Measurement>): void {
  measured.then(
    (m) => process.stdout.write(`${JSON.stringify(m)}\n`),
    (e: unknown) => {
      process.stderr.write(`${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
