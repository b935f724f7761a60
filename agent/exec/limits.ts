/**
 * Per-task resource limits, so a fork bomb, a memory hog or a busy loop in a task cannot take
 * the agent (or the host) down. Limits are applied by exec'ing the task through `prlimit`
 * (setrlimit on the child only; prlimit then execs argv, so the task keeps its pid and process
 * group) and, where the host has a systemd user manager, inside a transient scope whose cgroup
 * caps memory and tasks.
 *
 * RLIMIT_NPROC counts every process and thread of the real uid, not of the task: the agent's
 * own threads and every other running task of the agent user count towards it. So `processes`
 * is a ceiling on the agent user as seen from inside the task. A fork bomb that reaches it makes
 * fork fail (EAGAIN) in the bomb and, while it lasts, in other tasks too; the agent itself keeps
 * forking, since its own limit is not lowered. Size it above the agent's threads (~12) plus the
 * processes of `capacity` concurrent tasks. A systemd scope (TasksMax) is the per-task fix.
 */
import { execFile } from 'node:child_process';
import { z } from 'zod';
import { commandExists } from './command-exists.js';
import type { TaskRlimits } from './task-spawn.js';

export { commandExists };

/** Limits for one task; 0 means unlimited. */
export const TaskLimitsSchema = z
  .object({
    /** CPU seconds (RLIMIT_CPU): SIGXCPU at the limit, SIGKILL two seconds of CPU later. */
    cpuSeconds: z.number().int().min(0).default(3600),
    /** Address space in bytes (RLIMIT_AS; MemoryMax in a systemd scope). */
    addressSpaceBytes: z
      .number()
      .int()
      .min(0)
      .default(4 * 1024 ** 3),
    /** Processes (RLIMIT_NPROC, per uid: see above; TasksMax in a systemd scope). */
    processes: z.number().int().min(0).default(1024),
    /** 'auto' picks a systemd scope when one can be made, else rlimits. */
    isolation: z.enum(['auto', 'systemd-scope', 'rlimit', 'none']).default('auto'),
  })
  .strict();

export type TaskLimits = z.infer<typeof TaskLimitsSchema>;

/** How tasks are confined on this host, and why (shown in logs at start). */
export type Isolation =
  | { kind: 'systemd-scope'; prlimit: string; systemdRun: string; detail: string }
  | { kind: 'rlimit'; prlimit: string; detail: string }
  | { kind: 'none'; detail: string };

/** Exit reasons the agent reports for limits (Exit.reason). */
export type LimitReason = 'cpu_limit' | 'memory_limit' | 'process_limit';

/** Host facts and preferences for choosing the isolation. */
export interface IsolationProbe {
  prefer: TaskLimits['isolation'];
  prlimitPath?: string;
  systemdRunPath?: string;
  /** Environment for systemd-run --user (XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS). */
  userBusEnv?: Record<string, string>;
}

function runs(file: string, args: string[], env?: Record<string, string>): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 5000, env: { PATH: '/usr/bin:/bin', ...env } }, (err, _out, stderr) =>
      resolve(err ? (stderr.trim().split('\n')[0] ?? err.message) || err.message : undefined),
    );
  });
}

/** Works out which isolation this host supports, falling back from scope to rlimit to none. */
export async function detectIsolation(p: IsolationProbe): Promise<Isolation> {
  const prlimit = p.prlimitPath ?? '/usr/bin/prlimit';
  const systemdRun = p.systemdRunPath ?? '/usr/bin/systemd-run';
  if (p.prefer === 'none') return { kind: 'none', detail: 'task limits disabled by configuration' };
  const prlimitErr = await runs(prlimit, ['--cpu=60', '--', '/bin/true']);
  if (prlimitErr !== undefined) return { kind: 'none', detail: `prlimit unusable (${prlimitErr}): tasks run without resource limits` };
  if (p.prefer === 'rlimit') return { kind: 'rlimit', prlimit, detail: 'rlimits via prlimit (configured)' };
  const scopeErr = await runs(systemdRun, ['--user', '--scope', '--quiet', '--collect', '-p', 'TasksMax=16', '--', '/bin/true'], p.userBusEnv);
  if (scopeErr === undefined)
    return { kind: 'systemd-scope', prlimit, systemdRun, detail: 'systemd user scope per task (MemoryMax, TasksMax) plus RLIMIT_CPU' };
  return { kind: 'rlimit', prlimit, detail: `rlimits via prlimit; no systemd user scope (${scopeErr})` };
}

