/**
 * A run fed from a stream of tasks (`gaxx run --tasks FILE`): tasks are enqueued in bounded
 * batches (one addBulk each) while results are followed on the run's stream, and at most
 * `window` tasks of the run are queued or running at any time, so a ten-million-line input is
 * never held in memory nor in the queue at once. Tasks with an `any` target go to whichever
 * agent has a free slot: agents pull work as they free up.
 *
 * Like runAndWait: a worker runs in this process unless a daemon heartbeats; the run is
 * recorded in the run index (run-index.ts); cancelling (the `cancel` signal, or a cancel flag
 * set by `gaxx runs cancel`) stops reading input, withdraws queued tasks (reported
 * `cancelled`), cancels running ones, and reports any still without a result after the grace
 * period as `error` (DEADLINE_EXCEEDED).
 *
 * Waits are bounded as runAndWait's are: a Redis that stays unreachable past `redisGoneMs`
 * (default REDIS_GONE_MS), or the `timeoutMs` deadline, ends the run early: reading input
 * stops, and every enqueued task without a result is reported `unknown` with that reason; the
 * outcome says why (`ended`) instead of throwing, so the caller still prints every task.
 *
 * An item of the stream may be a refusal instead of a task (refused.ts): it is a task of the
 * run with its result already known, published in its batch's turn, never queued.
 *
 * An input that fails to be read (the stream throws: a read error) cannot be the run asked for:
 * reading stops, the run is cancelled as it stands (queued tasks withdrawn, running ones
 * stopped), and it ends `failed` with that error as its record's `failure` (returned, not
 * thrown), which `gaxx runs`, `runs wait` and `--resume` all keep.
 */
import type { Cluster, Redis } from 'ioredis';
import { GaxxError, isGaxxError, type TaskSigner } from '../../proto/index.js';
import type { AgentConnector } from '../dispatch/agent-pool.js';
import { SchedulerWorker, type WorkerLog } from '../dispatch/worker.js';
import { schedulerAlive } from '../daemon/daemon.js';
import { connectionLost, whileAway, type RedisSettings } from '../redis/redis.js';
import { BatchPuller } from './batches.js';
import { isCancelled, requestCancel } from './cancel.js';
import { followRun, type FollowHandlers } from './follow.js';
import type { OnRedis } from './reachability.js';
import { TaskQueue } from './queue.js';
import { isRefused, publishRefused, type RefusedTask } from './refused.js';
import { publishResult, runDoneKey, taskResult, type OutputChunk, type TaskResult } from './results.js';
import { countOutcome, createRunRecord, noteEnqueued, runFailure, updateRunRecord, type OutcomeCounts, type RunFailure, type RunRecord } from './run-index.js';
import { mustLand, bounded, CLEANUP_MS, goneMsOf, keepFollowing, landEndRecord } from './run-landing.js';
import { newRunId, type TaskInput } from './task.js';
import { endedBy, endsWaitEarly, WriteHealth, type EndedEarly } from './write-health.js';
import { failedAtWaitEnd } from './failed-jobs.js';

export interface StreamRunOptions extends FollowHandlers {
  settings: RedisSettings;
  /** A ready producer connection to enqueue on (left open); else one of its own from `settings`. */
  redis?: Redis | Cluster;
  /** The submitting operator's key: every task is signed with it as its batch is enqueued. */
  signer: TaskSigner;
  /** When the signatures expire (default: a day after each batch is enqueued). */
  expiresAtUnixMs?: number;
  /** When the tasks are signed (default: as each batch is enqueued, by this machine's clock). */
  signedAtUnixMs?: number;
  connect?: AgentConnector;
  /** Called once when this process starts its own worker for the run (see RunAndWaitOptions.prewarm). */
  prewarm?: () => void;
  worker?: 'auto' | 'always' | 'never';
  workerConcurrency?: number;
  log?: WorkerLog;
  /** At most this many of the run's tasks are queued or running at once. */
  window: number;
  /** Tasks per addBulk (default 500). */
  batchMax?: number;
  cancel?: AbortSignal;
  /**
   * Awaited before each batch is enqueued, with its task ids (refused ones too): the caller keeps
   * what goes with them (a task list's records, storeTaskRecords) before any of their results can be read.
   */
  beforeEnqueue?: (taskIds: string[]) => Promise<void>;
  /**
   * Called once when `cancel` aborts, with whether anything is cancelled: false when every task
   * the run will have already had its result (the run had ended: nothing is stopped or withdrawn).
   */
  onStop?: (cancelling: boolean) => void;
  /** Called once the run listens to `cancel` (RunAndWaitOptions.onListening). */
  onListening?: () => void;
  cancelGraceMs?: number;
  /** Give up waiting (DEADLINE_EXCEEDED) after this long. */
  timeoutMs?: number;
  runId?: string;
  /** What the run index shows about the run. */
  record: Pick<RunRecord, 'argv' | 'fleet' | 'agents' | 'mode'>;
  /** Called after each batch is enqueued, with the run's enqueued total. */
  onEnqueued?: (enqueued: number) => void;
  /** Redis went away (`down`, about every 5 s with how long) or came back; with `refused`, it refuses writes (see WaitOptions). */
  onRedis?: OnRedis;
  /** End the run early (REDIS_UNAVAILABLE) when Redis stays unreachable, or refuses the run's writes, this long (default REDIS_GONE_MS). */
  redisGoneMs?: number;
}

