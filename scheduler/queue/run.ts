/**
 * What `gaxx run` does with the queue: enqueue the run into its own queue, make sure something
 * will work on it (a daemon's heartbeat, or else a worker in this process that serves THIS run
 * only), and wait for every task's result on the run's stream. A run always finishes on its own,
 * and every task gets a result (`unknown` when its outcome cannot be known).
 *
 * Bounded: the wait ends at `timeoutMs` (DEADLINE_EXCEEDED), when Redis stays unreachable for
 * `redisGoneMs` (REDIS_UNAVAILABLE), or on cancel; each ends within about a second. Tasks still
 * without a result are reported `unknown`; their jobs stay in the run's queue (a daemon, or
 * `gaxx run --resume ID`, finishes them) unless they were withdrawn.
 *
 * Cancelling (`cancel` aborts, e.g. Ctrl-C): the run's cancel flag is set in Redis for every
 * worker (daemon or in-process; the in-process one is also told directly), tasks no worker has
 * taken are withdrawn and published as `cancelled`, running ones are Cancelled on their agents
 * by the workers and report `cancelled` themselves. The wait then returns what arrived within
 * `cancelGraceMs` (at once when Redis is unreachable).
 *
 * A failure after enqueue withdraws the run's jobs before it is reported.
 */
import type { Cluster, Redis } from 'ioredis';
import { GaxxError, type ErrorCode, type TaskSigner } from '../../proto/index.js';
import type { AgentConnector } from '../dispatch/agent-pool.js';
import type { RetryPolicy } from '../dispatch/retry-policy.js';
import { expireAbandonedRuns } from './abandoned.js';
import { isCancelled, requestCancel } from './cancel.js';
import { HEARTBEAT_KEY } from '../daemon/daemon.js';
import { TaskQueue, type EnqueuedRun } from './queue.js';
import { RECONNECT_MS, redisError, type RedisSettings } from '../redis/redis.js';
import { failedAtWaitEnd } from './failed-jobs.js';
import { runComplete, runHasEnded } from './run-control.js';
import { publishResult, resultAtWaitEnd, runDoneKey, taskResult, type TaskResult } from './results.js';
import { countOutcome, getRunRecord, type OutcomeCounts, type RunFailure, type RunRecord } from './run-index.js';
import { loadRunMeta, runTasksKey, type RunMeta } from './runs.js';
import { jobIdFor, type RunSpecInput } from './task.js';
import { waitForRun, type RunResults, type WaitOptions } from './wait.js';
import { endedBy, endsWaitEarly, WriteHealth, type EndedEarly } from './write-health.js';
import { SchedulerWorker, type WorkerLog } from '../dispatch/worker.js';
import { bounded, CLEANUP_MS, goneMsOf, keepFollowing, landEndRecord, mustLand } from './run-landing.js';

export interface RunAndWaitOptions extends WaitOptions {
  settings: RedisSettings;
  /** A ready producer connection to enqueue on (left open); else one of its own from `settings`. */
  redis?: Redis | Cluster;
  /** The submitting operator's key: every task is signed with it (agents run only signed work). */
  signer: TaskSigner;
  /** When the signatures expire (default: a day from now). */
  expiresAtUnixMs?: number;
  /** When the tasks are signed (default: at enqueue, by this machine's clock). */
  signedAtUnixMs?: number;
  /** For the in-process worker; without it, a daemon must be running. */
  connect?: AgentConnector;
  /**
   * Called once, before the run is enqueued, when this process will work on it itself (no daemon):
   * the caller may start connecting to the run's agents meanwhile (warmingConnector).
   */
  prewarm?: () => void;
  /** 'auto' (default): in-process worker only when no daemon heartbeat is present. */
  worker?: 'auto' | 'always' | 'never';
  concurrency?: number;
  log?: WorkerLog;
  /** Aborting cancels the run (see the module comment); the call then resolves with `cancelled`. */
  cancel?: AbortSignal;
  /**
   * Called once when `cancel` aborts, with whether anything is cancelled: false when every task
   * the run will have already had its result (the run had ended: nothing is stopped or withdrawn).
   */
  onStop?: (cancelling: boolean) => void;
  /**
   * Called once the run listens to `cancel`: from then on onStop says what a stop does (a stop
   * before it, while the run still connects and enqueues, is the caller's to say).
   */
  onListening?: () => void;
  /** After a cancel, how long to wait for the running tasks' results (default 15 s). */
  cancelGraceMs?: number;
  /**
   * Called with the run id once its jobs are queued (before any result); resuming, also with the
   * run's record (its command, fleet and mode) when the run index still has it, and for a run of
   * one task per host, each task's host (as the run's own `gaxx run` labels its output).
   */
  onStart?: (runId: string, record?: RunRecord, hosts?: ReadonlyMap<string, string>) => void;
  /** Retry policy overrides for the in-process worker. */
  policy?: Partial<RetryPolicy>;
}

