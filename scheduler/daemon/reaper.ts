/**
 * The daemon's fleet reaper: every `intervalMs` it checks the fleets that have limits
 * (queue/fleet-limits.ts) and ends those past their TTL or budget through `reap`, which the
 * process running the daemon supplies (`gaxx scheduler` destroys the fleet's instances through
 * its provider, revokes its certificates and unregisters it; the scheduler module itself holds
 * no provider code). One daemon reaps a fleet at a time (a lock in Redis); a failed reap is
 * tried again next round; limits are cleared once the reap succeeded.
 */
import type { Cluster, Redis } from 'ioredis';
import type { WorkerLog } from '../dispatch/worker.js';
import { clearFleetLimits, fleetCost, getFleetLimits, limitedFleets, limitReached, reapLockKey, type LimitReason } from '../queue/fleet-limits.js';

export interface ReaperOptions {
  redis: Redis | Cluster;
  /** Ends a fleet; resolves once it is gone (throws to be tried again). */
  reap: (fleet: string, reason: LimitReason, costSoFar: number) => Promise<void>;
  intervalMs?: number;
  /** How long one daemon holds a fleet's reap lock. */
  lockMs?: number;
  log?: WorkerLog;
  now?: () => number;
}

export const DEFAULT_REAP_INTERVAL_MS = 15_000;

/** A running reaper. */
export class FleetReaper {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: ReaperOptions) {}

  static start(opts: ReaperOptions): FleetReaper {
    const r = new FleetReaper(opts);
    r.timer = setInterval(() => void r.tick(), opts.intervalMs ?? DEFAULT_REAP_INTERVAL_MS);
    void r.tick();
    return r;
  }

  /** Runs one more round after any in progress (rounds never overlap). */
  tick(): Promise<void> {
    this.round = this.round.then(() => this.check().catch((e: Error) => this.opts.log?.warn({ err: e.message }, 'fleet reaper round failed')));
    return this.round;
  }

  private async check(): Promise<void> {
    const { redis, log } = this.opts;
    const now = this.opts.now?.() ?? Date.now();
    for (const fleet of await limitedFleets(redis)) {
      const limits = await getFleetLimits(redis, fleet);
      const reason = limits && limitReached(limits, now);
      if (!limits || !reason) continue;
      // Also held by a spawn of the fleet that is still running (holdFleet).
      const lock = reapLockKey(fleet);
      if ((await redis.set(lock, '1', 'PX', this.opts.lockMs ?? 10 * 60_000, 'NX')) !== 'OK') continue;
      // Another daemon may have reaped it between our read and our lock.
      if (!(await getFleetLimits(redis, fleet))) {
        await redis.del(lock);
        continue;
      }
      const cost = fleetCost(limits, now);
      log?.info({ fleet, reason, cost, currency: limits.currency }, 'fleet reached its limit: deleting it');
      try {
        await this.opts.reap(fleet, reason, cost);
        await clearFleetLimits(redis, fleet);
        log?.info({ fleet, reason }, 'fleet deleted');
      } catch (e) {
        log?.error({ fleet, reason, err: (e as Error).message }, 'fleet delete failed; will try again');
      } finally {
        await redis.del(lock);
      }
    }
  }

  /** Stops; waits for a round in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.round;
  }
}