export interface StreamRunOutcome {
  runId: string;
  total: number;
  counts: OutcomeCounts;
  cancelled: boolean;
  inProcess: boolean;
  /** Why the run ended before every enqueued task had its own result (DEADLINE_EXCEEDED, REDIS_UNAVAILABLE; `refused`: Redis's reason for refusing writes). */
  ended?: EndedEarly;
  /** The input was read to its end: `total` items are the whole run (else items past `total` were never read or enqueued). */
  inputRead: boolean;
  /** Reading the input failed (the run stopped there, its tasks cancelled): the run's state is `failed`, and this is why. */
  failure?: RunFailure;
}

/** The errors that end a run early with a result for every task, rather than fail it. */
function endsEarly(e: unknown): EndedEarly | undefined {
  return endsWaitEarly(e) ? endedBy(e) : undefined;
}

const CANCEL_GRACE_MS = 15_000;
const HEARTBEAT_MS = 1000;

/** A result for a task that never got one of its own. */
export function syntheticResult(runId: string, taskId: string, outcome: TaskResult['outcome'], reason: string, error: string): TaskResult {
  return taskResult({ runId, taskId, host: '', outcome, reason }, { error, finishedAt: new Date().toISOString() });
}

/** Enqueues `tasks` in bounded batches and follows the run until every enqueued task has a result. */
export async function streamRun(tasks: AsyncIterable<TaskInput | RefusedTask>, opts: StreamRunOptions): Promise<StreamRunOutcome> {
  const queue = await TaskQueue.openOn(opts.settings, opts.redis);
  const run = new StreamedRun(queue, opts.runId ?? newRunId(), opts);
  let early = true;
  let ended = false;
  try {
    const out = await run.execute(tasks[Symbol.asyncIterator]());
    early = out.ended !== undefined;
    ended = early;
    return out;
  } finally {
    // After an early end (Redis may be gone) nothing here may hold the process: running tasks
    // are handed back at once (the agents keep running them) and closing is bounded.
    await run.close(early);
    // Done, cancelled or failed: the run's queue goes once nothing of it is queued or running,
    // as runAndWait's does. After an early end its tasks without a result stay queued, for a
    // daemon or `gaxx run --resume`.
    if (!ended) await bounded(queue.forgetWhenIdle(run.runId), 3500);
    await bounded(queue.close(), CLEANUP_MS);
  }
}

class StreamedRun {
  private readonly outstanding = new Map<string, string>();
  private readonly counts: OutcomeCounts = {};
  private readonly stopInput = new AbortController();
  private readonly stopFollow = new AbortController();
  private enqueued = 0;
  private inputDone = false;
  /** Why reading the input failed (the stream threw), when it did. */
  private inputFailure: RunFailure | undefined;
  /** The input was read to its end (not stopped early): `total` is known. */
  private inputExhausted = false;
  private cancelling: Promise<void> | undefined;
  /** The stop came once every task had its result (its input all read): nothing was cancelled. */
  private cancelTooLate = false;
  private stopNoted = false;
  /** The follower last heard Redis unreachable, or refusing writes (writes at the end are then tried once). */
  private redisDown = false;
  private worker: SchedulerWorker | undefined;
  private slot: (() => void) | undefined;
  /** Tasks of the batch being enqueued (their results may come before the enqueue call returns). */
  private readonly enqueuing = new Set<string>();
  /** Results that arrived before their batch's enqueue call returned. */
  private readonly early = new Set<string>();
  /** Refused records published (or being published) whose refusal has not been read back yet. */
  private readonly refusing = new Set<string>();
  private timers: NodeJS.Timeout[] = [];
  /** Refused writes of the run, as its in-process worker meets them (the follower probes too). */
  private readonly writes = new WriteHealth();