export interface RunOutcome extends RunResults {
  runId: string;
  /** Whether this process ran a worker for the run. */
  inProcess: boolean;
  /** Whether the run was cancelled before every task had a result. */
  cancelled: boolean;
  /** Why the wait ended before every task had its own result (DEADLINE_EXCEEDED, REDIS_UNAVAILABLE; `refused`: Redis's reason for refusing writes). */
  ended?: EndedEarly;
  /** Resuming: the run's input was never read to its end (its gaxx run died first), so some of it never ran. */
  interrupted?: boolean;
  /** A task list ended before its input was all read (interrupted, failed or cancelled): how many of its records were enqueued (the rest never were). */
  enqueued?: number;
  /** Resuming: the run failed (e.g. its input could not be read), as its record says: it stays failed. */
  failed?: boolean;
  /** With `failed`: why, when its record says it. */
  failure?: RunFailure;
  /** Redis was unreachable when the wait ended: a write after it is tried once, not waited for (`mustLand`). */
  redisDown?: boolean;
  /** Resuming a run followed to its end: when it ended, as its record keeps it. */
  finishedAt?: number;
}

/** How often a waiting run checks that a daemon is still there (else it works on the queue itself). */
const WATCH_MS = 2000;
/** How often a resumed task list still being read looks for the tasks enqueued meanwhile, and for its end. */
const GROW_MS = 500;
const CANCEL_GRACE_MS = 15_000;
/** Whether a daemon heartbeat is live (read only: it must not need a writable Redis). */
async function daemonAlive(queue: TaskQueue): Promise<boolean> {
  return (await queue.redis.zcount(HEARTBEAT_KEY, Date.now(), '+inf')) > 0;
}

/** Whether this process works on the run itself: always, or ('auto') while no daemon heartbeat is live. */
async function worksHere(queue: TaskQueue, mode: RunAndWaitOptions['worker'] = 'auto'): Promise<boolean> {
  return mode === 'always' || (mode === 'auto' && !(await daemonAlive(queue)));
}

