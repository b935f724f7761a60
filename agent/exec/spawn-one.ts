/**
 * Starts one task process and reports its life; used inside the launcher process (and in-process
 * where no launcher runs, as in unit tests). Kept free of the agent's modules so the launcher
 * stays small and its event loop does nothing else; processes start through task-spawn.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileRefusal } from '../files/fs-refusal.js';
import { openDirIn } from '../files/safe-open.js';
import { commandProblem } from './command-exists.js';
import { GaxxError, makeDirsAsync, processRunning, processStartTicks } from '../../proto/light.js';
import { WORK_DIR_FD, type SpawnHead } from './launcher-protocol.js';
import { SIGNAL_NAMES, spawnTask, type SpawnError, type TaskChild } from './task-spawn.js';

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

/**
 * Why a task's command never ran though nothing was wrong with it: the agent could not set the
 * task up (its work dir, a process to run it in, its sandbox). Not the command's failure (that
 * is an exit, 127 or 126, as a shell says it): exec.ts ends the task's Exec with it instead, and
 * the task may run on another agent.
 */
export interface SetupFailure {
  /** What could not be had: the work dir, a process (pipes, fork, limits), the sandbox, the launcher. */
  stage: 'work dir' | 'process' | 'sandbox' | 'launcher';
  /** The errno met (EROFS, EACCES, ENOSPC, EAGAIN...), or SANDBOX_FAILED. */
  errno: string;
  /** What failed, with its path: one line for the Exec's error. */
  message: string;
  /** The path it concerns (the work dir), when one does. */
  path?: string | undefined;
  /**
   * The work dir walk's own refusal of the path (PATH_ESCAPE: a symlink on it; INVALID_ARGUMENT:
   * a file on it; NOT_FOUND: gone meanwhile), rather than a failure of the file system.
   */
  refused?: string | undefined;
}

/** SetupFailure.errno of a sandbox that ended before it ran the command (bwrap could not set it up). */
export const SANDBOX_FAILED = 'SANDBOX_FAILED';

