/**
 * The task registry: the agent side of exactly-once execution. Running tasks and recently
 * finished ones (bounded by count, bytes and TTL; their stdin and env are dropped) are kept by task id with a bounded replay buffer of
 * their output (per task and globally). An Exec for a running id attaches; one for a finished id
 * replays the stored result; neither runs the command again.
 *
 * With a state dir the registry is journalled (journal.ts), each task from the moment it is taken
 * (before its spawn is asked for): after a restart a finished task is replayed and one that was
 * running, or being started, is reported lost (`lost_in_restart`), never run again.
 * A second run can still happen when: the finished entry aged out (TTL) or was evicted (count
 * bound), the state dir was lost, or the retry goes to another agent.
 */
import { rmdirSync } from 'node:fs';
import { LOST_IN_RESTART, processStartTicks, removeTree } from '../../proto/index.js';
import { startExec, type ExecSink, type ExecSpec, type KillReason } from './exec.js';
import { newJournalId, sweepLostGroup, TaskJournal, type JournalEntry } from './journal.js';
import type { SetupFailure } from './spawn-one.js';
import { entryBytes, Task, type TaskEvent, type TaskExit, type TaskListener } from './task.js';
import { scratchDir } from './task-dirs.js';

export interface TaskRegistryOptions {
  capacity: number;
  retentionMs?: number;
  maxFinished?: number;
  replayBytesPerTask?: number;
  replayBytesTotal?: number;
  /** Bytes finished entries may hold besides their output (argv, paths): a bound beside the count. */
  maxFinishedBytes?: number;
  /** Ids of forgotten signed tasks kept (see TaskRegistry.spentUntil); the oldest go first beyond it. */
  maxSpent?: number;
  /** The agent's data dir: a forgotten task's scratch dir under it (see scratchDir) is removed. */
  dataDir?: string;
  /** Where the journal lives (outside the data dir); none: the registry is in memory only. */
  stateDir?: string;
  /**
   * The clock retention and signature expiry are judged by (Date.now): tests move it past a
   * retention rather than wait for it, so a loaded machine cannot make an entry expire early.
   */
  clock?: () => number;
  /** Observes every task start and finish (metrics). */
  onStart?(): void;
  /** A task's process started (`warm`: in a sandbox started ahead, see warm-pool.ts). */
  onStarted?(warm: boolean): void;
  onExit?(exit: TaskExit): void;
  /** A task was not set up (its command never ran): instead of onExit. */
  onRefused?(spec: ExecSpec, failure: SetupFailure): void;
  onOutput?(stream: 'stdout' | 'stderr', bytes: number): void;
  /** A forgotten task's scratch dir could not be removed (what is left of it stays). */
  onCleanupFailed?(dir: string, e: unknown): void;
  /**
   * The expiry sweep dropped `count` finished entries (the agent collects garbage after a large
   * sweep): called once their scratch dirs are removed, since the removals allocate too.
   */
  onSweep?(count: number): void;
  /** The journal could not be written (a full disk): told once per failing spell (see journalFailure). */
  onJournalError?(e: NodeJS.ErrnoException): void;
  /** Lines of the journal read at start were unreadable (torn) and skipped. */
  onJournalSkipped?(lines: number, path: string): void;
}

/** Running and recently finished tasks by id. */
export class TaskRegistry {
  private readonly tasks = new Map<string, Task>();
  private runningCount = 0;
  private totalBuffered = 0;
  /** Bytes held by finished entries besides their output (see entryBytes). */
  private finishedBytes = 0;
  startedTotal = 0;
  private readonly o: Required<
    Omit<
      TaskRegistryOptions,
      | 'onStart'
      | 'onStarted'
      | 'onExit'
      | 'onRefused'
      | 'onOutput'
      | 'onSweep'
      | 'onCleanupFailed'
      | 'onJournalError'
      | 'onJournalSkipped'
      | 'dataDir'
      | 'stateDir'
      | 'clock'
    >
  > &
    TaskRegistryOptions;
  private readonly sweeper: NodeJS.Timeout;
  private readonly journal: TaskJournal | undefined;
  /**
   * Which agent this is to a caller that sent it work (InfoResponse.journal_id): its journal's
   * identity, kept across restarts; without a journal, one of this process alone (a restart
   * forgets every task, so it is a new agent to its callers).
   */
  readonly journalId: string;
  /** Tasks found running in the journal at start (their remains were killed). */
  readonly lostInRestart: string[] = [];
  /** Scratch dirs of forgotten tasks being removed. */
  private readonly removing = new Set<Promise<void>>();
  /**
   * Forgotten signed tasks: id -> their signature's expiry. A signed block read from the queue
   * (kept there for a day) would otherwise run again under its id once its entry is forgotten.
   */
  private readonly spent = new Map<string, number>();
  private readonly now: () => number;

