/**
 * The standard measurement profile every bench section applies to its operation: a warm-up
 * (connections, the agent's first task dirs, and the JIT: see warmUp), then sequential latency,
 * then throughput at each in-flight level. The plan bounds every count, so a run is bounded.
 */
import { inFlight, sequential, type LatencyStats, type Op, type ThroughputPoint } from './load.js';

/** How much work each section does. */
export interface Plan {
  /** Operations per warm-up block (see warmUp). */
  warmup: number;
  /** Warm-up operations at least... */
  warmupMin: number;
  /** ...and at most, however the blocks go. */
  warmupMax: number;
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
  /** What the warm-up took before the measured part. */
  warmup: WarmUp;
}

/** A warm-up's course: how many operations, and the time per operation of its first and last block. */
export interface WarmUp {
  ops: number;
  firstMsPerOp: number;
  lastMsPerOp: number;
}

/** The plan for `--iterations N` (operations per level); sequential and warm-up scale with it. */
export function planFor(iterations: number, levels: number[] = [1, 8, 32]): Plan {
  return {
    warmup: Math.max(10, Math.round(iterations / 2)),
    warmupMin: Math.max(30, iterations * 3),
    warmupMax: Math.max(60, iterations * 6),
    sequential: Math.max(20, Math.round(iterations * 0.3)),
    perLevel: iterations,
    levels,
  };
}

/** Measures `op` with the plan; `observedPid`'s CPU (the agent's) is sampled per level. */
export async function profile(meta: { name: string; label: string }, plan: Plan, op: Op, observedPid?: number): Promise<Measurement> {
  const warmup = await warmUp(op, plan.warmup, plan.warmupMin, plan.warmupMax);
  const seq = await sequential(op, plan.sequential);
  const levels: ThroughputPoint[] = [];
  for (const n of plan.levels) levels.push(await inFlight(op, plan.perLevel, n, observedPid));
  return { ...meta, sequential: seq, levels, warmup };
}

/** A block this much faster than the best before it counts as still warming up. */
const STILL_WARMING = 0.95;

/**
 * Whether blocks with these times per operation (oldest first) are still getting faster: true
 * unless there are three or more and each of the last two is no faster than 95% of the best
 * block before it.
 */
export function stillWarming(msPerOp: readonly number[]): boolean {
  if (msPerOp.length < 3) return true;
  for (const i of [msPerOp.length - 2, msPerOp.length - 1]) {
    if ((msPerOp[i] as number) < Math.min(...msPerOp.slice(0, i)) * STILL_WARMING) return true;
  }
  return false;
}

/**
 * Runs `op` in blocks of `block` operations (8 in flight): `min` operations, then on while its
 * time per operation still falls (stillWarming), up to `max`. V8 compiles a process's hot code
 * with its optimizing compiler only after many calls: an agent started with
 * --unsafe-no-isolation spent 1.56 ms of its CPU per Exec of `true` over its first 500 Execs,
 * 1.02 over its 1,000th to 1,500th and 0.66-0.70 from its 2,500th on, a fall that a few blocks
 * of wall time on a shared machine can hide (hence the minimum). With a fixed warm-up of 50, a
 * section's measured part began on cold code (its sequential latency, then 1 in flight) and
 * ended on warm code (32 in flight). Every section, the baselines too, now warms up so, and each
 * measures its steady state.
 */
export async function warmUp(op: Op, block: number, min: number, max: number): Promise<WarmUp> {
  const times: number[] = [];
  let ops = 0;
  while (ops < max && (ops < min || stillWarming(times))) {
    const n = Math.min(block, max - ops);
    const p = await inFlight(op, n, Math.min(8, n));
    ops += n;
    times.push((p.seconds * 1000) / n);
  }
  return { ops, firstMsPerOp: times[0] ?? NaN, lastMsPerOp: times[times.length - 1] ?? NaN };
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
