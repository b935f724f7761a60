/**
 * Starts a task's process (or a warm sandbox, warm-pool.ts) for the launcher: through
 * gaxx-spawn.node, a vfork spawn that copies nothing of the launcher and sets the task's
 * rlimits itself (native/gaxx-spawn.c), when the build made it and it loads on this host; else
 * through child_process, which forks, with prlimit(1) exec'd first for the rlimits. Both give the
 * same child: a new session and process group, the work dir, exactly the env given, every signal
 * at its default and none blocked, the rlimits, and `fds` pipes as its fds 0.. (the launcher
 * writes fds 0, 3 and 4 and reads fds 1 and 2). When it ends, its process group is killed with it
 * (a task owns nothing after its end): by the native spawn before it reaps the process, while its
 * pid is still its own; through child_process in the 'exit' event, which Node emits in the same
 * callback that reaped it (a freed pid is handed out again only once the kernel's counter has
 * gone round pid_max). Its pid or group is never signalled later.
 *
 * GAXX_SPAWN=node in the launcher's environment (the agent passes it on) makes it fork as before:
 * for comparing the two, and for a host where the module misbehaves.
 */
import { spawn as forkSpawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { constants as osc } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { resolveCommand } from './command-exists.js';

/** A started task process, as the launcher uses it (a ChildProcess is one). */
export interface TaskChild extends EventEmitter {
  /** Undefined when the spawn failed ('error' follows, with the errno's code). */
  readonly pid?: number | undefined;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly stdio: ReadonlyArray<Writable | Readable | null | undefined>;
}

/** Resource limits a task starts with (limits.ts), and the prlimit that sets them where the spawn cannot. */
export interface TaskRlimits {
  prlimit: string;
  /** RLIMIT_CPU soft and hard, seconds. */
  cpu?: [number, number] | undefined;
  /** RLIMIT_AS, bytes. */
  as?: number | undefined;
  /** RLIMIT_NPROC. */
  nproc?: number | undefined;
}

/** The prlimit(1) prefix that sets `r` and execs what follows it. */
export function prlimitArgv(r: TaskRlimits): string[] {
  const opts: string[] = [];
  if (r.cpu) opts.push(`--cpu=${r.cpu[0]}:${r.cpu[1]}`);
  if (r.as !== undefined) opts.push(`--as=${r.as}`);
  if (r.nproc !== undefined) opts.push(`--nproc=${r.nproc}`);
  return [r.prlimit, ...opts, '--'];
}

/** The native module's form: [kind (0 cpu, 1 as, 2 nproc), soft, hard]. */
function nativeRlimits(r: TaskRlimits | undefined): Array<[number, number, number]> {
  if (!r) return [];
  const out: Array<[number, number, number]> = [];
  if (r.cpu) out.push([0, r.cpu[0], r.cpu[1]]);
  if (r.as !== undefined) out.push([1, r.as, r.as]);
  if (r.nproc !== undefined) out.push([2, r.nproc, r.nproc]);
  return out;
}

export interface TaskSpawnOptions {
  cwd: string;
  env: Record<string, string>;
  /** Pipes for fds 0 .. fds-1 (3 to 5); the last is `given` instead, when set. */
  fds: number;
  /**
   * A descriptor the child gets as its fd `fds - 1` (a copy: the caller closes its own), such as
   * the work dir the sandbox binds by descriptor (spawn-one.ts).
   */
  given?: number | undefined;
  /**
   * One more pipe after them (fd `fds`), which the launcher reads: the sandbox's JSON status
   * (`bwrap --json-status-fd`, spawn-one.ts), which says whether it got as far as the command.
   */
  status?: boolean | undefined;
  /** Set before the process execs (see TaskRlimits). */
  rlimits?: TaskRlimits | undefined;
  /** Fork through child_process even where the native spawn is there (tests compare the two). */
  fork?: boolean;
}

interface SpawnModule {
  spawn(
    file: string,
    argv: string[],
    env: string[],
    cwd: string,
    modes: string,
    rlimits: Array<[number, number, number]>,
    onExit: (code: number | null, signal: number | null) => void,
    given?: number,
  ): number[] | number;
  usable(): number;
  trim(): number;
}

/** Beside this module: dist/agent/exec/ of the tsc build, or dist/bundle/ beside the bundled launcher. */
const MODULE_PATH = fileURLToPath(new URL('./gaxx-spawn.node', import.meta.url));

function load(): { native?: SpawnModule; why: string } {
  if (process.env.GAXX_SPAWN === 'node') return { why: 'GAXX_SPAWN=node' };
  if (!existsSync(MODULE_PATH)) return { why: `${MODULE_PATH} was not built` };
  try {
    const native = createRequire(import.meta.url)(MODULE_PATH) as SpawnModule;
    const err = native.usable();
    if (err !== 0) return { why: `pidfds unavailable (${getSystemErrorName(-err)})` };
    return { native, why: 'vfork (gaxx-spawn.node)' };
  } catch (e) {
    return { why: `${MODULE_PATH} does not load here: ${(e as Error).message.split('\n')[0]}` };
  }
}

/** Loaded on first use: the launcher's first spawn, or the first releaseFreeHeap() (the agent's, after a large sweep). */
let loaded: ReturnType<typeof load> | undefined;

/** How tasks are spawned here, and why: 'vfork (gaxx-spawn.node)' or why not. */
export function spawnMethod(): { native: boolean; detail: string } {
  loaded ??= load();
  return { native: loaded.native !== undefined, detail: loaded.why };
}

/**
 * Gives the free memory inside glibc's heaps back to the system (malloc_trim(0), through the
 * native module): glibc returns on its own only what is free at the top of a heap, so what a
 * burst of tasks freed below memory still in use stays resident. False where the module is not
 * loaded here (GAXX_SPAWN=node, not built) or there was nothing to give back.
 */
export function releaseFreeHeap(): boolean {
  loaded ??= load();
  return loaded.native?.trim() === 1;
}

/** Signal names by number (also the sandbox's 128+N exit codes, spawn-one.ts). */
export const SIGNAL_NAMES = new Map(Object.entries(osc.signals).map(([name, n]) => [n, name as NodeJS.Signals]));
const MODES = 'wrrww';

/** Or'ed by gaxx-spawn.node into an errno met before the command's exec (gaxx-spawn.c: SETUP_FAILED). */
const SETUP_FAILED = 0x10000;

/**
 * A spawn's failure ('error', with the errno's code): `setup` when it came before the command's
 * exec (pipes, the fork, the work dir, the limits), so the task could not be set up, rather than
 * the command could not be run (spawn-one.ts tells the two apart).
 */
export type SpawnError = NodeJS.ErrnoException & { setup?: boolean };

/** The child's fd modes for `o` (see MODES; 'g' the given descriptor). */
function modesOf(o: TaskSpawnOptions): string {
  const base = o.given === undefined ? MODES.slice(0, o.fds) : `${MODES.slice(0, o.fds - 1)}g`;
  return o.status === true ? `${base}r` : base;
}

/** A process started by gaxx-spawn.node, with ChildProcess's events: 'exit', then 'close' once its output pipes are drained. */
class NativeChild extends EventEmitter implements TaskChild {
  pid: number | undefined;
  stdio: Array<Socket | null> = [];
  private openReaders = 0;
  private exit: [number | null, NodeJS.Signals | null] | undefined;

  get stdin(): Socket | null {
    return this.stdio[0] ?? null;
  }
  get stdout(): Socket | null {
    return this.stdio[1] ?? null;
  }
  get stderr(): Socket | null {
    return this.stdio[2] ?? null;
  }

  start(file: string, args: string[], o: TaskSpawnOptions, native: SpawnModule): void {
    const env = Object.entries(o.env).map(([k, v]) => `${k}=${v}`);
    const modes = modesOf(o);
    const given = o.given ?? -1;
    // C strings end at a NUL: a command, argument, env entry or work dir holding one would be cut
    // short, so it is refused (child_process refuses them too; the agent already does at its edge).
    const found = [file, o.cwd, ...args, ...env].some((x) => x.includes('\0')) ? { code: 'EINVAL' } : resolveCommand(file, o.env.PATH, o.cwd);
    const limits = nativeRlimits(o.rlimits);
    let r: number[] | number =
      typeof found === 'string' ? native.spawn(found, [file, ...args], env, o.cwd, modes, limits, (c, s) => this.exited(c, s), given) : -1;
    if (r === -osc.errno.ENOEXEC && typeof found === 'string') {
      // No #! line: run it with sh, as execvp does.
      r = native.spawn('/bin/sh', ['/bin/sh', found, ...args], env, o.cwd, modes, limits, (c, s) => this.exited(c, s), given);
    }
    if (typeof r === 'number') {
      const setup = typeof found === 'string' && (-r & SETUP_FAILED) !== 0;
      const code = typeof found === 'string' ? getSystemErrorName(-(-r & ~SETUP_FAILED)) : found.code;
      const e = Object.assign(new Error(`spawn ${file} ${code}`), { code, setup, syscall: `spawn ${file}`, path: file, spawnargs: args });
      process.nextTick(() => this.emit('error', e));
      return;
    }
    this.pid = r[0];
    this.stdio = r.slice(1).map((fd, i) => {
      if (modes[i] === 'g') return null;
      const reads = modes[i] === 'r';
      const s = new Socket({ fd, readable: reads, writable: !reads });
      if (reads) {
        this.openReaders++;
        s.once('close', () => {
          this.openReaders--;
          this.maybeClose();
        });
      }
      return s;
    });
  }

  private exited(code: number | null, signal: number | null): void {
    this.exit = [code, signal === null ? null : (SIGNAL_NAMES.get(signal) ?? null)];
    this.emit('exit', ...this.exit);
    // As a ChildProcess does: output nobody reads is let through, so that 'close' comes.
    for (const s of this.stdio) if (s?.readable && s.readableFlowing === null) s.resume();
    this.maybeClose();
  }

  private maybeClose(): void {
    if (this.exit && this.openReaders === 0) this.emit('close', ...this.exit);
  }
}

/** Starts `file` (searched in opts.env.PATH when it names no path) with `args`. */
export function spawnTask(file: string, args: string[], opts: TaskSpawnOptions): TaskChild {
  loaded ??= load();
  if (loaded.native && opts.fork !== true) {
    const child = new NativeChild();
    child.start(file, args, opts, loaded.native);
    return child;
  }
  const argv = opts.rlimits ? [...prlimitArgv(opts.rlimits), file, ...args] : [file, ...args];
  const stdio: Array<number | 'pipe'> = Array.from({ length: opts.fds }, (_, i) => (opts.given !== undefined && i === opts.fds - 1 ? opts.given : 'pipe'));
  if (opts.status === true) stdio.push('pipe');
  const child = forkSpawn(argv[0] as string, argv.slice(1), { cwd: opts.cwd, env: opts.env, detached: true, stdio });
  // Its group goes with it (the native spawn does this before it reaps; see above).
  child.once('exit', () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // ESRCH: nothing was left in the group
    }
  });
  return child;
}
