/**
 * Runs one command: argv directly (no shell), a clean environment, its own process group
 * (detached) so a timeout, Cancel or the output cap kill every process the task started.
 *
 * Output cap: stdout+stderr together; the chunk crossing the cap is cut, Exit says truncated and
 * outputCapped, and the task's group is killed (a command that floods output is stopped rather
 * than left running unseen), reason "output_cap". A stop (the cap, a timeout, Cancel, shutdown)
 * is the task's reason only when it reached the task's process while that still ran
 * (spawn-one.ts: TaskEnd.signalled): a task that ended on its own first (its output read by the
 * agent after it exited, say) is reported with its own end. When the leader exits, whatever it left
 * behind in its group is killed too: a task owns nothing after it ends. Its end is its process's
 * (reaped), not its pipes' close (spawn-one.ts: watchChild): descriptors it passed out are cut.
 */
import { dirname } from 'node:path';
import { fsFix, GaxxError, LAUNCHER_LOST, type Exit } from '../../proto/index.js';
import { inProcessRunner, type TaskRunner } from './launcher.js';
import { WORK_DIR_FD, type SpawnHead, type WarmTemplate } from './launcher-protocol.js';
import type { SetupFailure } from './spawn-one.js';
import type { TaskRlimits } from './task-spawn.js';
import { classifyExit, scopeArgv, TailBuffer, taskRlimits, type Confinement } from './limits.js';
import { encodeArgs, sandboxArgv, sandboxMounts, sandboxOptions, scratchSeenAt, type Sandbox, type SandboxMounts, type SandboxPaths } from './sandbox.js';

/** What exec needs to run a validated request. */
export interface ExecSpec {
  taskId: string;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  /** `cwd` relative to the launch's workRoot (the agent's data dir). */
  workRel: string;
  /** The work dir is the task's scratch dir (`<data-dir>/tasks/<taskId>`), made for it: a warm sandbox may be used. */
  scratch?: boolean;
  stdin: Buffer;
  timeoutMs: number;
  outputCapBytes: number;
  /** Per-task resource limits (CPU, memory, processes); none when absent. */
  confine?: Confinement | undefined;
  /** How the process is started: the launcher and the sandbox (in-process and bare when absent). */
  launch?: LaunchContext | undefined;
}

/** The agent's launcher and sandbox, shared by every task. */
export interface LaunchContext {
  runner: TaskRunner;
  sandbox: Sandbox;
  paths: SandboxPaths;
  /**
   * The directory every work dir lies under (the agent's data dir). A sandboxed task's work dir
   * is opened under it without following a symlink, and the sandbox binds that descriptor.
   */
  workRoot: string;
  /** Sandboxes to keep started ahead of tasks with a scratch dir (0: none; see warm-pool.ts). */
  warm?: { count: number; tasksDir: string };
}

/**
 * Receives a process's life: started (pid 0 when the command could not be run), output chunks,
 * and its exit, or instead of the exit the refusal of a task the agent could not set up (its
 * command never ran: setupError).
 */
export interface ExecSink {
  /** `startTicks`: the start time the spawner read (0 or absent: unknown); `warm`: in a sandbox started ahead. */
  started(pid: number, startTicks?: number, warm?: boolean): void;
  output(stream: 'stdout' | 'stderr', data: Buffer): void;
  exit(exit: Required<Pick<Exit, 'code' | 'signal' | 'durationMs' | 'truncated' | 'stdoutBytes' | 'stderrBytes' | 'reason' | 'error' | 'outputCapped'>>): void;
  /** The task was not set up (`failure`: why, as the launcher said it): `error` ends its Exec. */
  refused(error: GaxxError, failure: SetupFailure): void;
}

/**
 * The error that ends the Exec of a task the agent could not set up (spawn-one.ts SetupFailure):
 * UNAVAILABLE, this agent's failure and not the command's, naming the errno and the path, and the
 * fix where it is the file system's (read-only, full, over quota); the scheduler runs an any-host
 * task on another agent instead. A named work dir that the walk refused as a path (a symlink or a
 * file on it) keeps its code, as the agent's check of the request does. Either way marked as not
 * started (`details.notStarted`: NOT_STARTED_METADATA_KEY on the wire): nothing of it ran, and no
 * result of it is held.
 */
export function setupError(spec: Pick<ExecSpec, 'taskId' | 'scratch'>, f: SetupFailure): GaxxError {
  const details = { notStarted: true, errno: f.errno, ...(f.path !== undefined ? { path: f.path } : {}) };
  if (spec.scratch !== true && (f.refused === 'PATH_ESCAPE' || f.refused === 'INVALID_ARGUMENT')) return new GaxxError(f.refused, f.message, { details });
  const fix = fsFix(f.errno, f.path);
  return new GaxxError('UNAVAILABLE', `task ${spec.taskId} not started: this agent could not set it up: ${f.message}${fix ? `; ${fix}` : ''}`, { details });
}

