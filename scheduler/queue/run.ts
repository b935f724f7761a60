/**
 * What `gaxx run` does with the queue: enqueue the run, make sure something will work on it
 * (a daemon's heartbeat, or else the same worker started in this process), and wait for every
 * task's result on the run's stream. A run always finishes on its own.
 *
 * Cancelling (`cancel` aborts, e.g. Ctrl-C): the run's cancel flag is set in Redis for every
 * worker (daemon or in-process; the in-process one is also told directly), tasks no worker has
 * taken are withdrawn and published as `cancelled`, running ones are Cancelled on their agents
 * by the workers and report `cancelled` themselves. The wait then returns what arrived within
 * `cancelGraceMs`; a task still without a result is reported as an `error` (DEADLINE_EXCEEDED).
 */
import { GaxxError, isGaxxError, type TaskSigner } from '../../proto/index.js';
import type { AgentConnector } from '../dispatch/agent-pool.js';
import { requestCancel } from './cancel.js';
import { schedulerAlive } from '../daemon/daemon.js';
import { TaskQueue, type EnqueuedRun } from './queue.js';
import type { RedisSettings } from '../redis/redis.js';
import { publishResult, waitForRun, type RunResults, type TaskResult, type WaitOptions } from './results.js';
import type { RunSpecInput } from './task.js';
import { SchedulerWorker, type WorkerLog } from '../dispatch/worker.js';

export interface RunAndWaitOptions extends WaitOptions {
  settings: RedisSettings;
  /** The submitting operator's key: every task is signed with it (agents run only signed work). */
  signer: TaskSigner;
  /** When the signatures expire (default: a day from now). */
  expiresAtUnixMs?: number;
  /** For the in-process worker; without it, a daemon must be running. */
  connect?: AgentConnector;
  /** 'auto' (default): in-process worker only when no daemon heartbeat is present. */
  worker?: 'auto' | 'always' | 'never';
  concurrency?: number;
  log?: WorkerLog;
  /** Aborting cancels the run (see the module comment); the call then resolves with `cancelled`. */
  cancel?: AbortSignal;
  /** After a cancel, how long to wait for the running tasks' results (default 15 s). */
  cancelGraceMs?: number;
}

export interface RunOutcome extends RunResults {
  runId: string;
  /** Whether this process ran a worker for the run. */
  inProcess: boolean;
  /** Whether the run was cancelled before every task had a result. */
  cancelled: boolean;
}

/** How often a waiting run checks that a daemon is still there (else it works on the queue itself). */
const WATCH_MS = 2000;
const CANCEL_GRACE_MS = 15_000;

/** A result for a task that never got one of its own. */
function syntheticResult(runId: string, taskId: string, host: string, outcome: TaskResult['outcome'], reason: string, error: string): TaskResult {
  return {
    runId, taskId, host, outcome, exitCode: null, signal: null, reason, error, durationMs: 0, stdoutBytes: 0, stderrBytes: 0,
    truncated: false, attempts: 0, attached: false, replayed: false, finishedAt: new Date().toISOString(),
  };
}

function hostOf(run: RunSpecInput, taskId: string): string {
  const t = run.tasks.find((x) => x.taskId === taskId);
  return t && 'host' in t.target ? t.target.host : '';
}

/**
 * Cancels an enqueued run: flag for every worker, direct cancel of this process's worker, and
 * `cancelled` results for the tasks withdrawn before any worker took them.
 */
async function cancelRun(queue: TaskQueue, run: RunSpecInput, enq: EnqueuedRun, worker: SchedulerWorker | undefined): Promise<void> {
  await requestCancel(queue.redis, enq.runId);
  // Withdraw before stopping this process's running tasks, so the slots they free do not take
  // queued ones (a worker that does take one sees the flag and never dispatches it).
  const withdrawn = new Set(await queue.withdrawIds(enq.jobIds));
  worker?.cancelRun(enq.runId);
  for (const [i, jobId] of enq.jobIds.entries()) {
    if (!withdrawn.has(jobId)) continue;
    const taskId = enq.taskIds[i] as string;
    await publishResult(queue.redis, syntheticResult(enq.runId, taskId, hostOf(run, taskId), 'cancelled', 'cancelled', 'run cancelled before the task ran'), []);
  }
}