  constructor(
    private readonly queue: TaskQueue,
    readonly runId: string,
    private readonly opts: StreamRunOptions,
  ) {
    this.stopInput.signal.addEventListener('abort', () => this.wake(), { once: true });
  }

  async execute(it: AsyncIterator<TaskInput | RefusedTask>): Promise<StreamRunOutcome> {
    const { redis } = this.queue;
    await createRunRecord(redis, { runId: this.runId, startedAt: Date.now(), total: null, ...this.opts.record });
    await this.ensureWorker();
    const onCancel = (): void => this.cancel(undefined, true);
    if (this.opts.cancel?.aborted) onCancel();
    else this.opts.cancel?.addEventListener('abort', onCancel, { once: true });
    this.opts.onListening?.();
    this.timers.push(
      setInterval(() => void this.heartbeat(), HEARTBEAT_MS),
      keepFollowing(redis, this.runId),
    );
    let state: RunRecord['state'] = 'failed';
    try {
      const following = followRun(redis, this.runId, {
        accept: (ids) => this.waitsFor(ids),
        onLive: this.opts.onLive,
        onNote: this.opts.onNote,
        onIgnored: this.opts.onIgnored,
        ...(this.opts.paced ? { paced: this.opts.paced } : {}),
        onResult: (r, o, shown) => this.result(r, o, shown),
        done: (n) => this.inputDone && n >= this.enqueued,
        outstanding: () => this.outstanding.keys(),
        until: this.stopFollow.signal,
        ...(this.opts.timeoutMs ? { timeoutMs: this.opts.timeoutMs } : {}),
        redisGoneMs: goneMsOf(this.opts),
        writes: this.writes,
        onRedis: (down, forMs, refused) => {
          this.redisDown = down;
          // Cancelling while Redis is away (or refuses writes): nothing more can arrive, stop at once.
          if (down && this.cancelling) this.stopFollow.abort();
          this.opts.onRedis?.(down, forMs, refused);
        },
      });
      // A follow that fails must end production too (else it would wait for slots forever).
      following.catch(() => this.stopInput.abort());
      const produced = this.produce(new BatchPuller(it)).catch((e: unknown) => e);
      const followed = await following.then(
        () => undefined,
        (e: unknown) => e,
      );
      const inputError = await produced;
      const ended = endsEarly(followed) ?? endsEarly(inputError);
      // After an early end the tasks without a result stay queued, as a run of one task per host
      // leaves them: a daemon or `gaxx run --resume` sees them through (and the run to its end).
      // Never wait on a cancel's Redis calls once Redis is gone, or does not answer (a call to a
      // stopped server waits for ever): a cancel's follow ends at once then (onRedis), as here.
      if (!ended && !this.redisDown) await this.cancelling;
      this.fillMissing(ended, ended ? await failedAtWaitEnd(redis, this.runId, ended) : new Map());
      if (followed && !endsEarly(followed)) throw followed;
      // Redis lost the run: that is what stopped it, whatever its input's failure says (an unknown fleet...).
      const failure = ended?.code === 'REDIS_DATA_LOST' ? undefined : this.inputFailure;
      if (inputError && !endsEarly(inputError) && !this.inputFailure) throw inputError;
      // A run whose input failed was cancelled for it: it failed (or Redis lost it), which is what it stays.
      // A cancel from elsewhere can end every task before the heartbeat notices the flag.
      const cancelled =
        !this.inputFailure &&
        ((this.cancelling !== undefined && !this.cancelTooLate) || (!ended && (await this.mustLand(() => isCancelled(redis, this.runId)))));
      // An early end is no end of the run: its record stays running (unknowns reported here are no results).
      state = failure ? 'failed' : cancelled ? 'cancelled' : ended ? 'running' : 'done';
      const outcome = {
        runId: this.runId,
        total: this.enqueued,
        counts: this.counts,
        cancelled,
        inProcess: this.worker !== undefined,
        inputRead: this.inputExhausted,
      };
      if (failure) return { ...outcome, failure };
      return ended && !cancelled ? { ...outcome, ended } : outcome;
    } catch (e) {
      if (isGaxxError(e, 'DEADLINE_EXCEEDED') || isGaxxError(e, 'CANCELLED')) await this.queue.withdraw([...this.outstanding.values()]).catch(() => 0);
      throw e;
    } finally {
      this.opts.cancel?.removeEventListener('abort', onCancel);
      const total = this.inputExhausted ? { total: this.enqueued } : {};
      const failure = state === 'failed' && this.inputFailure ? { failure: this.inputFailure } : {};
      const patch = state === 'running' ? total : { state, counts: this.counts, ...total, finishedAt: Date.now(), ...failure };
      if (Object.keys(patch).length > 0) await landEndRecord(redis, this.runId, patch, { redisDown: this.redisDown, what: `run ${this.runId}` });
    }
  }