/** One waiting run: its queue, worker, cancel and clean-up. */
class RunWait {
  worker: SchedulerWorker | undefined;
  private cancelling: Promise<void> | undefined;
  /** The cancel came once every task already had its result: nothing was cancelled. */
  private cancelTooLate = false;
  private stopNoted = false;
  private redisDown = false;
  private readonly stop = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];
  /** Refused writes of the run, as its in-process worker meets them (the wait probes too). */
  private readonly writes = new WriteHealth();
  /** The tasks waited for: the run's, and those its gaxx run enqueues meanwhile (followGrowth). */
  private readonly want: Set<string>;
  /** The run may still gain tasks: its record does not say it has ended (followGrowth). */
  private growing = false;
  private growBusy = false;

  constructor(
    readonly queue: TaskQueue,
    public meta: RunMeta,
    private readonly opts: RunAndWaitOptions,
  ) {
    this.want = new Set(meta.taskIds);
  }

  get jobIds(): string[] {
    return this.meta.taskIds.map((t) => jobIdFor(this.meta.runId, t));
  }

  startWorker(): void {
    if (this.worker || !this.opts.connect) return;
    this.worker = SchedulerWorker.start({
      settings: this.opts.settings,
      connect: this.opts.connect,
      runId: this.meta.runId,
      concurrency: this.opts.concurrency,
      log: this.opts.log,
      policy: this.opts.policy,
      onWrites: (_runId, refused) => (refused === undefined ? this.writes.accepted('worker') : this.writes.refused('worker', refused)),
    });
  }

  /** In-process worker now, or a watch that starts one when the daemon goes away. */
  async ensureWorker(): Promise<void> {
    const mode = this.opts.worker ?? 'auto';
    if (await worksHere(this.queue, mode)) {
      if (!this.opts.connect) throw new GaxxError('FAILED_PRECONDITION', 'no scheduler daemon is running and no agent credentials were given to run one here');
      this.startWorker();
    } else if (mode === 'auto') {
      this.timers.push(
        setInterval(
          () =>
            void daemonAlive(this.queue).then(
              (alive) => (alive ? undefined : this.startWorker()),
              () => undefined,
            ),
          WATCH_MS,
        ),
      );
    }
    // The owner is alive: a daemon does not forget the run, it does not expire, it is not submitter-gone.
    this.timers.push(keepFollowing(this.queue.redis, this.meta.runId));
  }

  /** Says once what the caller's stop does (onStop). */
  private noteStop(cancelling: boolean): void {
    if (this.stopNoted) return;
    this.stopNoted = true;
    this.opts.onStop?.(cancelling);
  }

  /**
   * Resuming a task list whose gaxx run may still be reading its input: every task so far having
   * its result does not end the run. The wait follows the tasks enqueued meanwhile too, until the
   * run has ended by its record (runHasEnded: its input all read, or its submitter gone), as
   * `gaxx runs wait` follows it; a run is never taken for interrupted while its gaxx run reads on.
   */
  async followGrowth(): Promise<void> {
    this.growing = true;
    await this.grow();
    if (this.growing) this.timers.push(setInterval(() => void this.grow(), GROW_MS));
  }

  private async grow(): Promise<void> {
    if (!this.growing || this.growBusy) return;
    this.growBusy = true;
    try {
      const { redis } = this.queue;
      // Judged before the tasks are read: once the run has ended, every task it will have is among them.
      const ended = await runHasEnded(redis, this.meta.runId, [...this.want]);
      const meta = await loadRunMeta(redis, this.meta.runId);
      if (meta) {
        for (const t of meta.taskIds) this.want.add(t);
        this.meta = meta;
      }
      if (ended) this.growing = false;
    } catch {
      // Redis away: the next look tries again (the wait itself bounds how long Redis may stay away).
    } finally {
      this.growBusy = false;
    }
  }

  /** While the run grows: those of `ids` that are tasks it enqueued are waited for too (their results may be read before grow() sees them). */
  private async join(ids: string[]): Promise<void> {
    if (!this.growing) return;
    const hosts = await this.queue.redis.hmget(runTasksKey(this.meta.runId), ...ids);
    const added = ids.filter((id, i) => hosts[i] !== null && !this.want.has(id));
    if (added.length === 0) return;
    for (const id of added) this.want.add(id);
    this.meta = {
      ...this.meta,
      taskIds: [...this.meta.taskIds, ...added],
      hosts: { ...this.meta.hosts, ...Object.fromEntries(added.map((id) => [id, hosts[ids.indexOf(id)] ?? ''])) },
    };
  }

  onCancel = (): void => {
    // The grace for running tasks' results starts once the withdrawn ones are published; with
    // Redis unreachable nothing more can arrive, so the wait ends at once.
    if (this.redisDown) this.stop.abort();
    this.cancelling ??= bounded(this.cancelRun(), RECONNECT_MS + CLEANUP_MS)
      .then(
        () => undefined,
        (e: Error) => {
          this.noteStop(true);
          this.opts.log?.warn({ run: this.meta.runId, err: e.message }, 'cancel incomplete');
        },
      )
      .finally(() => {
        if (this.redisDown) this.stop.abort();
        else this.timers.push(setTimeout(() => this.stop.abort(), this.opts.cancelGraceMs ?? CANCEL_GRACE_MS).unref());
      });
  };

  /**
   * Flag for every worker, direct cancel of this process's worker, `cancelled` for withdrawn
   * tasks. Each write is tried again while the connection comes back (a Ctrl-C just after Redis
   * returned finds it still reconnecting), until the wait ends.
   */
  private async cancelRun(): Promise<void> {
    const { runId } = this.meta;
    const { redis } = this.queue;
    const land = <T>(op: () => Promise<T>): Promise<T> =>
      mustLand(redis, op, { redisDown: this.redisDown, what: `cancelling run ${runId}`, stop: this.stop.signal });
    // A run whose every task has its result has ended: a stop asked then (a `--resume` of a done
    // run whose stdout closed while it printed, a Ctrl-C as it finished) has nothing left to stop,
    // and must not make the run cancelled for everyone who looks at it later. Every task it will
    // have: a task list still being read by its gaxx run may have more to come (its record says).
    if (await land(() => runHasEnded(redis, runId, this.meta.taskIds))) {
      this.cancelTooLate = true;
      return this.noteStop(false);
    }
    this.noteStop(true);
    await land(() => requestCancel(redis, runId));
    // Withdraw before stopping this process's running tasks, so the slots they free do not take
    // queued ones (a worker that does take one sees the flag and never dispatches it).
    const withdrawn = new Set(await land(() => this.queue.withdrawIds(this.jobIds)));
    this.worker?.cancelRun(runId);
    for (const taskId of this.meta.taskIds) {
      if (!withdrawn.has(jobIdFor(runId, taskId))) continue;
      const r = taskResult(
        { runId, taskId, host: this.meta.hosts[taskId] ?? '', outcome: 'cancelled', reason: 'cancelled' },
        { error: 'run cancelled before the task ran' },
      );
      await land(() => publishResult(redis, r, []));
    }
  }

  /** Waits for every result; an early end (deadline, Redis gone) is returned, not thrown. */
  async wait(): Promise<RunOutcome> {
    const results: RunResults = { results: new Map(), output: new Map() };
    let ended: RunOutcome['ended'];
    const onRedis = (down: boolean, forMs: number, refused?: string): void => {
      this.redisDown = down;
      if (down && this.cancelling) this.stop.abort();
      this.opts.onRedis?.(down, forMs, refused);
    };
    try {
      await waitForRun(this.queue.redis, this.meta.runId, this.want, {
        ...this.opts,
        // A cancel ends the growth: what the run's gaxx run enqueues after it, it cancels itself.
        more: () => this.growing && this.cancelling === undefined,
        join: (ids) => this.join(ids),
        redisGoneMs: goneMsOf(this.opts),
        onRedis,
        writes: this.writes,
        until: this.stop.signal,
        into: results,
      });
    } catch (e) {
      if (!endsWaitEarly(e)) throw e;
      ended = endedBy(e);
    }
    await this.cancelling;
    const cancelled = this.cancelling !== undefined && !this.cancelTooLate;
    const failed = await failedAtWaitEnd(this.queue.redis, this.meta.runId, ended);
    this.fillMissing(results, cancelled ? 'CANCELLED' : (ended?.code ?? 'DEADLINE_EXCEEDED'), failed);
    const down = this.redisDown || ended?.code === 'REDIS_UNAVAILABLE';
    return {
      ...results,
      runId: this.meta.runId,
      inProcess: this.worker !== undefined,
      cancelled,
      ...(ended ? { ended } : {}),
      ...(down ? { redisDown: true } : {}),
    };
  }

  /**
   * Every task without a result gets one: its job's, when it failed for good (`failed`), else
   * `unknown` (it may be queued, running, or done).
   */
  private fillMissing(results: RunResults, why: ErrorCode, failed: ReadonlyMap<string, TaskResult>): void {
    for (const taskId of this.meta.taskIds) {
      if (results.results.has(taskId)) continue;
      const r = failed.get(taskId) ?? resultAtWaitEnd(this.meta.runId, taskId, this.meta.hosts[taskId] ?? '', why, `gaxx run --resume ${this.meta.runId}`);
      results.results.set(taskId, r);
      // A failed job's result is the task's own; the others say only that none came.
      this.opts.onResult?.(r, [], false, !failed.has(taskId));
    }
  }

  /**
   * Stops timers and the in-process worker (handing back what runs), and removes the run's queue
   * once nothing of it is left queued or running (`forget`: the run is done or cancelled; after an
   * early end its tasks without a result stay queued, for a daemon or `--resume`).
   */
  async close(complete: boolean, forget: boolean): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    const early = !complete;
    // A complete run drains normally; an early end hands running tasks back at once (the agents
    // keep running them; `--resume` or a daemon attaches), within the second the caller has.
    if (this.worker) await bounded(this.worker.drain(early ? 0 : 5000), early ? CLEANUP_MS : 10_000);
    if (forget) await bounded(this.queue.forgetWhenIdle(this.meta.runId), 3500);
  }
}

