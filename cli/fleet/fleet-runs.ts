/**
 * The runs on a fleet that is about to go: `gaxx delete` (and the daemon's reaper) cancels them
 * first, so that their `gaxx run` ends at once, its queued tasks withdrawn and its running ones
 * stopped, instead of waiting for agents that will not come back and reporting the tasks'
 * outcomes lost minutes later.
 */
import { GaxxError, isGaxxError } from '../../proto/index.js';
import { cancelRecordedRun, createRedis, unfinishedFleetRuns, waitReady, type RedisSettings } from '../../scheduler/index.js';
import type { GaxxConfig } from '../config.js';
import { withRedis } from '../run/redis-session.js';

async function unfinished(settings: RedisSettings, fleet: string): Promise<string[]> {
  const redis = createRedis(settings, 'producer');
  redis.on('error', () => undefined);
  try {
    await waitReady(redis, 5000, settings.display);
    return (await unfinishedFleetRuns(redis, fleet)).map((r) => r.runId);
  } finally {
    redis.disconnect();
  }
}

/** The ids of the runs on `fleet` that may still have tasks to run, newest first. */
export function fleetRunsInProgress(config: GaxxConfig, fleet: string): Promise<string[]> {
  return withRedis(config, (settings) => unfinished(settings, fleet));
}

/** What cancelling a fleet's runs did: the runs cancelled, or why they could not be. */
export type FleetRunsCancel = { cancelled: string[] } | { cancelled: string[]; error: GaxxError };

/**
 * Cancels every run on `fleet` that may still have tasks to run (`why` is what their withdrawn
 * tasks' results say). Never throws: a Redis that cannot be reached must not stop the delete.
 */
export async function cancelFleetRuns(config: GaxxConfig, fleet: string, why: string): Promise<FleetRunsCancel> {
  const cancelled: string[] = [];
  try {
    await withRedis(config, async (settings) => {
      for (const runId of await unfinished(settings, fleet)) {
        await cancelRecordedRun(settings, runId, why);
        cancelled.push(runId);
      }
    });
    return { cancelled };
  } catch (e) {
    return {
      cancelled,
      error: isGaxxError(e) ? e : new GaxxError('REDIS_UNAVAILABLE', `cancelling the runs on fleet ${fleet} failed: ${String(e)}`, { cause: e }),
    };
  }
}