  /**
   * Reads input into the queue while the window has room. A Redis that is away while a batch is
   * due is waited for (redisGoneMs at most, then REDIS_UNAVAILABLE: the run ends early with a
   * result for every enqueued task); any other failure withdraws the rest as a cancel, and the
   * run fails for it (`inputFailure`): a failed read of the input, or a batch the queue refused.
   */
  private async produce(puller: BatchPuller<TaskInput | RefusedTask>): Promise<void> {
    const batchMax = this.opts.batchMax ?? 500;
    // Every batch taken was enqueued whole (its refusals published too): with the input's end
    // read, the run's size is what was enqueued, however the run ends.
    let whole = true;
    try {
      while (!this.stopInput.signal.aborted) {
        const free = this.opts.window - this.outstanding.size;
        if (free <= 0) {
          await new Promise<void>((r) => (this.slot = r));
          continue;
        }
        const batch = await puller.take(Math.min(batchMax, free), 20, this.stopInput.signal).catch((e: unknown) => {
          this.inputFailure = runFailure(e);
          throw e;
        });
        if (batch.length === 0) {
          if (puller.ended || this.stopInput.signal.aborted) break;
          continue;
        }
        if (!(await this.enqueueBatch(batch))) {
          whole = false;
          break;
        }
      }
      // Only an input read to its end tells the run's size.
      this.inputExhausted = puller.ended && whole;
    } catch (e) {
      if (!endsEarly(e)) {
        // The run fails for what stopped its input: a read of it that failed, or a batch the queue
        // refused (e.g. its fleet is no longer registered: deleted, or Redis lost its data).
        const what = this.inputFailure ? 'its input failed' : 'a batch of its tasks was refused';
        this.inputFailure ??= runFailure(e);
        this.cancel(`run stopped: ${what} (${this.inputFailure.message}),`);
      }
      throw e;
    } finally {
      this.inputDone = true;
      await puller.close();
      if (this.inputExhausted) await this.mustLand(() => updateRunRecord(this.queue.redis, this.runId, { total: this.enqueued })).catch(() => undefined);
      this.wake();
    }
  }

