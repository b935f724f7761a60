/**
 * The agent's side of the task launcher (launcher-main.ts): starts it on first use with an empty
 * environment (the agent's token never reaches it), numbers tasks, sends SPAWN/SIGNAL frames and
 * routes STARTED/STDOUT/STDERR/EXIT frames back. If the launcher dies, its running tasks end with
 * an error and the next task starts a new one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { counted, GaxxError } from '../../proto/index.js';
import { encodeFrame, FRAME, FrameDecoder, type Frame, type SpawnHead, type WarmTemplate } from './launcher-protocol.js';
import { spawnOne, type SetupFailure, type SpawnEvents, type SpawnedProcess } from './spawn-one.js';

/** Starts task processes; a Launcher or the in-process fallback. */
export interface TaskRunner {
  spawn(head: SpawnHead, body: Buffer, ev: SpawnEvents): SpawnedProcess;
  /**
   * Gets ready for the first task ahead of it: a launcher starts its process, and with `warm`
   * (exec.ts startingTemplate) the sandboxes its tasks will take (warm-pool.ts prefill).
   */
  prepare(warm?: WarmTemplate): void;
  close(): void;
}

/**
 * The launcher's script: launcher-main.js beside this module in the tsc build, or
 * gaxx-launcher.mjs beside the bundled agent (installed and uploaded together with it).
 */
const MAIN = ['./launcher-main.js', './gaxx-launcher.mjs'].map((p) => fileURLToPath(new URL(p, import.meta.url))).find((p) => existsSync(p));

/** A long-lived launcher child process. */
export class Launcher implements TaskRunner {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly tasks = new Map<number, SpawnEvents>();
  private corked = false;

  constructor(private readonly onCrash: (detail: string) => void = () => undefined) {}

  /** Whether the launcher's script is where the agent expects it (the built tree). */
  static available(): boolean {
    return MAIN !== undefined;
  }

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    // Few threads: RLIMIT_NPROC counts the agent user's threads too, and the launcher needs one
    // helper thread at most. A small young generation (1 MiB semi-spaces; the agent's are capped
    // too, AGENT_NODE_FLAGS): after a burst of tasks V8 keeps grown semi-spaces committed.
    if (MAIN === undefined) throw new GaxxError('INTERNAL', 'the task launcher script is missing');
    // GAXX_SPAWN=node: the launcher forks tasks through child_process (task-spawn.ts).
    const spawnChoice = process.env.GAXX_SPAWN === 'node' ? { GAXX_SPAWN: 'node' } : {};
    const child = spawn(process.execPath, ['--max-old-space-size=64', '--max-semi-space-size=1', '--v8-pool-size=1', MAIN], {
      env: { UV_THREADPOOL_SIZE: '1', ...spawnChoice },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const decoder = new FrameDecoder();
    child.stdout?.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) this.dispatch(f);
    });
    child.stdin?.on('error', () => undefined);
    // It could not be started (EAGAIN, ENOMEM...): the tasks sent to it never reached a launcher,
    // so none ran; the next task tries again.
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (this.child !== child || child.pid !== undefined) return;
      this.child = undefined;
      this.unstarted(this.launcherFailure(e));
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      const lost = [...this.tasks.values()];
      this.tasks.clear();
      if (lost.length > 0) this.onCrash(`launcher exited (${signal ?? code}) with ${counted(lost.length, 'task')} running`);
      for (const ev of lost)
        ev.exit(null, 'SIGKILL', { lost: `the agent's task launcher exited (${signal ?? code}) while the task ran, and the task with it` });
    });
    this.child = child;
    return child;
  }

  private dispatch(f: Frame): void {
    const ev = this.tasks.get(f.id);
    if (!ev) return;
    if (f.type === FRAME.STDOUT) ev.output('stdout', f.body);
    else if (f.type === FRAME.STDERR) ev.output('stderr', f.body);
    else if (f.type === FRAME.STARTED) {
      const h = f.head as { pid: number; error?: { code: string; message: string }; startTicks?: number; warm?: boolean };
      ev.started(h.pid, h.error, h.startTicks, h.warm === true);
    } else if (f.type === FRAME.EXIT) {
      const h = f.head as { code: number | null; signal: string | null; signalled?: boolean; setupFailed?: SetupFailure };
      this.tasks.delete(f.id);
      ev.exit(h.code, h.signal, { signalled: h.signalled === true, ...(h.setupFailed ? { setupFailed: h.setupFailed } : {}) });
    }
  }

  /**
   * Starts the launcher now, so that the first task does not wait for a Node process to boot
   * (about 60 ms, and on a new fleet every agent's first task pays it at once). A launcher
   * that dies is started again by the next task, as before.
   */
  prepare(warm?: WarmTemplate): void {
    const child = this.ensure();
    if (warm) this.send(child, encodeFrame(FRAME.WARM, 0, warm));
  }

  /** Why tasks cannot start while the launcher cannot: its errno, said as the agent's failure. */
  private launcherFailure(e: unknown): SetupFailure {
    const errno = (e as NodeJS.ErrnoException | null)?.code ?? 'EIO';
    return { stage: 'launcher', errno, message: `the agent's task launcher cannot be started: ${(e as Error | null)?.message ?? String(e)}` };
  }

  /** Ends every task sent to a launcher that never started: none of them ran. */
  private unstarted(why: SetupFailure): void {
    const never = [...this.tasks.values()];
    this.tasks.clear();
    for (const ev of never) ev.exit(null, null, { setupFailed: why });
  }

  spawn(head: SpawnHead, body: Buffer, ev: SpawnEvents): SpawnedProcess {
    let child: ChildProcess;
    try {
      child = this.ensure();
    } catch (e) {
      // Its script is missing, or no process could be made for it: told as the task's Exec ends,
      // after this call returns (the caller's handle is not there yet).
      const why = this.launcherFailure(e);
      process.nextTick(() => ev.exit(null, null, { setupFailed: why }));
      return { signal: () => undefined };
    }
    const id = this.nextId++;
    if (this.nextId > 0xfffffff0) this.nextId = 1;
    this.tasks.set(id, ev);
    this.send(child, encodeFrame(FRAME.SPAWN, id, head, body));
    return {
      signal: (phase) => {
        if (this.tasks.has(id) && this.child) this.send(this.child, encodeFrame(FRAME.SIGNAL, id, { phase }));
      },
    };
  }

  /** Frames of one tick go to the launcher in one write (tasks often arrive together). */
  private send(child: ChildProcess, frame: Buffer): void {
    const stdin = child.stdin;
    if (!stdin) return;
    if (!this.corked) {
      this.corked = true;
      stdin.cork();
      process.nextTick(() => {
        this.corked = false;
        stdin.uncork();
      });
    }
    stdin.write(frame);
  }

  /** Ends the launcher; it kills whatever still runs. */
  close(): void {
    this.child?.stdin?.end();
  }
}

/** Spawns in this process (no launcher): for unit tests and tools that run tasks directly. */
export const inProcessRunner: TaskRunner = {
  spawn(head, body, ev) {
    let proc: SpawnedProcess | undefined;
    let early: 'term' | 'kill' | undefined;
    void spawnOne(head, body, ev).then((p) => {
      proc = p;
      if (early) p.signal(early);
    });
    return { signal: (phase) => (proc ? proc.signal(phase) : (early = phase)) };
  },
  prepare: () => undefined,
  close: () => undefined,
};