/** Enqueues `run` and waits for all its results. */
export async function runAndWait(run: RunSpecInput, opts: RunAndWaitOptions): Promise<RunOutcome> {
  const queue = await TaskQueue.openOn(opts.settings, opts.redis);
  let enq: EnqueuedRun | undefined;
  try {
    // In passing: runs abandoned long ago expire (their untaken jobs end EXPIRED), best effort.
    void bounded(expireAbandonedRuns(queue), CLEANUP_MS);
    // The handshakes with the agents then overlap the enqueue's round trips.
    if (opts.prewarm && opts.connect && (await worksHere(queue, opts.worker))) opts.prewarm();
    enq = await queue.enqueueRun(run, opts.signer, { expiresAtUnixMs: opts.expiresAtUnixMs, signedAtUnixMs: opts.signedAtUnixMs });
    const hosts = Object.fromEntries(run.tasks.map((t) => [t.taskId, 'host' in t.target ? t.target.host : '']));
    return await waitOn(new RunWait(queue, { runId: enq.runId, taskIds: enq.taskIds, hosts, createdAt: Date.now() }, opts), opts);
  } catch (e) {
    // Nothing may stay behind a failed run: its jobs would run later, unasked.
    if (enq) await bounded(queue.forgetRun(enq.runId), CLEANUP_MS);
    throw redisError(e, `run ${enq?.runId ?? run.runId}`);
  } finally {
    await bounded(queue.close(), CLEANUP_MS);
  }
}

