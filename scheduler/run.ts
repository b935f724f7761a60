/**
 * What `gaxx run` does with the queue: enqueue the run, make sure something will work on it
 * (a daemon's heartbeat, or else the same worker started in this process), and wait for every
 * task's result on the run's stream. A run always finishes on its own.
 */
import { GaxxError, isGaxxError } from '../proto/index.js';
import type { AgentConnector } from './agent-pool.js';
import { schedulerAlive } from './daemon.js';
import { TaskQueue } from './queue.js';
import type { RedisSettings } from './redis.js';
import { waitForRun, type RunResults, type WaitOptions } from './results.js';
import type { RunSpecInput } from './task.js';
import { SchedulerWorker, type WorkerLog } from './worker.js';

export interface RunAndWaitOptions extends WaitOptions {
  settings: RedisSettings;
  /** For the in-process worker; without it, a daemon must be running. */
  connect?: AgentConnector;
  /** 'auto' (default): in-process worker only when no daemon heartbeat is present. */
  worker?: 'auto' | 'always' | 'never';
  concurrency?: number;
  log?: WorkerLog;
}

export interface RunOutcome extends RunResults {
  runId: string;
  /** Whether this process ran a worker for the run. */
  inProcess: boolean;
}

/** How often a waiting run checks that a daemon is still there (else it works on the queue itself). */
const WATCH_MS = 2000;

/** Enqueues `run` and waits for all its results. */
export async function runAndWait(run: RunSpecInput, opts: RunAndWaitOptions): Promise<RunOutcome> {
  const queue = await TaskQueue.open(opts.settings);
  let worker: SchedulerWorker | undefined;
  let watch: NodeJS.Timeout | undefined;
  const mode = opts.worker ?? 'auto';
  const startWorker = (): void => {
    if (worker || !opts.connect) return;
    worker = SchedulerWorker.start({ settings: opts.settings, connect: opts.connect, concurrency: opts.concurrency, log: opts.log });
  };
  try {
    const enq = await queue.enqueueRun(run);
    if (mode === 'always' || (mode === 'auto' && !(await schedulerAlive(queue.redis)))) {
      if (!opts.connect) throw new GaxxError('FAILED_PRECONDITION', 'no scheduler daemon is running and no agent credentials were given to run one here');
      startWorker();
    } else if (mode === 'auto') {
      // A daemon that dies while we wait stops refreshing its heartbeat: take over then.
      watch = setInterval(() => void schedulerAlive(queue.redis).then((alive) => (alive ? undefined : startWorker()), () => undefined), WATCH_MS);
    }
    try {
      const results = await waitForRun(queue.redis, enq.runId, enq.taskIds, opts);
      return { ...results, runId: enq.runId, inProcess: worker !== undefined };
    } catch (e) {
      // Interrupted (or timed out): tasks not yet taken are withdrawn; running ones finish.
      if (isGaxxError(e, 'CANCELLED') || isGaxxError(e, 'DEADLINE_EXCEEDED')) await queue.withdraw(enq.jobIds).catch(() => 0);
      throw e;
    }
  } finally {
    clearInterval(watch);
    await (worker as SchedulerWorker | undefined)?.drain(5000);
    await queue.close();
  }
}