  constructor(opts: TaskRegistryOptions) {
    this.now = opts.clock ?? Date.now;
    this.o = {
      retentionMs: 10 * 60_000,
      maxFinished: 10_000,
      maxSpent: 500_000,
      replayBytesPerTask: 64 * 1024,
      replayBytesTotal: 64 * 1024 * 1024,
      maxFinishedBytes: 64 * 1024 * 1024,
      ...opts,
    };
    if (opts.stateDir !== undefined) {
      const { journal, id, entries, spent, skipped } = TaskJournal.open(opts.stateDir, (e) => this.o.onJournalError?.(e));
      this.journal = journal;
      this.journalId = id;
      if (skipped > 0) this.o.onJournalSkipped?.(skipped, journal.path);
      const now = this.now();
      for (const [id, until] of spent) if (until > now) this.spent.set(id, until);
      this.recover(entries);
    } else this.journalId = newJournalId();
    this.sweeper = setInterval(() => {
      const dropped = this.prune(true);
      const now = this.now();
      for (const [id, until] of this.spent) if (until <= now) this.spent.delete(id);
      // The sweep's dirs are removed off the event loop, and each removal's completion allocates
      // in this process: told before they end, the agent collected while thousands were still on
      // their way, and what they left stayed resident (bench:footprint, once 10,000 tasks' entries
      // expired: 1.20x the idle RSS, 1.09x told after them, in the same run).
      if (dropped > 0) void Promise.all([...this.removing]).then(() => this.o.onSweep?.(dropped));
    }, 30_000);
    this.sweeper.unref();
  }

  /** Restores the journal's tasks: finished ones replay, running ones are swept and marked lost. */
  private recover(entries: JournalEntry[]): void {
    for (const e of entries) {
      const task = new Task(
        { taskId: e.id, argv: [], env: {}, cwd: '', workRel: '', stdin: Buffer.alloc(0), timeoutMs: 0, outputCapBytes: 0 },
        e.specKey,
        e.onceUntil,
      );
      task.pid = e.pid;
      let exit = e.exit;
      if (!exit) {
        sweepLostGroup(e);
        exit = {
          code: -1,
          signal: '',
          durationMs: Date.now() - e.startedAt,
          truncated: false,
          outputCapped: false,
          stdoutBytes: 0,
          stderrBytes: 0,
          reason: LOST_IN_RESTART,
          // No pid: the agent died after it asked for the spawn and before it heard of the
          // process; the launcher may have started it (and ended it as the agent went).
          error:
            e.pid > 0
              ? 'the agent stopped while the task ran; what was left of it was killed at restart'
              : 'the agent stopped while it was starting the task; it may have started, so it is not started again',
        };
        this.journal?.finished(e.id, exit);
        this.lostInRestart.push(e.id);
      }
      task.finish(exit);
      if (e.finishedAt) task.finishedAt = e.finishedAt;
      for (const c of e.output ?? []) this.remember(task, c.stream, c.data);
      task.dropped ||= e.dropped ?? false;
      this.tasks.set(e.id, task);
    }
    this.prune(true);
    // At start a journal that cannot be written refuses the start (the caller says why).
    this.journal?.rewrite(this.journalEntries(), this.spent, this.now());
  }

  /** Why the journal could not be written, while it is behind the registry; undefined when whole. */
  get journalFailure(): NodeJS.ErrnoException | undefined {
    return this.journal?.failure;
  }

  /** The journal's path (none without a state dir). */
  get journalPath(): string | undefined {
    return this.journal?.path;
  }

  /** Writes the journal anew from what the registry holds now; true when it is whole again. */
  retryJournal(): boolean {
    return this.journal?.tryRewrite(this.journalEntries(), this.spent) ?? true;
  }

  private journalEntries(): JournalEntry[] {
    return [...this.tasks.entries()].map(([id, t]) => ({
      id,
      specKey: t.specKey,
      pid: t.pid,
      startTicks: t.startTicks,
      startedAt: t.startedAt,
      ...(t.onceUntil !== undefined ? { onceUntil: t.onceUntil } : {}),
      ...(t.exit ? { exit: t.exit, finishedAt: t.finishedAt, output: t.buffer, dropped: t.dropped } : {}),
    }));
  }