  /** Enqueues one batch (publishes its refusals) and counts it; false when the run stopped meanwhile (cancel, follow ended). */
  private async enqueueBatch(batch: Array<TaskInput | RefusedTask>): Promise<boolean> {
    const times = { expiresAtUnixMs: this.opts.expiresAtUnixMs, signedAtUnixMs: this.opts.signedAtUnixMs };
    const before = this.opts.beforeEnqueue;
    if (before && (await this.whileRedisAway(() => before(batch.map((t) => t.taskId)).then(() => true))) !== true) return false;
    const tasks = batch.filter((t): t is TaskInput => !isRefused(t));
    const refused = batch.filter(isRefused);
    // Enqueueing a batch again adds nothing (job ids), nor does publishing a refusal again, so a
    // call whose reply was lost is safe to repeat.
    for (const t of tasks) this.enqueuing.add(t.taskId);
    const enq = tasks.length
      ? await this.whileRedisAway(() => this.queue.enqueueRun({ runId: this.runId, tasks }, this.opts.signer, times)).finally(() => this.enqueuing.clear())
      : undefined;
    if (tasks.length && !enq) return false;
    enq?.taskIds.forEach((id, i) => (this.early.delete(id) ? undefined : this.outstanding.set(id, enq.jobIds[i] as string)));
    // The batch's tasks are queued: they are followed (and counted) even if the run stops before its refusals are out.
    // The refusals are the run's own from before they are published: their results may be read at once.
    for (const t of refused) this.refusing.add(t.taskId);
    const published =
      refused.length === 0 || (await this.whileRedisAway(() => publishRefused(this.queue.redis, this.runId, refused).then(() => true))) !== undefined;
    this.enqueued += published ? batch.length : tasks.length;
    const enqueued = this.enqueued;
    // The count is written as a total, so repeating it is harmless too.
    await this.whileRedisAway(() => noteEnqueued(this.queue.redis, this.runId, enqueued));
    this.opts.onEnqueued?.(this.enqueued);
    return published;
  }

  /**
   * `op`, tried again while the producer connection is away (it reconnects by itself), for at
   * most redisGoneMs from the first failure: then REDIS_UNAVAILABLE. A refusal by the server
   * (MISCONF, OOM, a script error) is not an outage and is thrown at once. Undefined when the
   * run stops reading input meanwhile.
   */
  private async whileRedisAway<T>(op: () => Promise<T>): Promise<T | undefined> {
    const stop = this.stopInput.signal;
    try {
      return await whileAway(this.queue.redis, op, { forMs: goneMsOf(this.opts), what: `while enqueueing run ${this.runId}`, stop });
    } catch (e) {
      if (stop.aborted && connectionLost(e)) return undefined;
      throw e;
    }
  }

  /**
   * Which result entries count: those of tasks this run enqueued (or is enqueueing) that have no
   * result yet, each once. Any other (a result written to the stream by someone else) does not
   * count toward the run's end.
   */
  private waitsFor(ids: string[]): boolean[] {
    const taken = new Set<string>();
    return ids.map((id) => {
      const ok = !taken.has(id) && (this.outstanding.has(id) || this.refusing.has(id) || (this.enqueuing.has(id) && !this.early.has(id)));
      taken.add(id);
      return ok;
    });
  }

  /** A result of one of the run's tasks (waitsFor), or one made here for a task that has none. */
  private result(r: TaskResult, o: OutputChunk[], shown: boolean, pending = false): void {
    // A refusal was never outstanding, nor will it be.
    if (!this.refusing.delete(r.taskId) && !this.outstanding.delete(r.taskId) && this.enqueuing.has(r.taskId)) this.early.add(r.taskId);
    countOutcome(this.counts, r.outcome);
    this.opts.onResult?.(r, o, shown, pending);
    this.wake();
  }

  private wake(): void {
    const s = this.slot;
    this.slot = undefined;
    s?.();
  }

  private async ensureWorker(): Promise<void> {
    const mode = this.opts.worker ?? 'auto';
    const alive = mode === 'auto' ? await schedulerAlive(this.queue.redis) : false;
    if (mode === 'always' || (mode === 'auto' && !alive)) {
      if (!this.opts.connect) throw new GaxxError('FAILED_PRECONDITION', 'no scheduler daemon is running and no agent credentials were given to run one here');
      this.startWorker();
    }
  }

  private startWorker(): void {
    if (this.worker || !this.opts.connect) return;
    this.opts.prewarm?.();
    // Its own run only: a task-list run never takes another run's jobs.
    this.worker = SchedulerWorker.start({
      settings: this.opts.settings,
      connect: this.opts.connect,
      runId: this.runId,
      concurrency: this.opts.workerConcurrency,
      log: this.opts.log,
      onWrites: (_runId, refused) => (refused === undefined ? this.writes.accepted('worker') : this.writes.refused('worker', refused)),
    });
  }

  /** A read or write of the run's end on the producer connection (run.ts mustLand). */
  private mustLand<T>(op: () => Promise<T>): Promise<T> {
    return mustLand(this.queue.redis, op, { redisDown: this.redisDown, what: `run ${this.runId}` });
  }