/** How a task's end came to be known. */
export interface TaskEnd {
  /** Why the task's end is unknown (the launcher died with it), when it is. */
  lost?: string;
  /** The task's command never ran: the agent could not set the task up (code and signal are null). */
  setupFailed?: SetupFailure;
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

const NO_PROCESS: SpawnedProcess = { signal: () => undefined };

/** The command cannot be run: ENOENT exits 127, anything else 126, as a shell says it (the task's own failure). */
function commandFailed(ev: SpawnEvents, code: string, message: string): SpawnedProcess {
  ev.started(0, { code, message });
  ev.exit(code === 'ENOENT' ? 127 : 126, null);
  return NO_PROCESS;
}

/** The agent could not set the task up: its command never ran (no Started; see SetupFailure). */
function setupFailed(ev: SpawnEvents, failure: SetupFailure): SpawnedProcess {
  ev.exit(null, null, { setupFailed: failure });
  return NO_PROCESS;
}

/**
 * The errno a failure to make or open a dir carries: makeDirs' and fileRefusal's GaxxErrors say it
 * in details, the walk's own refusals (safe-open.ts) in their cause.
 */
function errnoOf(e: unknown): string {
  const details = e instanceof GaxxError ? e.details : undefined;
  if (typeof details?.errno === 'string') return details.errno;
  const cause = (e as { cause?: { code?: unknown } } | null)?.cause?.code;
  if (typeof cause === 'string') return cause;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EIO';
}

/**
 * The work dir of a sandboxed start, opened (and made) by a walk from its root that follows no
 * symlink (launcher-protocol.ts: SpawnHead.workDir); why not, when it cannot be.
 */
async function openWorkDir(w: { root: string; rel: string }, create: boolean): Promise<FileHandle | SetupFailure> {
  try {
    return await openDirIn(w.root, w.rel, create);
  } catch (e) {
    const path = join(w.root, w.rel);
    const err = fileRefusal(e, 'use', w.rel) as Error;
    return {
      stage: 'work dir',
      errno: errnoOf(err),
      message: `work dir ${path}: ${err.message}`,
      path,
      ...(e instanceof GaxxError ? { refused: e.code } : {}),
    };
  }
}

/** Starts `h` (stdin and fd 3 bytes from `body`); resolves once the process is started or failed. */
export async function spawnOne(h: SpawnHead, body: Buffer, ev: SpawnEvents): Promise<SpawnedProcess> {
  const dir = h.workDir ? await openWorkDir(h.workDir, h.mkdir) : undefined;
  if (dir && !('fd' in dir)) return setupFailed(ev, dir);
  try {
    return await spawnIn(h, body, ev, dir);
  } finally {
    // The child has its own copy of the descriptor by now (or failed to start).
    await dir?.close();
  }
}

/** Errnos of a spawn that are the host's, not the command's: no process, memory or descriptor to start it with. */
const HOST_ERRNOS = new Set(['EAGAIN', 'ENOMEM', 'EMFILE', 'ENFILE', 'EIO']);

/**
 * A process that did not start: the command's failure when its own exec failed (127, 126),
 * else the agent's (setupFailed): a step before the exec failed (the native spawn says so: the
 * work dir, a pipe, the fork, the limits), the host had no process or memory to give, or what
 * did not start was the agent's wrapper (the sandbox, prlimit, systemd-run: `probe` is set and
 * the command itself was found above).
 */
function spawnFailed(h: SpawnHead, ev: SpawnEvents, e: SpawnError | undefined): SpawnedProcess {
  const code = e?.code ?? 'EIO';
  // Through child_process a work dir gone fails the spawn with ENOENT too, as a missing command does.
  const setup = h.probe !== undefined || e?.setup === true || HOST_ERRNOS.has(code) || (code === 'ENOENT' && !existsSync(h.cwd));
  if (!setup) return commandFailed(ev, code, `cannot start ${h.file}: ${code}`);
  const what = h.probe ? `${h.file} (to run ${h.probe.argv0})` : h.file;
  return setupFailed(ev, { stage: 'process', errno: code, message: `cannot start a process for ${what} in ${h.cwd}: ${code}` });
}

async function spawnIn(h: SpawnHead, body: Buffer, ev: SpawnEvents, dir: FileHandle | undefined): Promise<SpawnedProcess> {
  if (h.mkdir && !dir) {
    const refused = await makeDirsAsync(h.cwd, { mode: 0o700 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    if (refused) return setupFailed(ev, { stage: 'work dir', errno: errnoOf(refused), message: `work dir ${h.cwd}: ${refused.message}`, path: h.cwd });
  }
  // A relative command is looked for in the work dir that was opened, not wherever its path leads now.
  const cwd = dir ? `/proc/self/fd/${dir.fd}` : h.cwd;
  const cannot = h.probe ? commandProblem(h.probe.argv0, h.probe.path, cwd) : undefined;
  if (h.probe && cannot) return commandFailed(ev, cannot, `cannot start ${h.probe.argv0}: ${cannot}`);
  const fds = h.fd3Bytes > 0 ? 4 : 3;
  let child: TaskChild;
  try {
    // The sandbox's process itself starts in `/`: the task's work dir is bound and entered inside.
    child = spawnTask(h.file, h.args, {
      cwd: dir ? '/' : h.cwd,
      env: h.env,
      ...(dir ? { fds: WORK_DIR_FD + 1, given: dir.fd } : { fds }),
      status: h.statusFd !== undefined,
      rlimits: h.rlimits,
    });
  } catch (e) {
    // child_process throws the errnos it does not emit (nothing was started).
    return spawnFailed(h, ev, e as SpawnError);
  }
  const pid = child.pid ?? 0;
  let spawnError: SpawnError | undefined;
  child.on('error', (e: SpawnError) => (spawnError = e));
  if (pid === 0) {
    await new Promise((r) => setImmediate(r));
    return spawnFailed(h, ev, spawnError);
  }
  ev.started(pid, undefined, processStartTicks(pid));
  if (h.fd3Bytes > 0) {
    const fd3 = child.stdio[3] as NodeJS.WritableStream & { on(e: 'error', f: () => void): void };
    fd3.on('error', () => undefined);
    fd3.end(body.subarray(0, h.fd3Bytes));
  }
  const status = h.statusFd !== undefined ? (child.stdio[h.statusFd] as Readable | null | undefined) : undefined;
  return watchChild(child, pid, h.sandboxed, body.subarray(h.fd3Bytes), ev, status ?? undefined);
}

/**
 * The most of a sandbox's JSON status, and of the start of its stderr, kept to tell how it ended
 * (sandboxEnd): bwrap writes two short lines there, and its own word on stderr comes before
 * anything of the task's.
 */
const STATUS_BYTES = 4096;

/** Keeps the first STATUS_BYTES of what it is given. */
function keepHead(): { push(d: Buffer): void; text(): string } {
  const chunks: Buffer[] = [];
  let kept = 0;
  return {
    push(d) {
      if (kept >= STATUS_BYTES) return;
      chunks.push(d.subarray(0, STATUS_BYTES - kept));
      kept += Math.min(d.length, STATUS_BYTES - kept);
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}

/**
 * How a sandbox that exited on its own (bwrap, with `--json-status-fd`) ended when its JSON
 * status has no "exit-code": bwrap writes one only once it has exec'd the command, so the
 * command never ran. Its own last word on stderr says why (nothing of the task's came before):
 * an exec that failed inside (a command hidden by the sandbox) is the command's, 127 or 126 as a
 * shell says it; anything else (namespaces, mounts, a fork) is the agent's failure to set the
 * task up. Undefined when the command ran: its exit is the task's.
 */
function sandboxEnd(status: string, stderr: string, code: number): { exit: number } | { setup: SetupFailure } | undefined {
  if (status.includes('"exit-code"')) return undefined;
  const said = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('bwrap: '))
    .at(-1);
  if (said?.startsWith('bwrap: execvp ')) return { exit: /No such file or directory$/.test(said) ? 127 : 126 };
  return {
    setup: { stage: 'sandbox', errno: SANDBOX_FAILED, message: `the sandbox ended (exit ${code}) before it ran the command: ${said ?? 'bwrap said nothing'}` },
  };
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
export function watchChild(child: TaskChild, pid: number, sandboxed: boolean, stdin: Buffer, ev: SpawnEvents, status?: Readable): SpawnedProcess {
  child.stdin?.on('error', () => undefined); // the command may exit without reading its stdin
  child.stdin?.end(stdin);
  child.stdout?.on('data', (d: Buffer) => ev.output('stdout', d));
  child.stderr?.on('data', (d: Buffer) => ev.output('stderr', d));
  // The sandbox's JSON status, and the start of its stderr (bwrap's own word when it never ran the command).
  const said = status ? { status: keepHead(), stderr: keepHead() } : undefined;
  if (said && status) {
    status.on('error', () => undefined);
    status.on('data', (d: Buffer) => said.status.push(d));
    child.stderr?.on('data', (d: Buffer) => said.stderr.push(d));
  }
  let reaped = false;
  let signalled = false;
  // Its process group was killed as it was reaped (task-spawn.ts); the sandbox's init does the
  // same for the whole namespace.
  child.once('exit', (code: number | null, signal: string | null) => {
    reaped = true;
    const r = sandboxed ? sandboxExit(code, signal) : { code, signal };
    drainThenEnd(child, status, () => {
      // Killed (a stop, the OOM killer), bwrap writes no status: the task's end is the kill.
      const never = said && code !== null ? sandboxEnd(said.status.text(), said.stderr.text(), code) : undefined;
      if (never && 'setup' in never) ev.exit(null, null, { setupFailed: never.setup, signalled });
      else ev.exit(never ? never.exit : r.code, never ? null : r.signal, { signalled });
    });
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
function drainThenEnd(child: TaskChild, status: Readable | undefined, done: () => void): void {
  const readers = [child.stdout, child.stderr, status].filter((s) => s !== null && s !== undefined);
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