/** `gaxx run --resume ID`: serves an earlier run's remaining jobs and waits for all its results. */
export async function resumeRun(runId: string, opts: RunAndWaitOptions): Promise<RunOutcome> {
  const queue = await TaskQueue.openOn(opts.settings, opts.redis);
  try {
    const meta = await loadRunMeta(queue.redis, runId).catch((e: unknown) => Promise.reject(redisError(e, `run ${runId}`)));
    const record = await getRunRecord(queue.redis, runId).catch(() => undefined);
    if (!meta) {
      // A run that failed before it enqueued anything (its input could not be read) has nothing
      // to serve: it is over, as its record says.
      if (record?.state === 'failed') return failedBeforeEnqueue(record, opts);
      throw new GaxxError('NOT_FOUND', `run ${runId} is unknown (never enqueued, or its records expired)`);
    }
    const out = await waitOn(new RunWait(queue, meta, opts), opts, record);
    // Every task has its result now (or the run was cancelled): the run index says so, as it
    // does when the run's own gaxx run sees it through. A task list whose input was never read to
    // its end (no total) is interrupted, not done.
    if (record && !out.ended) {
      const counts: OutcomeCounts = {};
      for (const r of out.results.values()) countOutcome(counts, r.outcome);
      const after = <T>(op: () => Promise<T>): Promise<T> => mustLand(queue.redis, op, { redisDown: out.redisDown, what: `run ${runId}` });
      const now = (await after(() => getRunRecord(queue.redis, runId)).catch(() => undefined)) ?? record;
      // A run that failed (cancelled for its failure) stays failed. Cancelled from anywhere (a
      // Ctrl-C of its gaxx run, `gaxx runs cancel`): it stays cancelled.
      const failed = now.state === 'failed';
      const cancelled = out.cancelled || (!failed && (now.state === 'cancelled' || (await after(() => isCancelled(queue.redis, runId)).catch(() => false))));
      // Interrupted only as the run index judges it (runComplete): its input never all read AND
      // its submitter gone; a task list its gaxx run still reads is not over (the wait followed it).
      const judged = runComplete(now, await after(() => queue.redis.hlen(runDoneKey(runId))).catch(() => out.results.size));
      const state = failed ? 'failed' : cancelled ? 'cancelled' : judged === 'interrupted' ? 'interrupted' : 'done';
      // A run that had ended before this resume ended then, not when it was looked at again.
      const finishedAt = (now.state !== 'running' ? now.finishedAt : null) ?? Date.now();
      await landEndRecord(queue.redis, runId, { state, counts, finishedAt }, { redisDown: out.redisDown, what: `run ${runId}` });
      if (failed) return { ...out, cancelled, failed, finishedAt, ...(now.failure ? { failure: now.failure } : {}), enqueued: now.enqueued };
      // A task list ended before its input was all read (interrupted, or cancelled meanwhile): how much of it was enqueued.
      const unread = now.total === null && (state === 'interrupted' || state === 'cancelled') ? { enqueued: now.enqueued } : {};
      return { ...out, cancelled, finishedAt, ...(state === 'interrupted' ? { interrupted: true } : {}), ...unread };
    }
    return out;
  } finally {
    await bounded(queue.close(), CLEANUP_MS);
  }
}

