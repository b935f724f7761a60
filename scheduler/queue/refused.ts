/**
 * Tasks refused before they were queued: a streamed run's input item that cannot become a valid
 * task (a task-list record that is not UTF-8, too long, ...). Each is a task of the run all the
 * same, with a result of its own (outcome `refused`, reason its error code) published on the
 * run's stream like any other, and its id registered with the run's tasks, so `gaxx runs wait`,
 * `runs show` and `--resume` report it too. Nothing is queued for it and no agent sees it.
 */
import type { Cluster, Redis } from 'ioredis';
import type { ErrorCode } from '../../proto/index.js';
import { publishResult, taskResult, type TaskResult } from './results.js';
import { registerRun } from './runs.js';

/** An input item refused before it was queued: its task id and why. */
export interface RefusedTask {
  taskId: string;
  refused: { code: ErrorCode; message: string };
}

/** Whether a streamed item is a refusal rather than a task. */
export function isRefused(t: object): t is RefusedTask {
  return 'refused' in t;
}

/** The result of a refused task. */
export function refusedResult(runId: string, t: RefusedTask): TaskResult {
  return taskResult({ runId, taskId: t.taskId, host: '', outcome: 'refused', reason: t.refused.code }, { error: t.refused.message });
}

/**
 * Publishes each refusal as its task's result, then registers the task ids with the run (a
 * result first: a follower never waits for a registered task that has none). Repeating it adds
 * nothing (results are published once per task).
 */
export async function publishRefused(redis: Redis | Cluster, runId: string, refused: readonly RefusedTask[]): Promise<void> {
  if (refused.length === 0) return;
  for (const t of refused) await publishResult(redis, refusedResult(runId, t), []);
  const taskIds = refused.map((t) => t.taskId);
  await registerRun(redis, { runId, taskIds, hosts: Object.fromEntries(taskIds.map((id) => [id, ''])), createdAt: Date.now() });
}
