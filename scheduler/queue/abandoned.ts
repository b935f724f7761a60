/**
 * Abandoned runs expire with a clear outcome. A run whose `gaxx run` died keeps its jobs in its
 * own queue, for a daemon or `gaxx run --resume ID`. When neither came for ABANDONED_RUN_MS
 * (its owner stopped refreshing it that long ago), its jobs no worker has taken are withdrawn and
 * each gets an `error` result with reason EXPIRED (never run); the run is forgotten once no job
 * of it is left running. Any `gaxx run` sweeps, in passing.
 */
import type { TaskQueue } from './queue.js';
import { publishResult, taskResult } from './results.js';
import { ABANDONED_RUN_MS, loadRunMeta, staleRuns } from './runs.js';
import { jobIdFor } from './task.js';

/** Expires the runs abandoned longer than `maxAgeMs`; returns how many tasks were expired. */
export async function expireAbandonedRuns(queue: TaskQueue, maxAgeMs = ABANDONED_RUN_MS, now = Date.now()): Promise<number> {
  let expired = 0;
  for (const runId of await staleRuns(queue.redis, now - maxAgeMs)) {
    const meta = await loadRunMeta(queue.redis, runId);
    if (!meta) {
      // Its records are gone (TTL): nothing to report on, nothing to keep.
      await queue.forgetRun(runId);
      continue;
    }
    const withdrawn = new Set(await queue.withdrawIds(meta.taskIds.map((t) => jobIdFor(runId, t))));
    for (const taskId of meta.taskIds) {
      if (!withdrawn.has(jobIdFor(runId, taskId))) continue;
      const hours = Math.round(maxAgeMs / 3_600_000);
      const r = taskResult(
        { runId, taskId, host: meta.hosts[taskId] ?? '', outcome: 'error', reason: 'EXPIRED' },
        { error: `run abandoned by its owner; not run within ${hours} h (never started)` },
      );
      if (await publishResult(queue.redis, r, [])) expired += 1;
    }
    // Jobs some worker took before stay (only a worker taking them can reach their executions).
    await queue.forgetWhenIdle(runId, 0);
  }
  return expired;
}
