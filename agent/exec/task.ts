/** One task of the registry (tasks.ts): its process, its replay buffer and its listeners. */
import type { ExecEvent, Exit, GaxxError } from '../../proto/index.js';
import type { ExecHandle, ExecSink, ExecSpec } from './exec.js';

/** How a task ended, as its process's end is reported. */
export type TaskExit = Parameters<ExecSink['exit']>[0];

/**
 * What a task's listeners hear: its Exec events, or, instead of an exit, `refused`: the agent
 * could not set it up (exec.ts setupError), its command never ran, and the Exec ends with that
 * error.
 */
export type TaskEvent = ExecEvent & { refused?: GaxxError };

/** Receives a task's events from the moment of subscription on. */
export type TaskListener = (ev: TaskEvent) => void;

/** The stdin of every finished task (one shared empty buffer, not one allocation per entry). */
const NO_BYTES = Buffer.alloc(0);

/** One task: its spec key, process, replay buffer and listeners. */
export class Task {
  /**
   * What the task was started for: the digest of its (signed) spec. Only a request with the same
   * key may attach to it or have its result replayed; kept after the spec's stdin and env go.
   */
  readonly specKey: string;
  pid = 0;
  startTicks = 0;
  readonly startedAt = Date.now();
  exit: TaskExit | undefined;
  /** Why it was not set up (its command never ran), when it was not: it has no exit then. */
  refusal: GaxxError | undefined;
  finishedAt = 0;
  /** Buffered output (the tail, when more than the per-task budget was produced). */
  buffer: Array<{ stream: 'stdout' | 'stderr'; data: Buffer }> = [];
  bufferedBytes = 0;
  /** True when the buffer no longer holds all of the output. */
  dropped = false;
  readonly listeners = new Set<TaskListener>();
  handle: ExecHandle | undefined;
  private exited: Array<() => void> = [];

  constructor(
    readonly spec: ExecSpec,
    specKey?: string,
    /** Signed work: its signature's expiry (ms), until which its id may not run again here. */
    readonly onceUntil?: number,
  ) {
    this.specKey = specKey ?? JSON.stringify(spec.argv);
  }

  get running(): boolean {
    return this.exit === undefined && this.refusal === undefined;
  }

  /** Resolves when the task has exited. */
  done(): Promise<void> {
    return this.running ? new Promise((r) => this.exited.push(r)) : Promise.resolve();
  }

  /** Marks the task finished and wakes done() waiters; its stdin and env are dropped (they may hold secrets). */
  finish(exit: TaskExit): void {
    this.exit = exit;
    this.ended();
  }

  /** Marks the task refused (not set up: see TaskEvent), as finish() does its end. */
  refuse(error: GaxxError): void {
    this.refusal = error;
    this.ended();
  }

  private ended(): void {
    Object.assign(this.spec, { stdin: NO_BYTES, env: {} });
    this.finishedAt = Date.now();
    for (const r of this.exited.splice(0)) r();
  }

  /** The stored result as events: output from the buffer, then Exit (truncated when output was dropped). */
  replayEvents(): ExecEvent[] {
    const evs: ExecEvent[] = this.buffer.map((c) => (c.stream === 'stdout' ? { stdout: c.data } : { stderr: c.data }));
    if (this.exit) evs.push({ exit: { ...this.exit, truncated: this.exit.truncated || this.dropped } as Exit });
    return evs;
  }
}

/** What a finished entry holds besides its output: its argv, key, ids and paths (approximate bytes). */
export function entryBytes(t: Task): number {
  return t.spec.argv.reduce((n, a) => n + a.length + 8, 0) + t.specKey.length + t.spec.taskId.length + t.spec.cwd.length + 512;
}