  get running(): number {
    return this.runningCount;
  }

  get capacity(): number {
    return this.o.capacity;
  }

  /**
   * Until when (ms) the id of a signed task that ran here and was forgotten may not run again:
   * its signature's expiry; undefined when it may (never ran, unsigned, or expired since).
   */
  spentUntil(taskId: string, now = this.now()): number | undefined {
    const until = this.spent.get(taskId);
    if (until === undefined || until > now) return until;
    this.spent.delete(taskId);
    return undefined;
  }

  get(taskId: string): Task | undefined {
    const t = this.tasks.get(taskId);
    if (t && !t.running && t.finishedAt < this.now() - this.o.retentionMs) {
      this.forget(taskId, t);
      return undefined;
    }
    return t;
  }

  /** Whether a new task may start now (the concurrency cap). */
  hasRoom(): boolean {
    return this.runningCount < this.o.capacity;
  }

  /**
   * Starts a new task (the caller checked get() and hasRoom()); `first` subscribes before any
   * event. `specKey` identifies the spec for later attach and replay (see Task.specKey).
   * Undefined, and nothing started, when the journal could not record it (journalFailure says why).
   */
  start(spec: ExecSpec, first: TaskListener, specKey?: string, onceUntil?: number): Task | undefined {
    const task = new Task(spec, specKey, onceUntil);
    // Journalled before the spawn is asked for: from then on the task may run (the launcher may
    // start it before the agent hears so), and a restart must find it lost, not never sent. A
    // task the journal cannot record is not started (fail closed).
    if (this.journal && !this.journal.starting({ id: spec.taskId, specKey: task.specKey, startedAt: task.startedAt, onceUntil: task.onceUntil }))
      return undefined;
    task.listeners.add(first);
    this.tasks.set(spec.taskId, task);
    this.runningCount++;
    this.startedTotal++;
    this.o.onStart?.();
    const emit = (ev: TaskEvent) => {
      for (const l of task.listeners) l(ev);
    };
    const sink: ExecSink = {
      started: (pid, startTicks, warm) => {
        task.pid = pid;
        if (pid > 0) this.o.onStarted?.(warm === true);
        task.startTicks = pid > 0 ? (startTicks ?? processStartTicks(pid)) : 0;
        // No process (its command could not be run): the line written ahead says as much.
        if (pid > 0)
          this.journal?.started({
            id: spec.taskId,
            specKey: task.specKey,
            pid,
            startTicks: task.startTicks,
            startedAt: task.startedAt,
            onceUntil: task.onceUntil,
          });
        emit({ started: { pid, journalId: this.journalId } });
      },
      output: (stream, data) => {
        this.o.onOutput?.(stream, data.length);
        this.remember(task, stream, data);
        emit(stream === 'stdout' ? { stdout: data } : { stderr: data });
      },
      exit: (exit) => {
        this.runningCount--;
        task.finish(exit);
        this.finishedBytes += entryBytes(task);
        this.journal?.finished(spec.taskId, exit, task.buffer, task.dropped);
        this.o.onExit?.(exit);
        emit({ exit });
        task.listeners.clear();
        // A finished entry is kept for replay only: the process handle (and the closures of its
        // timers, output and launcher state) may go now, not when the entry expires.
        task.handle = undefined;
        this.prune();
      },
      // Its command never ran (the agent could not set it up): no result is held, so the same
      // id runs when asked again (here, once the agent can run it, or on another agent), and
      // a signed task's id is not spent.
      refused: (error, failure) => {
        this.runningCount--;
        if (this.tasks.get(spec.taskId) === task) this.tasks.delete(spec.taskId);
        // Written ahead, it never ran (before its process started, or in a sandbox that then
        // could not set it up): the journal forgets it, as a restart must.
        this.journal?.unstarted(spec.taskId);
        task.refuse(error);
        this.o.onRefused?.(spec, failure);
        emit({ refused: error });
        task.listeners.clear();
        task.handle = undefined;
        this.removeUnstarted(spec);
      },
    };
    try {
      task.handle = startExec(spec, sink);
    } catch (e) {
      // Nothing was asked of the launcher: the task is not there, here or in the journal.
      this.runningCount--;
      this.startedTotal--;
      this.tasks.delete(spec.taskId);
      this.journal?.unstarted(spec.taskId);
      throw e;
    }
    return task;
  }