export type KillReason = 'timeout' | 'cancelled' | 'output_cap' | 'shutdown';

/** A running process; kill() signals its whole group (SIGTERM, then SIGKILL after the grace). */
export interface ExecHandle {
  pid: number;
  kill(reason: KillReason, graceMs?: number): void;
}

const DEFAULT_KILL_GRACE_MS = 2000;
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The environment a task sees: a minimal base plus the request's (already validated) env. */
export function taskEnv(cwd: string, extra: Record<string, string>): Record<string, string> {
  return { PATH: BASE_PATH, HOME: cwd, LANG: 'C.UTF-8', ...extra };
}

/**
 * The limits around a command: the argv that starts it (in a systemd scope when there is one;
 * `name`: the scope's unit) and the rlimits it starts with (set by the launcher's spawn).
 */
function confined(argv: string[], c: Confinement | undefined, name: string): { argv: string[]; rlimits: TaskRlimits | undefined } {
  if (!c) return { argv, rlimits: undefined };
  return { argv: c.isolation.kind === 'systemd-scope' ? scopeArgv(argv, c.limits, c.isolation, name) : argv, rlimits: taskRlimits(c.limits, c.isolation) };
}

/**
 * How a task's process for this launch is started ahead of it (warm-pool.ts), when it may be: a
 * sandbox, or limits without one (the launcher starts those ahead only where tasks fork:
 * startsAhead); limits that are the same for every task (a systemd scope is one per task).
 */
function warmTemplate(launch: LaunchContext | undefined, confine: Confinement | undefined, mounts: SandboxMounts | undefined): WarmTemplate | undefined {
  const iso = launch?.sandbox;
  const w = launch?.warm;
  if (!iso || !w || w.count <= 0 || confine?.isolation.kind === 'systemd-scope') return undefined;
  const { argv, rlimits } = confined(iso.kind === 'bwrap' ? sandboxArgv(iso, []) : [], confine, 'gaxx-task');
  // Unsandboxed and unlimited, a task is one exec either way: nothing to start ahead.
  if (argv.length === 0 && !rlimits) return undefined;
  return { prefix: argv, rlimits, env: { PATH: BASE_PATH }, mounts, tasksDir: w.tasksDir, count: w.count };
}

/**
 * The template of this agent's scratch tasks (launchPlan's, for a task with no work dir of its
 * own), for its launcher to start sandboxes ahead of the first task; undefined when none are.
 */
export function startingTemplate(launch: LaunchContext | undefined, confine: Confinement | undefined): WarmTemplate | undefined {
  return warmTemplate(launch, confine, launchMounts(launch));
}

/** The sandbox's mounts for tasks launched with `launch` (none without a bwrap sandbox). */
function launchMounts(launch: LaunchContext | undefined): SandboxMounts | undefined {
  const iso = launch?.sandbox;
  return iso?.kind === 'bwrap' && launch ? sandboxMounts(iso, launch.paths) : undefined;
}

/**
 * The work dir as the task sees it: in a sandbox, a scratch dir has one name for every task
 * (sandbox.ts scratchSeenAt), a named work dir its own path; without one, its path.
 */
export function seenWorkDir(spec: Pick<ExecSpec, 'cwd' | 'scratch' | 'launch'>): string {
  return spec.scratch && spec.launch?.sandbox.kind === 'bwrap' ? scratchSeenAt(dirname(spec.cwd)) : spec.cwd;
}

