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
 */
import { GaxxError, isGaxxError, type TaskSigner } from '../../proto/index.js';
import type { AgentConnector } from '../dispatch/agent-pool.js';
import { SchedulerWorker, type WorkerLog } from '../dispatch/worker.js';
import { schedulerAlive } from '../daemon/daemon.js';
import type { RedisSettings } from '../redis/redis.js';
import { BatchPuller } from './batches.js';
import { isCancelled, requestCancel } from './cancel.js';
import { followRun, type FollowHandlers } from './follow.js';
import { TaskQueue } from './queue.js';
import { publishResult, taskResult, type OutputChunk, type TaskResult } from './results.js';
import { countOutcome, createRunRecord, noteEnqueued, updateRunRecord, type OutcomeCounts, type RunRecord } from './run-index.js';
import { newRunId, type TaskInput } from './task.js';

export interface StreamRunOptions extends FollowHandlers {
  settings: RedisSettings;
  /** The submitting operator's key: every task is signed with it as its batch is enqueued. */
  signer: TaskSigner;
  /** When the signatures expire (default: a day after each batch is enqueued). */
  expiresAtUnixMs?: number;
  connect?: AgentConnector;
  worker?: 'auto' | 'always' | 'never';
  workerConcurrency?: number;
  log?: WorkerLog;
  /** At most this many of the run's tasks are queued or running at once. */
  window: number;
  /** Tasks per addBulk (default 500). */
  batchMax?: number;
  cancel?: AbortSignal;
  cancelGraceMs?: number;
  /** Give up waiting (DEADLINE_EXCEEDED) after this long. */
  timeoutMs?: number;
  runId?: string;
  /** What the run index shows about the run. */
  record: Pick<RunRecord, 'argv' | 'fleet' | 'agents' | 'mode'>;
  /** Called after each batch is enqueued, with the run's enqueued total. */
  onEnqueued?: (enqueued: number) => void;
}

export interface StreamRunOutcome {
  runId: string;
  total: number;
  counts: OutcomeCounts;
  cancelled: boolean;
  inProcess: boolean;
}

const CANCEL_GRACE_MS = 15_000;
const HEARTBEAT_MS = 1000;

/** A result for a task that never got one of its own. */
export function syntheticResult(runId: string, taskId: string, outcome: TaskResult['outcome'], reason: string, error: string): TaskResult {
  return taskResult({ runId, taskId, host: '', outcome, reason }, { error, finishedAt: new Date().toISOString() });
}

/** Enqueues `tasks` in bounded batches and follows the run until every enqueued task has a result. */
export async function streamRun(tasks: AsyncIterable<TaskInput>, opts: StreamRunOptions): Promise<StreamRunOutcome> {
  const queue = await TaskQueue.open(opts.settings);
  const run = new StreamedRun(queue, opts.runId ?? newRunId(), opts);
  try {
    return await run.execute(tasks[Symbol.asyncIterator]());
  } finally {
    await run.close();
    await queue.close();
  }
}

