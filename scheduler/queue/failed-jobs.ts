/**
 * Jobs whose attempts ran out. BullMQ moves a job that failed its last attempt (e.g. its result
 * write refused by Redis through each attempt, OOM or MISCONF) to its queue's failed set, and
 * nothing takes it again. Its task must still end with a result, or every wait for its run would
 * wait for ever: the worker publishes one when the job fails for good, and every reader of a run
 * (followRun) looks for the run's failed jobs without a result and publishes theirs, so a run
 * whose worker could not write is finished by its next reader once Redis takes writes. A result
 * is published once per task (results.ts), whoever gets there first.
 */
import { QueueKeys } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { KEY_PREFIX } from '../redis/redis.js';
import { publishResult, runDoneKey, taskResult, type TaskResult } from './results.js';
import { runJobKey, runQueueName } from './runs.js';
import { jobIdFor, TASK_ID } from './task.js';
import { bounded } from './run-landing.js';
import { refusalHint, type EndedEarly } from './write-health.js';

const queueKeys = new QueueKeys(KEY_PREFIX);

/** Failed jobs looked at per sweep (a run's failed set is small; this bounds one that is not). */
const SWEEP_MAX = 1000;

/** What a failed job tells about its task (the job's hash is Redis's, not a trust root: strings are capped). */
export interface FailedJob {
  taskId: string;
  /** Why its last attempt failed. */
  failedReason: string;
  attemptsMade: number;
  /** A worker took it at least once: the command may have run. */
  taken: boolean;
  /** Where it was placed or pinned ('' when nowhere). */
  host: string;
}

/** Redis's refusal in a failure's message (a refused write fails with Redis's own reply). */
const REFUSAL = /\b(MISCONF|OOM|READONLY|NOPERM)\b.*$/s;

/**
 * The result of a task whose job failed for good: `unknown` when a worker took it (the command
 * may have run; its result was not published), else `error`. The reason is REDIS_UNAVAILABLE when
 * Redis refused its writes, else INTERNAL; the error says the job will not run again, and why.
 */
export function failedJobResult(runId: string, job: FailedJob): TaskResult {
  const refused = REFUSAL.exec(job.failedReason)?.[0];
  const why = `its job failed after ${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'} and will not run again: ${job.failedReason || 'no reason given'}`;
  const hint = refused ? ` (Redis refused the write: ${refusalHint(refused)})` : '';
  const ran = job.taken ? `; the command may have run${job.host ? ` on ${job.host}` : ''}, its result was not published` : '';
  return taskResult(
    { runId, taskId: job.taskId, host: job.host, outcome: job.taken ? 'unknown' : 'error', reason: refused !== undefined ? 'REDIS_UNAVAILABLE' : 'INTERNAL' },
    { error: `${why}${hint}${ran}` },
  );
}

/** Reads a failed job's hash; undefined when it is gone or is not one of `runId`'s tasks. */
async function readFailed(redis: Redis | Cluster, runId: string, jobId: string): Promise<FailedJob | undefined> {
  const taskId = jobId.slice(runId.length + 1);
  if (jobId !== jobIdFor(runId, taskId) || !TASK_ID.test(taskId)) return undefined;
  const [data = null, failedReason = null, atm, ats, processedOn = null] = await redis.hmget(
    runJobKey(runId, jobId),
    'data',
    'failedReason',
    'atm',
    'ats',
    'processedOn',
  );
  if (data === null && failedReason === null) return undefined;
  return {
    taskId,
    failedReason: (failedReason ?? '').slice(0, 2000),
    attemptsMade: Math.max(0, Number.parseInt(atm ?? '0', 10) || 0),
    taken: (Number.parseInt(ats ?? '0', 10) || 0) > 0 || processedOn !== null,
    host: hostOf(data),
  };
}

/** The agent a job's task was placed on, else its pinned host, from its data. */
function hostOf(data: string | null): string {
  try {
    const d = JSON.parse(data ?? '{}') as { dispatch?: { placedOn?: unknown }; target?: { host?: unknown } };
    const h = d.dispatch?.placedOn ?? d.target?.host;
    return typeof h === 'string' && h.length <= 260 ? h : '';
  } catch {
    return '';
  }
}

/**
 * The run's failed jobs whose task has no result, as FailedJobs (at most SWEEP_MAX looked at).
 * Reads only: a wait that ended early uses it to say which tasks will never run again.
 */
export async function failedWithoutResult(redis: Redis | Cluster, runId: string): Promise<FailedJob[]> {
  const ids = await redis.zrange(queueKeys.getKeys(runQueueName(runId)).failed as string, 0, SWEEP_MAX - 1);
  if (ids.length === 0) return [];
  const taskIds = ids.map((id) => id.slice(runId.length + 1));
  const have = await redis.hmget(runDoneKey(runId), ...taskIds);
  const out: FailedJob[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (have[i] !== null) continue;
    const job = await readFailed(redis, runId, ids[i] as string);
    if (job) out.push(job);
  }
  return out;
}

/** Publishes a result for each of the run's failed jobs without one; resolves to how many it published. */
export async function settleFailedJobs(redis: Redis | Cluster, runId: string): Promise<number> {
  let n = 0;
  for (const job of await failedWithoutResult(redis, runId)) if (await publishResult(redis, failedJobResult(runId, job), [])) n++;
  return n;
}

/** How often a run's reader looks for failed jobs without a result. */
export const SWEEP_MS = 5000;

/**
 * A reader's periodic settleFailedJobs (at most every SWEEP_MS, one at a time, on the caller's
 * connection). Its failures are left to the next sweep: a Redis that refuses the write is the
 * wait's own bound's business.
 */
export class FailedSweep {
  private at = 0;
  private running = false;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly runId: string,
  ) {}

  tick(now = Date.now()): void {
    if (this.running || now - this.at < SWEEP_MS || this.redis.status !== 'ready') return;
    this.at = now;
    this.running = true;
    settleFailedJobs(this.redis, this.runId)
      .catch(() => 0)
      .finally(() => (this.running = false));
  }
}

/**
 * At a wait's early end: the results of the run's tasks whose job failed for good without one
 * (they will not run again, so "queued" would be false), by task id, and their count in
 * `ended.failed`. Best effort within a second: Redis may be away then (nothing is known: empty).
 */
export async function failedAtWaitEnd(redis: Redis | Cluster, runId: string, ended: EndedEarly | undefined): Promise<Map<string, TaskResult>> {
  const jobs =
    redis.status === 'ready'
      ? await bounded(
          failedWithoutResult(redis, runId).catch(() => []),
          1000,
        )
      : undefined;
  const out = new Map((jobs ?? []).map((j) => [j.taskId, failedJobResult(runId, j)]));
  if (ended && out.size > 0) ended.failed = out.size;
  return out;
}
