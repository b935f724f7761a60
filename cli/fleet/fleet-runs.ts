/**
 * The runs on a fleet that is about to go: `gaxx delete` (and the daemon's reaper) cancels them
 * first, so that their `gaxx run` ends at once, its queued tasks withdrawn and its running ones
 * stopped, instead of waiting for agents that will not come back and reporting the tasks'
 * outcomes lost minutes later.
 */
import { GaxxError, isGaxxError } from '../../proto/index.js';
import { cancelRecordedRun, unfinishedFleetRuns, withReadyClient, type RedisSettings } from '../../scheduler/index.js';
import type { GaxxConfig } from '../config.js';
import { fleetSinceOf, type FleetState } from '../state.js';
import { withRedis } from '../run/redis-session.js';

function unfinished(settings: RedisSettings, fleet: string, since: number): Promise<string[]> {
  return withReadyClient(settings, async (redis) => (await unfinishedFleetRuns(redis, fleet, since)).map((r) => r.runId));
}

/**
 * The ids of the runs on `fleet` that may still have tasks to run, newest first. `since`: the
 * fleet's creation (fleetSinceOf) when its state is known: runs from before were on an earlier
 * fleet of the name.
 */
export function fleetRunsInProgress(config: GaxxConfig, fleet: string, since = 0): Promise<string[]> {
  return withRedis(config, (settings) => unfinished(settings, fleet, since));
}

/** Since when runs are on the fleet `state` records (its creation); 0 (every run) without a state or with a broken one. */
export function fleetRunsSince(state: FleetState | undefined): number {
  try {
    return state ? fleetSinceOf(state) : 0;
  } catch {
    return 0;
  }
}

/** What cancelling a fleet's runs did: the runs cancelled, or why they could not be. */
export type FleetRunsCancel = { cancelled: string[] } | { cancelled: string[]; error: GaxxError };

/**
 * Cancels every run on `fleet` (started since `since`) that may still have tasks to run (`why`
 * is what their withdrawn tasks' results say). Never throws: a Redis that cannot be reached must not stop the delete.
 */
export async function cancelFleetRuns(config: GaxxConfig, fleet: string, why: string, since = 0): Promise<FleetRunsCancel> {
  const cancelled: string[] = [];
  try {
    await withRedis(config, async (settings) => {
      for (const runId of await unfinished(settings, fleet, since)) {
        // One whose tasks all had their results by now ended on its own: not cancelled, not said to be.
        if (!(await cancelRecordedRun(settings, runId, why)).finished) cancelled.push(runId);
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