  /**
   * The scratch dir a task that never ran may have got (a sandbox that failed after it was made):
   * removed when empty, at once, so that a retry under the same id (which makes it anew) never
   * races a removal still on its way; one that holds anything stays.
   */
  private removeUnstarted(spec: ExecSpec): void {
    if (this.o.dataDir === undefined || spec.cwd !== scratchDir(this.o.dataDir, spec.taskId)) return;
    try {
      rmdirSync(spec.cwd);
    } catch {
      // never made (the usual case), or not empty
    }
  }

  /** Kills a running task's group; false when no such task is running. */
  cancel(taskId: string, reason: KillReason = 'cancelled'): boolean {
    const t = this.tasks.get(taskId);
    if (!t?.running) return false;
    t.handle?.kill(reason);
    return true;
  }

  /** Waits up to `graceMs` for running tasks, then kills the rest and waits for them to go. */
  async shutdown(graceMs: number): Promise<void> {
    clearInterval(this.sweeper);
    const running = [...this.tasks.values()].filter((t) => t.running);
    const all = Promise.all(running.map((t) => t.done()));
    const timer = new Promise<void>((r) => setTimeout(r, graceMs).unref());
    await Promise.race([all, timer]);
    for (const t of running) if (t.running) t.handle?.kill('shutdown', 1000);
    await all;
    this.journal?.close();
  }

  private remember(task: Task, stream: 'stdout' | 'stderr', data: Buffer): void {
    task.buffer.push({ stream, data });
    task.bufferedBytes += data.length;
    this.totalBuffered += data.length;
    while (task.bufferedBytes > this.o.replayBytesPerTask && task.buffer.length > 0) {
      const old = task.buffer.shift() as { data: Buffer };
      task.bufferedBytes -= old.data.length;
      this.totalBuffered -= old.data.length;
      task.dropped = true;
    }
    // Over the global budget: drop the output (not the result) of the oldest finished tasks.
    for (const t of this.tasks.values()) {
      if (this.totalBuffered <= this.o.replayBytesTotal) break;
      if (t.running || t.bufferedBytes === 0) continue;
      this.totalBuffered -= t.bufferedBytes;
      t.buffer = [];
      t.bufferedBytes = 0;
      t.dropped = true;
    }
  }

  private forget(id: string, t: Task): void {
    this.totalBuffered -= t.bufferedBytes;
    if (!t.running) this.finishedBytes -= entryBytes(t);
    this.tasks.delete(id);
    if (t.onceUntil !== undefined && t.onceUntil > this.now()) {
      this.spent.delete(id);
      this.spent.set(id, t.onceUntil);
      // Beyond the bound the oldest go (a Map iterates in insertion order).
      if (this.spent.size > this.o.maxSpent) this.spent.delete(this.spent.keys().next().value as string);
    }
    if (this.o.dataDir !== undefined && t.spec.cwd === scratchDir(this.o.dataDir, id)) {
      // Off the event loop, at any depth the task made it (removeTree); a dir that cannot go
      // stays, and is told of.
      const removal: Promise<void> = removeTree(t.spec.cwd)
        .catch((e: unknown) => this.o.onCleanupFailed?.(t.spec.cwd, e))
        .finally(() => this.removing.delete(removal));
      this.removing.add(removal);
    }
  }

  /**
   * Forgets finished tasks past the TTL or beyond the count bound, oldest first. The eager pass
   * (after each exit) stops at the first entry it keeps, since entries are in start order; the
   * sweeper's full pass catches what that skips.
   */
  private prune(full = false): number {
    const cutoff = this.now() - this.o.retentionMs;
    let finished = this.tasks.size - this.runningCount;
    let dropped = 0;
    for (const [id, t] of this.tasks) {
      if (t.running) continue;
      if (t.finishedAt >= cutoff && finished <= this.o.maxFinished && this.finishedBytes <= this.o.maxFinishedBytes) {
        if (full) continue;
        break;
      }
      this.forget(id, t);
      finished--;
      dropped++;
    }
    // The spent ids go into the rewrite too: a compaction must not free them.
    if (this.journal?.wantsCompaction(this.tasks.size + this.spent.size)) this.journal.tryRewrite(this.journalEntries(), this.spent);
    return dropped;
  }
}
