/**
 * Starts one task process and reports its life; used inside the launcher process (and in-process
 * where no launcher runs, as in unit tests). Kept free of the agent's modules so the launcher
 * stays small and its event loop does nothing else; processes start through task-spawn.ts.
 */
import { readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { fileRefusal } from '../files/fs-refusal.js';
import { openDirIn } from '../files/safe-open.js';
import { commandExists } from './command-exists.js';
import { makeDirsAsync, processRunning, processStartTicks } from '../../proto/light.js';
import { WORK_DIR_FD, type SpawnHead } from './launcher-protocol.js';
import { SIGNAL_NAMES, spawnTask, type TaskChild } from './task-spawn.js';

/** What a started process reports. */
export interface SpawnEvents {
  /**
   * `startTicks`: the process's start time (proto/proc-stat.ts), read here, off the agent's event loop;
   * `warm`: the task runs in a sandbox started ahead (warm-pool.ts).
   */
  started(pid: number, error?: { code: string; message: string }, startTicks?: number, warm?: boolean): void;
  output(stream: 'stdout' | 'stderr', data: Buffer): void;
  exit(code: number | null, signal: string | null, end?: TaskEnd): void;
}

/** How a task's end came to be known. */
export interface TaskEnd {
  /** Why the task's end is unknown (the launcher died with it), when it is. */
  lost?: string;
  /**
   * A stop (signal()) reached the task's process while it still ran: sent before the process had
   * exited (not to a zombie waiting to be reaped, nor after its reap). Without it, whatever stop
   * was asked for came after the task had ended on its own, and its end is its own.
   */
  signalled?: boolean;
}

/** A running process: 'term' asks the task to end, 'kill' ends it and everything it started. */
export interface SpawnedProcess {
  signal(phase: 'term' | 'kill'): void;
}

function trySignal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false; // ESRCH: already gone
  }
}

/** Direct children of `pid` (CONFIG_PROC_CHILDREN), or none. */
function childrenOf(pid: number): number[] {
  let text = '';
  try {
    text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    // gone, or no CONFIG_PROC_CHILDREN
  }
  return text.split(' ').filter(Boolean).map(Number);
}

/**
 * Asks a sandboxed task to end: SIGTERM to the process group of the task's main process (bwrap
 * -> the namespace's init -> the task, which leads its own session). The init itself ignores
 * SIGTERM from outside, and bwrap does not forward it. Synchronous, and only while bwrap is not
 * reaped (the caller checks): the pids read are signalled at once, while the processes listed as
 * children still hold them, never after a wait in which they could end and their pids be reused.
 * True when the task's process still ran (it had not exited on its own).
 */
function termSandboxed(outer: number): boolean {
  let reached = false;
  for (const init of childrenOf(outer)) {
    for (const task of childrenOf(init)) {
      reached ||= processRunning(task);
      if (!trySignal(-task, 'SIGTERM')) trySignal(task, 'SIGTERM');
    }
  }
  return reached;
}

/** Maps the sandbox's exit code 128+N back to signal N, as a shell reports it. */
function sandboxExit(code: number | null, signal: string | null): { code: number | null; signal: string | null } {
  if (code !== null && code > 128 && code < 128 + 65) {
    const name = SIGNAL_NAMES.get(code - 128);
    if (name) return { code: null, signal: name };
  }
  return { code, signal };
}

function failed(ev: SpawnEvents, code: string, message: string): SpawnedProcess {
  ev.started(0, { code, message });
  ev.exit(code === 'ENOENT' ? 127 : 126, null);
  return { signal: () => undefined };
}

/**
 * The work dir of a sandboxed start, opened (and made) by a walk from its root that follows no
 * symlink (launcher-protocol.ts: SpawnHead.workDir); a GaxxError's code and message when refused.
 */
async function openWorkDir(w: { root: string; rel: string }, create: boolean): Promise<FileHandle | { code: string; message: string }> {
  try {
    return await openDirIn(w.root, w.rel, create);
  } catch (e) {
    const err = fileRefusal(e, 'use', w.rel) as { code?: string; message: string };
    return { code: err.code ?? 'EACCES', message: `work dir '${w.rel}': ${err.message}` };
  }
}

/** Starts `h` (stdin and fd 3 bytes from `body`); resolves once the process is started or failed. */
export async function spawnOne(h: SpawnHead, body: Buffer, ev: SpawnEvents): Promise<SpawnedProcess> {
  const dir = h.workDir ? await openWorkDir(h.workDir, h.mkdir) : undefined;
  if (dir && !('fd' in dir)) return failed(ev, dir.code, dir.message);
  try {
    return await spawnIn(h, body, ev, dir);
  } finally {
    // The child has its own copy of the descriptor by now (or failed to start).
    await dir?.close();
  }
}