/**
 * The rlimits a task starts with under `limits` and `isolation` (none without isolation). In a
 * systemd scope only the CPU time: there the cgroup caps memory and tasks per task, and rlimits
 * would only add the per-uid NPROC problem and break runtimes that reserve large address spaces.
 */
export function taskRlimits(limits: TaskLimits, isolation: Isolation): TaskRlimits | undefined {
  if (isolation.kind === 'none') return undefined;
  const scope = isolation.kind === 'systemd-scope';
  const r: TaskRlimits = { prlimit: isolation.prlimit };
  if (limits.cpuSeconds > 0) r.cpu = [limits.cpuSeconds, limits.cpuSeconds + 2];
  if (!scope && limits.addressSpaceBytes > 0) r.as = limits.addressSpaceBytes;
  if (!scope && limits.processes > 0) r.nproc = limits.processes;
  return r.cpu || r.as !== undefined || r.nproc !== undefined ? r : undefined;
}

/**
 * The argv that starts `argv` in its own systemd scope (MemoryMax, TasksMax) under a
 * systemd-scope isolation; `argv` itself otherwise. systemd-run execs into the task, so the
 * spawned pid is the task's, and rlimits set at the spawn (taskRlimits) reach the task.
 */
export function scopeArgv(argv: string[], limits: TaskLimits, isolation: Isolation, unitName = 'gaxx-task'): string[] {
  if (isolation.kind !== 'systemd-scope') return [...argv];
  const props: string[] = [];
  if (limits.addressSpaceBytes > 0) props.push('-p', `MemoryMax=${limits.addressSpaceBytes}`, '-p', 'MemorySwapMax=0');
  if (limits.processes > 0) props.push('-p', `TasksMax=${limits.processes}`);
  const unit = `${unitName.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100)}-${process.hrtime.bigint().toString(36)}`;
  return [isolation.systemdRun, '--user', '--scope', '--quiet', '--collect', `--unit=${unit}`, ...props, '--', ...argv];
}

const MEMORY_HINTS = /out of memory|memory exhausted|cannot allocate memory|MemoryError|bad_alloc|ENOMEM|allocation failed/i;
const FORK_HINTS = /cannot fork|fork: (retry: )?resource temporarily unavailable|fork failed|EAGAIN|can't fork/i;

/** What is known about how a task ended. */
export interface TaskEnd {
  code: number | null;
  signal: string | null;
  /** The last few KiB of the task's stderr (see TailBuffer). */
  stderrTail: string;
  /** Why the agent itself ended the task, if it did (timeout, cancelled, output_cap, ...). */
  agentReason?: string | undefined;
}

/**
 * The Exit reason for a finished task. Direct evidence first (SIGXCPU; the task's own report of
 * a failed allocation or fork while that limit was in force; SIGKILL in a scope with a memory
 * cap, the OOM killer's signal). A cancel stays a cancel; otherwise a limit explains a timeout
 * or output cap better than the timeout does (a throttled fork bomb runs until its timeout).
 */
export function classifyExit(end: TaskEnd, limits: TaskLimits, isolation: Isolation): string {
  if (end.agentReason === 'cancelled') return 'cancelled';
  const limited = isolation.kind !== 'none';
  let reason: LimitReason | undefined;
  if (end.signal === 'SIGXCPU') reason = 'cpu_limit';
  else if (limited && limits.addressSpaceBytes > 0 && MEMORY_HINTS.test(end.stderrTail)) reason = 'memory_limit';
  else if (limited && limits.processes > 0 && FORK_HINTS.test(end.stderrTail)) reason = 'process_limit';
  else if (isolation.kind === 'systemd-scope' && end.signal === 'SIGKILL' && !end.agentReason && limits.addressSpaceBytes > 0) reason = 'memory_limit';
  return reason ?? end.agentReason ?? '';
}

/** Keeps the last `max` bytes of a stream (a task's stderr) for classifyExit. */
export class TailBuffer {
  private buf = Buffer.alloc(0);

  constructor(private readonly max = 4096) {}

  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.buf.length > this.max) this.buf = this.buf.subarray(this.buf.length - this.max);
  }

  text(): string {
    return this.buf.toString('utf8');
  }
}

/** The limits in force for tasks and how they are applied. */
export interface Confinement {
  limits: TaskLimits;
  isolation: Isolation;
}