class StreamedRun {
  private readonly outstanding = new Map<string, string>();
  private readonly counts: OutcomeCounts = {};
  private readonly stopInput = new AbortController();
  private readonly stopFollow = new AbortController();
  private enqueued = 0;
  private inputDone = false;
  private cancelling: Promise<void> | undefined;
  private worker: SchedulerWorker | undefined;
  private slot: (() => void) | undefined;
  /** Results that arrived before their batch's enqueue call returned. */
  private readonly early = new Set<string>();
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly queue: TaskQueue,
    readonly runId: string,
    private readonly opts: StreamRunOptions,
  ) {
    this.stopInput.signal.addEventListener('abort', () => this.wake(), { once: true });
  }

  async execute(it: AsyncIterator<TaskInput>): Promise<StreamRunOutcome> {
    const { redis } = this.queue;
    await createRunRecord(redis, { runId: this.runId, startedAt: Date.now(), total: null, ...this.opts.record });
    await this.ensureWorker();
    const onCancel = (): void => this.cancel();
    if (this.opts.cancel?.aborted) onCancel();
    else this.opts.cancel?.addEventListener('abort', onCancel, { once: true });
    this.timers.push(setInterval(() => void this.heartbeat(), HEARTBEAT_MS));
    let state: RunRecord['state'] = 'failed';
    try {
      const following = followRun(redis, this.runId, {
        onLive: this.opts.onLive,
        onResult: (r, o, shown) => this.result(r, o, shown),
        done: (n) => this.inputDone && n >= this.enqueued,
        until: this.stopFollow.signal,
        ...(this.opts.timeoutMs ? { timeoutMs: this.opts.timeoutMs } : {}),
      });
      // A follow that fails must end production too (else it would wait for slots forever).
      following.catch(() => this.stopInput.abort());
      const produced = this.produce(new BatchPuller(it)).catch((e: unknown) => e);
      const followed = await following.then(
        () => undefined,
        (e: unknown) => e,
      );
      const inputError = await produced;
      await this.cancelling;
      this.fillMissing();
      if (followed) throw followed;
      if (inputError) throw inputError;
      // A cancel from elsewhere can end every task before the heartbeat notices the flag.
      const cancelled = this.cancelling !== undefined || (await isCancelled(redis, this.runId));
      state = cancelled ? 'cancelled' : 'done';
      return { runId: this.runId, total: this.enqueued, counts: this.counts, cancelled, inProcess: this.worker !== undefined };
    } catch (e) {
      if (isGaxxError(e, 'DEADLINE_EXCEEDED') || isGaxxError(e, 'CANCELLED')) await this.queue.withdraw([...this.outstanding.values()]).catch(() => 0);
      throw e;
    } finally {
      this.opts.cancel?.removeEventListener('abort', onCancel);
      await updateRunRecord(redis, this.runId, { state, counts: this.counts, total: this.enqueued, finishedAt: Date.now() }).catch(() => undefined);
    }
  }

  /** Reads input into the queue while the window has room; on an input error, cancels the rest. */
  private async produce(puller: BatchPuller<TaskInput>): Promise<void> {
    const batchMax = this.opts.batchMax ?? 500;
    try {
      while (!this.stopInput.signal.aborted) {
        const free = this.opts.window - this.outstanding.size;
        if (free <= 0) {
          await new Promise<void>((r) => (this.slot = r));
          continue;
        }
        const batch = await puller.take(Math.min(batchMax, free), 20, this.stopInput.signal);
        if (batch.length === 0) {
          if (puller.ended || this.stopInput.signal.aborted) break;
          continue;
        }
        const expiry = this.opts.expiresAtUnixMs === undefined ? {} : { expiresAtUnixMs: this.opts.expiresAtUnixMs };
        const enq = await this.queue.enqueueRun({ runId: this.runId, tasks: batch }, this.opts.signer, expiry);
        enq.taskIds.forEach((id, i) => (this.early.delete(id) ? undefined : this.outstanding.set(id, enq.jobIds[i] as string)));
        this.enqueued += batch.length;
        await noteEnqueued(this.queue.redis, this.runId, batch.length);
        this.opts.onEnqueued?.(this.enqueued);
      }
    } catch (e) {
      this.cancel();
      throw e;
    } finally {
      this.inputDone = true;
      await puller.close();
      await updateRunRecord(this.queue.redis, this.runId, { total: this.enqueued }).catch(() => undefined);
      this.wake();
    }
  }

  /** Every result on the run's stream is a distinct task of this run. */
  private result(r: TaskResult, o: OutputChunk[], shown: boolean): void {
    if (!this.outstanding.delete(r.taskId) && !this.inputDone) this.early.add(r.taskId);
    countOutcome(this.counts, r.outcome);
    this.opts.onResult?.(r, o, shown);
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
    // Its own run only: a task-list run never takes another run's jobs.
    this.worker = SchedulerWorker.start({
      settings: this.opts.settings,
      connect: this.opts.connect,
      runId: this.runId,
      concurrency: this.opts.workerConcurrency,
      log: this.opts.log,
    });
  }

  /** Refreshes the submitter heartbeat, notices a cancel from elsewhere and a daemon that died. */
  private async heartbeat(): Promise<void> {
    const { redis } = this.queue;
    try {
      if (!this.inputDone) await updateRunRecord(redis, this.runId, { seen: Date.now() });
      if (!this.cancelling && (await isCancelled(redis, this.runId))) this.cancel();
      if ((this.opts.worker ?? 'auto') === 'auto' && !this.worker && !(await schedulerAlive(redis))) this.startWorker();
    } catch {
      // Redis hiccup: the next beat tries again.
    }
  }

  /** Stops input, withdraws queued tasks (published as cancelled), cancels running ones. */
  cancel(): void {
    this.cancelling ??= (async () => {
      this.stopInput.abort();
      const { redis } = this.queue;
      await requestCancel(redis, this.runId);
      const withdrawn = new Set(await this.queue.withdrawIds([...this.outstanding.values()]));
      this.worker?.cancelRun(this.runId);
      for (const [taskId, jobId] of [...this.outstanding]) {
        if (withdrawn.has(jobId))
          await publishResult(redis, syntheticResult(this.runId, taskId, 'cancelled', 'cancelled', 'run cancelled before the task ran'), []);
      }
    })()
      .catch((e: Error) => this.opts.log?.warn({ run: this.runId, err: e.message }, 'cancel incomplete'))
      .finally(() => this.timers.push(setTimeout(() => this.stopFollow.abort(), this.opts.cancelGraceMs ?? CANCEL_GRACE_MS).unref()));
  }

  /** After a cancel's grace: tasks still without a result are reported as `error`. */
  private fillMissing(): void {
    for (const taskId of [...this.outstanding.keys()]) {
      this.result(
        syntheticResult(this.runId, taskId, 'error', 'DEADLINE_EXCEEDED', 'no result in time after the run was cancelled; the task may still be running'),
        [],
        false,
      );
    }
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await this.worker?.drain(5000);
  }
}