/** `--resume` of a run that failed before any of it was enqueued: no task to wait for, its failure as its record keeps it. */
function failedBeforeEnqueue(record: RunRecord, opts: RunAndWaitOptions): RunOutcome {
  opts.onStart?.(record.runId, record);
  return {
    runId: record.runId,
    results: new Map(),
    output: new Map(),
    inProcess: false,
    cancelled: false,
    failed: true,
    ...(record.failure ? { failure: record.failure } : {}),
    enqueued: record.enqueued,
  };
}

async function waitOn(w: RunWait, opts: RunAndWaitOptions, record?: RunRecord): Promise<RunOutcome> {
  let complete = false;
  let forget = false;
  try {
    opts.onStart?.(w.meta.runId, record, record?.mode === 'each-host' ? new Map(Object.entries(w.meta.hosts)) : undefined);
    await w.ensureWorker();
    if (record?.state === 'running' && record.total === null) await w.followGrowth();
    if (opts.cancel?.aborted) w.onCancel();
    else opts.cancel?.addEventListener('abort', w.onCancel, { once: true });
    opts.onListening?.();
    const out = await w.wait();
    complete = out.ended === undefined && !out.cancelled;
    forget = out.ended === undefined;
    return out;
  } finally {
    opts.cancel?.removeEventListener('abort', w.onCancel);
    await w.close(complete, forget);
  }
}
