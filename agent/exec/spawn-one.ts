/**
 * Starts one task process and reports its life; used inside the launcher process (and in-process
 * where no launcher runs, as in unit tests). Kept free of the agent's modules so the launcher
 * stays small and its event loop does nothing else; processes start through task-spawn.ts.
 */
import { mkdir, readFile, type FileHandle } from 'node:fs/promises';
import { fileRefusal } from '../files/fs-refusal.js';
import { openDirIn } from '../files/safe-open.js';
import { commandExists } from './command-exists.js';
import { processStartTicks } from '../../proto/light.js';
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
  /** `lost`: why the task's end is unknown (the launcher died with it), when it is. */
  exit(code: number | null, signal: string | null, lost?: string): void;
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
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}

/**
 * Asks a sandboxed task to end: SIGTERM to the process group of the task's main process (bwrap
 * -> the namespace's init -> the task, which leads its own session). The init itself ignores
 * SIGTERM from outside, and bwrap does not forward it.
 */
async function termSandboxed(outer: number): Promise<void> {
  for (const init of await childrenOf(outer)) {
    for (const task of await childrenOf(init)) if (!trySignal(-task, 'SIGTERM')) trySignal(task, 'SIGTERM');
  }
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
  if (h.mkdir && !dir) await mkdir(h.cwd, { recursive: true, mode: 0o700 }).catch(() => undefined);
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
 * Feeds a started child its stdin, reports its output and end to `ev`, and returns its
 * controls; shared by cold starts (spawnOne) and sandboxes started ahead (warm-pool.ts).
 */
export function watchChild(child: TaskChild, pid: number, sandboxed: boolean, stdin: Buffer, ev: SpawnEvents): SpawnedProcess {
  child.stdin?.on('error', () => undefined); // the command may exit without reading its stdin
  child.stdin?.end(stdin);
  child.stdout?.on('data', (d: Buffer) => ev.output('stdout', d));
  child.stderr?.on('data', (d: Buffer) => ev.output('stderr', d));
  // A task owns nothing after its main process ends: its group goes (the sandbox's init does
  // the same for the whole namespace).
  child.on('exit', () => trySignal(-pid, 'SIGKILL'));
  child.on('close', (code, signal) => {
    const r = sandboxed ? sandboxExit(code, signal) : { code, signal };
    ev.exit(r.code, r.signal);
  });
  return {
    signal(phase) {
      if (phase === 'kill') {
        trySignal(-pid, 'SIGKILL');
        trySignal(pid, 'SIGKILL');
      } else if (sandboxed) void termSandboxed(pid);
      else trySignal(-pid, 'SIGTERM');
    },
  };
}