/** The argv to start and its spawn head: limits outside, the sandbox (if any) inside them; `seen`: seenWorkDir(spec). */
function launchPlan(spec: ExecSpec, env: Record<string, string>, seen: string): { head: SpawnHead; body: Buffer } {
  const iso = spec.launch?.sandbox;
  const sandboxed = iso?.kind === 'bwrap';
  const inner = sandboxed ? sandboxArgv(iso, spec.argv) : spec.argv;
  const { argv, rlimits } = confined(inner, spec.confine, `gaxx-task-${spec.taskId}`);
  const wrapped = argv !== spec.argv || rlimits !== undefined;
  // The sandbox's mounts, once: for this task's options and for the sandboxes started ahead.
  const mounts = launchMounts(spec.launch);
  // Bound by descriptor where bwrap can (else only scratch dirs get here: execSpec in exec-request.ts).
  const byFd = sandboxed && iso.bindFd && spec.launch !== undefined;
  // bwrap's status on the fd after its options (and the work dir's), when it writes one: whether it ran the command.
  const statusFd = sandboxed && iso.jsonStatus === true ? (byFd ? WORK_DIR_FD : 3) + 1 : undefined;
  const status = statusFd !== undefined ? ['--json-status-fd', String(statusFd)] : [];
  const fd3 = mounts ? encodeArgs([...sandboxOptions(mounts, spec.cwd, env, byFd ? WORK_DIR_FD : undefined, seen), ...status]) : Buffer.alloc(0);
  const template = spec.scratch ? warmTemplate(spec.launch, spec.confine, mounts) : undefined;
  const head: SpawnHead = {
    file: argv[0] as string,
    args: argv.slice(1),
    rlimits,
    cwd: spec.cwd,
    // In the sandbox the task's env is set by bwrap; bwrap and prlimit get only a PATH.
    env: sandboxed ? { PATH: BASE_PATH } : env,
    fd3Bytes: fd3.length,
    probe: wrapped ? { argv0: spec.argv[0] as string, path: env.PATH ?? BASE_PATH } : undefined,
    sandboxed,
    mkdir: true,
    // The sandbox binds the work dir by descriptor (WORK_DIR_FD), opened under this root.
    ...(byFd && spec.launch ? { workDir: { root: spec.launch.workRoot, rel: spec.workRel } } : {}),
    ...(statusFd !== undefined ? { statusFd } : {}),
    ...(template ? { warm: { template, argv: spec.argv, env } } : {}),
  };
  return { head, body: fd3.length > 0 ? Buffer.concat([fd3, spec.stdin]) : spec.stdin };
}

/** Starts `spec` through its runner (the launcher, or in-process); events go to `sink`. */
export function startExec(spec: ExecSpec, sink: ExecSink): ExecHandle {
  const t0 = Date.now();
  const seen = seenWorkDir(spec);
  const env = taskEnv(seen, spec.env);
  const { head, body } = launchPlan(spec, env, seen);
  const runner = spec.launch?.runner ?? inProcessRunner;
  let reason: KillReason | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let exited = false;
  let truncated = false;
  let sent = 0;
  let startError = '';
  const bytes = { stdout: 0, stderr: 0 };
  // The end of stderr tells a task that hit a limit (failed allocation or fork) from one that failed.
  const stderrTail = new TailBuffer();
  const handle: ExecHandle = {
    pid: 0,
    kill(why, graceMs = DEFAULT_KILL_GRACE_MS) {
      if (reason !== undefined || exited) return;
      reason = why;
      proc.signal('term');
      killTimer = setTimeout(() => proc.signal('kill'), graceMs);
      killTimer.unref();
    },
  };
  const timer = setTimeout(() => handle.kill('timeout'), spec.timeoutMs);
  const proc = runner.spawn(head, body, {
    started(pid, error, startTicks, warm) {
      handle.pid = pid;
      if (error) startError = error.message;
      sink.started(pid, startTicks, warm);
    },
    output(stream, data) {
      if (truncated) return;
      if (stream === 'stderr') stderrTail.push(data);
      const room = spec.outputCapBytes - sent;
      const part = data.length > room ? data.subarray(0, room) : data;
      sent += part.length;
      bytes[stream] += part.length;
      if (part.length > 0) sink.output(stream, part);
      if (data.length > room) {
        truncated = true;
        handle.kill('output_cap');
      }
    },
    exit(code, signal, end) {
      exited = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      if (end?.setupFailed) {
        sink.refused(setupError(spec, end.setupFailed), end.setupFailed);
        return;
      }
      const lost = end?.lost;
      // A stop the agent decided on (timeout, cancel, output cap, shutdown) ended the task only if
      // its signal reached the task's process while it ran. One that came after the process had
      // exited (the agent reads the task's output behind the launcher: a fast writer can end
      // before the agent sees it pass the cap) reached nothing: the task ended on its own and is
      // reported with its own exit, output past the cap still cut and said so (outputCapped).
      if (end?.signalled !== true) reason = undefined;
      sink.exit({
        code: code ?? -1,
        signal: signal ?? '',
        durationMs: Date.now() - t0,
        truncated,
        outputCapped: truncated,
        stdoutBytes: bytes.stdout,
        stderrBytes: bytes.stderr,
        // Lost with the launcher: not a signal the task got, nor a limit it hit.
        reason: lost
          ? LAUNCHER_LOST
          : spec.confine
            ? classifyExit({ code, signal, stderrTail: stderrTail.text(), agentReason: reason }, spec.confine.limits, spec.confine.isolation)
            : (reason ?? ''),
        error: lost ?? startError,
      });
    },
  });
  return handle;
}
