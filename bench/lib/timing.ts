/**
 * Wall-clock timing of whole commands (process start to exit), for start-up and fan-out
 * benches: median and spread of N runs after one warm-up, and a table of ratios against a
 * baseline measured in the same run.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import { dirname } from 'node:path';

/** One command to time. */
export interface TimedCommand {
  name: string;
  argv: readonly string[];
  /**
   * The command's whole environment (required: a baseline and the commands compared with it must
   * run in the same one; this process's may carry variables that change how a program starts,
   * e.g. NODE_EXTRA_CA_CERTS makes every Node process read CA files before running any code).
   */
  env: Record<string, string | undefined>;
  /** Exit codes that count as success (default [0]). */
  okCodes?: readonly number[];
}

/** Median, min and max wall time of one command, and its mean CPU time, in milliseconds. */
export interface Timing {
  name: string;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  /**
   * Mean CPU time (user + system, the command and its waited-for children), from the kernel's
   * count for our reaped children: unlike wall time, it hardly moves when others load the machine.
   */
  cpuMs: number;
}

/** CPU time of our reaped children so far, in ms (/proc/self/stat cutime + cstime, 100 Hz ticks). */
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  // After "(comm) ", field 3 is index 0: cutime and cstime are fields 16 and 17.
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** Wall time of one run of `cmd`, in ms; throws when the command fails. */
export function runOnce(cmd: TimedCommand): number {
  return runMeasured(cmd).wallMs;
}

/**
 * Wall time and CPU time (the command and its waited-for children) of one run of `cmd`, in ms;
 * with `stdout`, also what the command printed there.
 */
export function runMeasured(cmd: TimedCommand, opts: { stdout?: boolean } = {}): { wallMs: number; cpuMs: number; stdout: string } {
  const c0 = childrenCpuMs();
  const t0 = performance.now();
  const r = spawnSync(cmd.argv[0] as string, cmd.argv.slice(1), {
    env: cmd.env,
    stdio: ['ignore', opts.stdout ? 'pipe' : 'ignore', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = performance.now() - t0;
  if (r.error) throw r.error;
  if (!(cmd.okCodes ?? [0]).includes(r.status ?? -1)) {
    throw new Error(`${cmd.name}: exit ${r.status ?? r.signal}: ${r.stderr.toString().trim().slice(0, 500)}`);
  }
  return { wallMs: ms, cpuMs: childrenCpuMs() - c0, stdout: r.stdout?.toString() ?? '' };
}

/** Blocks the bench for `ms` (its commands run synchronously anyway). */
export function pause(ms: number): void {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Times every command `runs` times after one warm-up run each. The commands take turns (round
 * robin), so a change in the machine's load touches all of them alike and the ratios hold.
 * `gapMs` leaves that long between turns (not timed), so that what a command leaves behind
 * (an agent refilling its warm sandboxes) is done before the next one starts.
 */
export function timeCommands(cmds: readonly TimedCommand[], runs: number, gapMs = 0): Timing[] {
  const times = cmds.map(() => [] as number[]);
  const cpu = cmds.map(() => 0);
  for (const c of cmds) runOnce(c);
  for (let i = 0; i < runs; i++) {
    cmds.forEach((c, j) => {
      pause(gapMs);
      const m = runMeasured(c);
      times[j]?.push(m.wallMs);
      cpu[j] = (cpu[j] ?? 0) + m.cpuMs;
    });
  }
  return cmds.map((c, j) => summarize(c.name, times[j] ?? [], (cpu[j] ?? 0) / runs));
}

/** Median, min and max of a list of times. */
export function summarize(name: string, times: readonly number[], cpuMs = NaN): Timing {
  const sorted = [...times].sort((a, b) => a - b);
  return { name, runs: sorted.length, medianMs: median(sorted), minMs: sorted[0] ?? NaN, maxMs: sorted[sorted.length - 1] ?? NaN, cpuMs };
}

/** The median of a list of numbers, in any order (NaN for none). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** A table of timings with each one's ratio to the baseline named `over`. */
export function formatTimings(ts: readonly Timing[], over: string): string {
  const base = ts.find((t) => t.name === over);
  const rows = [['what', 'median ms', 'min ms', 'max ms', `x ${over}`, 'cpu ms', `cpu x ${over}`]];
  for (const t of ts) {
    const ratio = (v: number, b: number | undefined) => `${(v / (b ?? NaN)).toFixed(2)}x`;
    rows.push([
      t.name,
      t.medianMs.toFixed(1),
      t.minMs.toFixed(1),
      t.maxMs.toFixed(1),
      ratio(t.medianMs, base?.medianMs),
      t.cpuMs.toFixed(1),
      ratio(t.cpuMs, base?.cpuMs),
    ]);
  }
  return formatTable(rows);
}

/** Rows as aligned text columns: the first left-aligned, the others right-aligned. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === 0 ? c.padEnd(widths[0] ?? 0) : c.padStart(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * How to start a program file as a user's shell does: the file itself when it is executable and
 * has a #! line (which picks Node and its flags, as the installed `gaxx` does), else through this
 * Node.
 */
export function entryArgv(file: string): string[] {
  try {
    accessSync(file, constants.X_OK);
    const head = Buffer.alloc(2);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, head, 0, 2, 0);
    } finally {
      closeSync(fd);
    }
    if (head.toString() === '#!') return [file];
  } catch {
    // Not executable (or not readable): Node runs it, or reports why not.
  }
  return [process.execPath, file];
}

/**
 * PATH with this Node's directory first: a bin whose #! line asks `env` for `node` then runs the
 * very Node that the baseline (`node -e 0`, run as process.execPath) runs.
 */
export function benchPath(): string {
  return [dirname(process.execPath), process.env.PATH ?? '/usr/bin:/bin'].join(':');
}

/** What the commands of entry `i` of several timed CLI entries are named with: `[i] `, or nothing for one entry. */
export function entryLabel(clis: readonly string[], i: number): string {
  return clis.length > 1 ? `[${i + 1}] ` : '';
}

/** One line per timed entry: its label (when several) and its path. */
export function entryLegend(clis: readonly string[]): string {
  return clis.map((c, i) => `${entryLabel(clis, i)}${c}\n`).join('');
}