async function spawnIn(h: SpawnHead, body: Buffer, ev: SpawnEvents, dir: FileHandle | undefined): Promise<SpawnedProcess> {
  if (h.mkdir && !dir) await makeDirsAsync(h.cwd, { mode: 0o700 }).catch(() => undefined);
  // A relative command is looked for in the work dir that was opened, not wherever its path leads now.
  const cwd = dir ? `/proc/self/fd/${dir.fd}` : h.cwd;
  if (h.probe && !commandExists(h.probe.argv0, h.probe.path, cwd)) return failed(ev, 'ENOENT', `cannot start ${h.probe.argv0}: ENOENT`);
  const fds = h.fd3Bytes > 0 ? 4 : 3;
  // The sandbox's process itself starts in `/`: the task's work dir is bound and entered inside.
  const child = spawnTask(h.file, h.args, {
    cwd: dir ? '/' : h.cwd,
    env: h.env,
    ...(dir ? { fds: WORK_DIR_FD + 1, given: dir.fd } : { fds }),
    rlimits: h.rlimits,
  });
  const pid = child.pid ?? 0;
  let spawnError: NodeJS.ErrnoException | undefined;
  child.on('error', (e: NodeJS.ErrnoException) => (spawnError = e));
  if (pid === 0) {
    await new Promise((r) => setImmediate(r));
    return failed(ev, spawnError?.code ?? 'EACCES', `cannot start ${h.probe?.argv0 ?? h.file}: ${spawnError?.code ?? 'spawn failed'}`);
  }
  ev.started(pid, undefined, processStartTicks(pid));
  if (h.fd3Bytes > 0) {
    const fd3 = child.stdio[3] as NodeJS.WritableStream & { on(e: 'error', f: () => void): void };
    fd3.on('error', () => undefined);
    fd3.end(body.subarray(0, h.fd3Bytes));
  }
  return watchChild(child, pid, h.sandboxed, body.subarray(h.fd3Bytes), ev);
}

/**
 * How long the output a task's pipes already hold may take to be read once its process is
 * reaped; a pipe still open then (its descriptors passed to another process) is cut regardless.
 */
const DRAIN_MS = 100;

/**
 * Feeds a started child its stdin, reports its output and end to `ev`, and returns its
 * controls; shared by cold starts (spawnOne) and sandboxes started ahead (warm-pool.ts).
 *
 * The task ends when its process (the sandbox's bwrap, or the task itself unsandboxed) has exited
 * and been reaped, not when its pipes close: a task can pass its stdout and stderr to a process
 * outside it (over an abstract unix socket: tasks share the network namespace), which would
 * keep them open past the task's end, its timeout and its capacity slot, and write into its
 * output. What the pipes already hold is read (drainThenEnd), then they are closed (later writes
 * through passed descriptors fail with EPIPE) and the exit is reported. Once reaped, the pid is
 * never signalled again: it may be another process's by then.
 */
export function watchChild(child: TaskChild, pid: number, sandboxed: boolean, stdin: Buffer, ev: SpawnEvents): SpawnedProcess {
  child.stdin?.on('error', () => undefined); // the command may exit without reading its stdin
  child.stdin?.end(stdin);
  child.stdout?.on('data', (d: Buffer) => ev.output('stdout', d));
  child.stderr?.on('data', (d: Buffer) => ev.output('stderr', d));
  let reaped = false;
  let signalled = false;
  // Its process group was killed as it was reaped (task-spawn.ts); the sandbox's init does the
  // same for the whole namespace.
  child.once('exit', (code: number | null, signal: string | null) => {
    reaped = true;
    const r = sandboxed ? sandboxExit(code, signal) : { code, signal };
    drainThenEnd(child, () => ev.exit(r.code, r.signal, { signalled }));
  });
  return {
    signal(phase) {
      // Reaped, or exited and not yet reaped (its exit is on its way): the task ended on its own
      // and the signal reaches nothing of it. Its state is read before the signal is sent, so a
      // process seen running got it (unless it exited in between, a few instructions' window).
      if (reaped) return;
      if (phase === 'kill') {
        signalled ||= processRunning(pid);
        trySignal(-pid, 'SIGKILL');
        trySignal(pid, 'SIGKILL');
      } else if (sandboxed) signalled = termSandboxed(pid) || signalled;
      else {
        signalled ||= processRunning(pid);
        trySignal(-pid, 'SIGTERM');
      }
    },
  };
}

/**
 * After the process is reaped: reads what its pipes hold, without waiting for their writers,
 * then closes every pipe and calls `done`. Each look comes after a turn of the event loop (whose
 * poll reads whatever a pipe holds); the pipes are drained once every reader has seen its end,
 * or a look finds nothing read since the last one, or DRAIN_MS have passed (something still
 * writing into descriptors it was passed).
 */
function drainThenEnd(child: TaskChild, done: () => void): void {
  const readers = [child.stdout, child.stderr].filter((s) => s !== null);
  const t0 = performance.now();
  let bytes = 0;
  let seen = -1;
  const count = (d: Buffer) => (bytes += d.length);
  for (const s of readers) s.on('data', count);
  const look = () => {
    const open = readers.some((s) => !s.readableEnded && !s.destroyed);
    if (open && bytes !== seen && performance.now() - t0 < DRAIN_MS) {
      seen = bytes;
      setImmediate(look);
      return;
    }
    for (const s of readers) s.off('data', count);
    for (const s of child.stdio) s?.destroy();
    done();
  };
  setImmediate(look);
}