/** Enqueues `run` and waits for all its results. */
export async function runAndWait(run: RunSpecInput, opts: RunAndWaitOptions): Promise<RunOutcome> {
  const queue = await TaskQueue.open(opts.settings);
  let worker: SchedulerWorker | undefined;
  let watch: NodeJS.Timeout | undefined;
  let grace: NodeJS.Timeout | undefined;
  let onCancel = (): void => undefined;
  const mode = opts.worker ?? 'auto';
  const startWorker = (): void => {
    if (worker || !opts.connect) return;
    worker = SchedulerWorker.start({ settings: opts.settings, connect: opts.connect, concurrency: opts.concurrency, log: opts.log });
  };
  try {
    const enq = await queue.enqueueRun(run, opts.signer, opts.expiresAtUnixMs === undefined ? {} : { expiresAtUnixMs: opts.expiresAtUnixMs });
    if (mode === 'always' || (mode === 'auto' && !(await schedulerAlive(queue.redis)))) {
      if (!opts.connect) throw new GaxxError('FAILED_PRECONDITION', 'no scheduler daemon is running and no agent credentials were given to run one here');
      startWorker();
    } else if (mode === 'auto') {
      // A daemon that dies while we wait stops refreshing its heartbeat: take over then.
      watch = setInterval(() => void schedulerAlive(queue.redis).then((alive) => (alive ? undefined : startWorker()), () => undefined), WATCH_MS);
    }
    const stop = new AbortController();
    let cancelling: Promise<void> | undefined;
    onCancel = () => {
      // The grace for running tasks' results starts once the withdrawn ones are published.
      cancelling ??= cancelRun(queue, run, enq, worker)
        .catch((e: Error) => opts.log?.warn({ run: enq.runId, err: e.message }, 'cancel incomplete'))
        .finally(() => (grace = setTimeout(() => stop.abort(), opts.cancelGraceMs ?? CANCEL_GRACE_MS).unref()));
    };
    if (opts.cancel?.aborted) onCancel();
    else opts.cancel?.addEventListener('abort', onCancel, { once: true });
    try {
      const results = await waitForRun(queue.redis, enq.runId, enq.taskIds, { ...opts, until: stop.signal });
      await cancelling;
      fillMissing(results, enq, run, opts);
      return { ...results, runId: enq.runId, inProcess: worker !== undefined, cancelled: cancelling !== undefined };
    } catch (e) {
      // Interrupted (or timed out): tasks not yet taken are withdrawn; running ones finish.
      if (isGaxxError(e, 'CANCELLED') || isGaxxError(e, 'DEADLINE_EXCEEDED')) await queue.withdraw(enq.jobIds).catch(() => 0);
      throw e;
    }
  } finally {
    opts.cancel?.removeEventListener('abort', onCancel);
    clearInterval(watch);
    clearTimeout(grace);
    await (worker as SchedulerWorker | undefined)?.drain(5000);
    await queue.close();
  }
}

/** After a cancel's grace: every task without a result gets an `error` one, and is reported. */
function fillMissing(results: RunResults, enq: EnqueuedRun, run: RunSpecInput, opts: RunAndWaitOptions): void {
  for (const taskId of enq.taskIds) {
    if (results.results.has(taskId)) continue;
    const r = syntheticResult(enq.runId, taskId, hostOf(run, taskId), 'error', 'DEADLINE_EXCEEDED', 'no result in time after the run was cancelled; the task may still be running');
    results.results.set(taskId, r);
    opts.onResult?.(r, [], false);
  }
}
