/**
 * Runs one command: argv directly (no shell), a clean environment, its own process group
 * (detached) so a timeout, Cancel or the output cap kill every process the task started.
 *
 * Output cap: stdout+stderr together; the chunk crossing the cap is cut, Exit says
 * truncated with reason "output_cap", and the task's group is killed (a command that floods
 * output is stopped rather than left running unseen). When the leader exits, whatever it left
 * behind in its group is killed too: a task owns nothing after it ends.
 */
import { spawn } from 'node:child_process';
import type { Exit } from '../../proto/index.js';
import { classifyExit, confinedArgv, TailBuffer, type Confinement } from './limits.js';

/** What exec needs to run a validated request. */
export interface ExecSpec {
  taskId: string;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  stdin: Buffer;
  timeoutMs: number;
  outputCapBytes: number;
  /** Per-task resource limits (CPU, memory, processes); none when absent. */
  confine?: Confinement | undefined;
}

/** Receives a process's life: started (pid 0 when spawn failed), output chunks, exit. */
export interface ExecSink {
  started(pid: number): void;
  output(stream: 'stdout' | 'stderr', data: Buffer): void;
  exit(exit: Required<Pick<Exit, 'code' | 'signal' | 'durationMs' | 'truncated' | 'stdoutBytes' | 'stderrBytes' | 'reason' | 'error'>>): void;
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

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Kills a process group once: SIGTERM now, SIGKILL after the grace; remembers why. */
function groupKiller(pid: number): { kill: ExecHandle['kill']; reason(): KillReason | undefined; clear(): void } {
  let reason: KillReason | undefined;
  let timer: NodeJS.Timeout | undefined;
  return {
    kill(why, graceMs = DEFAULT_KILL_GRACE_MS) {
      if (reason !== undefined || pid === 0) return;
      reason = why;
      signalGroup(pid, 'SIGTERM');
      timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
      timer.unref();
    },
    reason: () => reason,
    clear: () => clearTimeout(timer),
  };
}

/** Starts `spec`; events go to `sink`. */
export function startExec(spec: ExecSpec, sink: ExecSink): ExecHandle {
  const t0 = Date.now();
  const env = taskEnv(spec.cwd, spec.env);
  const argv = confinedArgv(spec.argv, spec.confine, env, spec.cwd, `gaxx-task-${spec.taskId}`);
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: spec.cwd,
    env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const pid = child.pid ?? 0;
  const killer = groupKiller(pid);
  const handle: ExecHandle = { pid, kill: killer.kill };
  let truncated = false;
  let sent = 0;
  const bytes = { stdout: 0, stderr: 0 };
  // The end of stderr tells a task that hit a limit (failed allocation or fork) from one that failed.
  const stderrTail = new TailBuffer();
  sink.started(pid);
  const timer = setTimeout(() => handle.kill('timeout'), spec.timeoutMs);
  const onData = (stream: 'stdout' | 'stderr') => (data: Buffer) => {
    if (truncated) return;
    const room = spec.outputCapBytes - sent;
    const part = data.length > room ? data.subarray(0, room) : data;
    sent += part.length;
    bytes[stream] += part.length;
    if (part.length > 0) sink.output(stream, part);
    if (data.length > room) {
      truncated = true;
      handle.kill('output_cap');
    }
  };
  child.stdout.on('data', onData('stdout'));
  child.stderr.on('data', onData('stderr'));
  child.stderr.on('data', (d: Buffer) => stderrTail.push(d));
  child.stdin.on('error', () => undefined); // the command may exit without reading its stdin
  child.stdin.end(spec.stdin);
  child.on('exit', () => signalGroup(pid, 'SIGKILL'));
  let spawnError: NodeJS.ErrnoException | undefined;
  child.on('error', (e: NodeJS.ErrnoException) => {
    spawnError = e;
  });
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    killer.clear();
    sink.exit({
      code: spawnError && pid === 0 ? (spawnError.code === 'ENOENT' ? 127 : 126) : (code ?? -1),
      signal: signal ?? '',
      durationMs: Date.now() - t0,
      truncated,
      stdoutBytes: bytes.stdout,
      stderrBytes: bytes.stderr,
      reason: spec.confine
        ? classifyExit({ code, signal, stderrTail: stderrTail.text(), agentReason: killer.reason() }, spec.confine.limits, spec.confine.isolation)
        : (killer.reason() ?? ''),
      error: spawnError && pid === 0 ? `cannot start ${spec.argv[0]}: ${spawnError.code ?? spawnError.message}` : '',
    });
  });
  return handle;
}