  /** Refreshes the submitter heartbeat, notices a cancel from elsewhere and a daemon that died. */
  private async heartbeat(): Promise<void> {
    const { redis } = this.queue;
    try {
      // While its input is read; once it is all enqueued, keepFollowing's beat refreshes `seen`.
      if (!this.inputDone) await updateRunRecord(redis, this.runId, { seen: Date.now() });
      if (!this.cancelling && (await isCancelled(redis, this.runId))) this.cancel();
      if ((this.opts.worker ?? 'auto') === 'auto' && !this.worker && !(await schedulerAlive(redis))) this.startWorker();
    } catch {
      // Redis hiccup: the next beat tries again.
    }
  }

  /**
   * Stops input, withdraws queued tasks (published as cancelled, `why` before the task ran), cancels running ones.
   * `asked`: a stop of this run's caller (`cancel`), which cancels nothing once every task the run
   * will have has its result (its input all read): the run has ended, and is not made cancelled.
   */
  cancel(why = 'run cancelled', asked = false): void {
    if (asked && this.cancelling) this.noteStop(true);
    this.cancelling ??= (async () => {
      const exhausted = this.inputExhausted;
      this.stopInput.abort();
      const { redis } = this.queue;
      // Each write is tried again while the connection comes back (a Ctrl-C just after Redis
      // returned finds it still reconnecting), until the follow ends.
      const land = <T>(op: () => Promise<T>): Promise<T> =>
        mustLand(redis, op, { redisDown: this.redisDown, what: `cancelling run ${this.runId}`, stop: this.stopFollow.signal });
      if (asked && exhausted && (await land(() => redis.hlen(runDoneKey(this.runId)))) >= this.enqueued) {
        this.cancelTooLate = true;
        return this.noteStop(false);
      }
      if (asked) this.noteStop(true);
      await land(() => requestCancel(redis, this.runId));
      const withdrawn = new Set(await land(() => this.queue.withdrawIds([...this.outstanding.values()])));
      this.worker?.cancelRun(this.runId);
      for (const [taskId, jobId] of [...this.outstanding]) {
        if (withdrawn.has(jobId))
          await land(() => publishResult(redis, syntheticResult(this.runId, taskId, 'cancelled', 'cancelled', `${why} before the task ran`), []));
      }
    })()
      .catch((e: Error) => {
        if (asked) this.noteStop(true);
        this.opts.log?.warn({ run: this.runId, err: e.message }, 'cancel incomplete');
      })
      .finally(() => this.timers.push(setTimeout(() => this.stopFollow.abort(), this.opts.cancelGraceMs ?? CANCEL_GRACE_MS).unref()));
  }

  /** Says once what the caller's stop does (onStop). */
  private noteStop(cancelling: boolean): void {
    if (this.stopNoted) return;
    this.stopNoted = true;
    this.opts.onStop?.(cancelling);
  }

  /**
   * Tasks still without a result: its job's result when it failed for good (`failed`); else
   * `unknown` (queued, running or done: this process cannot tell), with the early end's reason
   * (`why`), or CANCELLED once a cancel's grace passed (or Redis went away while cancelling), as
   * a run of one task per host reports them.
   */
  private fillMissing(why: EndedEarly | undefined, failed: ReadonlyMap<string, TaskResult>): void {
    const cause =
      why === undefined
        ? `the run was cancelled and ${this.redisDown ? 'Redis does not answer' : 'none came in time'}`
        : why.refused !== undefined
          ? `Redis refuses writes (${why.refused})`
          : why.code === 'REDIS_UNAVAILABLE'
            ? 'Redis unreachable'
            : why.code === 'REDIS_DATA_LOST'
              ? "the run's records are gone from Redis (flushed, or restarted without its data)"
              : 'wait timed out';
    for (const taskId of [...this.outstanding.keys()]) {
      const r = failed.get(taskId) ?? syntheticResult(this.runId, taskId, 'unknown', why?.code ?? 'CANCELLED', `no result: ${cause}; the task may still run`);
      // A failed job's result is the task's own; the others say only that none came.
      this.result(r, [], false, !failed.has(taskId));
    }
  }

  async close(early: boolean): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    if (this.worker) await bounded(this.worker.drain(early ? 0 : 5000), early ? CLEANUP_MS : 10_000);
  }
}
