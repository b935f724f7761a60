/**
 * The daemon's fleet reaper: every `intervalMs` it checks the fleets that have limits
 * (queue/fleet-limits.ts) and ends those past their TTL or budget through `reap`, which the
 * process running the daemon supplies (`gaxx scheduler` destroys the fleet's instances through
 * its provider, revokes its certificates and unregisters it; the scheduler module itself holds
 * no provider code). One daemon reaps a fleet at a time (a lock in Redis); a failed reap is
 * tried again next round; limits are cleared once the reap succeeded.
 *
 * The queue is not a trust root: anyone who can write to Redis can write a limits record. The
 * record in Redis only names the fleets to look at; whether a fleet is due is reckoned from the
 * limits the operator recorded (`ownLimits`: the fleet's state file, which no Redis writer can
 * touch), and a fleet is left alone, with a warning, when it has none or Redis's differ.
 */
import type { Cluster, Redis } from 'ioredis';
import type { WorkerLog } from '../dispatch/worker.js';
import {
  clearFleetLimits,
  fleetCost,
  getFleetLimits,
  limitedFleets,
  limitReached,
  reapLockKey,
  sameLimits,
  type FleetLimits,
  type LimitReason,
} from '../queue/fleet-limits.js';

export interface ReaperOptions {
  redis: Redis | Cluster;
  /** Ends a fleet; resolves once it is gone (throws to be tried again). */
  reap: (fleet: string, reason: LimitReason, costSoFar: number) => Promise<void>;
  /**
   * The fleet's limits as its operator recorded them when spawning it (with the price of its
   * hosts), or undefined when it has none or no record here; throws when the record is unreadable.
   * Only these decide whether a fleet is due.
   */
  ownLimits: (fleet: string) => FleetLimits | undefined | Promise<FleetLimits | undefined>;
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
  /** Fleets refused, with why: each refusal is logged when it starts or its reason changes, not every round. */
  private readonly refused = new Map<string, string>();

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
    const now = this.opts.now?.() ?? Date.now();
    const fleets = await limitedFleets(this.opts.redis);
    // Forget refusals of fleets no longer listed (the map stays as small as the set).
    const listed = new Set(fleets);
    for (const f of this.refused.keys()) if (!listed.has(f)) this.refused.delete(f);
    for (const fleet of fleets) {
      // One fleet's trouble (an unreadable state file, a name that is no fleet's) never stops the others.
      try {
        const due = await this.due(fleet, now);
        if (due) await this.end(fleet, due.reason, due.limits, now);
      } catch (e) {
        this.note(fleet, `not checked: ${(e as Error).message}`, 'fleet reaper: fleet not checked');
      }
    }
  }

  /** Why `fleet` is due, by its own record, or undefined (not due, or refused and logged). */
  private async due(fleet: string, now: number): Promise<{ reason: LimitReason; limits: FleetLimits } | undefined> {
    const shared = await getFleetLimits(this.opts.redis, fleet);
    if (!shared) return undefined;
    const own = await this.opts.ownLimits(fleet);
    const reason = own && limitReached(own, now);
    // Nothing says the fleet is due: nothing to refuse either.
    if (!reason && !limitReached(shared, now)) return this.accept(fleet);
    if (!own) return this.refuse(fleet, 'the fleet has no TTL or budget in its own state');
    if (!sameLimits(own, shared)) return this.refuse(fleet, "its limits in Redis differ from those in the fleet's state");
    this.accept(fleet);
    return reason ? { reason, limits: own } : undefined;
  }

  private refuse(fleet: string, why: string): undefined {
    this.note(fleet, why, "fleet reaper: not deleting a fleet that Redis says is due: the operator's own record of it does not say so");
    return undefined;
  }

  /** Warns about `fleet` once per reason (a refusal lasts until the records change). */
  private note(fleet: string, why: string, msg: string): void {
    if (this.refused.get(fleet) !== why) this.opts.log?.warn({ fleet, why }, msg);
    this.refused.set(fleet, why);
  }

  private accept(fleet: string): undefined {
    this.refused.delete(fleet);
    return undefined;
  }

  private async end(fleet: string, reason: LimitReason, limits: FleetLimits, now: number): Promise<void> {
    const { redis, log } = this.opts;
    // Also held by a spawn of the fleet that is still running (holdFleet).
    const lock = reapLockKey(fleet);
    if ((await redis.set(lock, '1', 'PX', this.opts.lockMs ?? 10 * 60_000, 'NX')) !== 'OK') return;
    try {
      // Another daemon may have reaped it between our read and our lock.
      if (!(await getFleetLimits(redis, fleet))) return;
      const cost = fleetCost(limits, now);
      log?.info({ fleet, reason, cost, currency: limits.currency }, 'fleet reached its limit: deleting it');
      try {
        await this.opts.reap(fleet, reason, cost);
        await clearFleetLimits(redis, fleet);
        log?.info({ fleet, reason }, 'fleet deleted');
      } catch (e) {
        log?.error({ fleet, reason, err: (e as Error).message }, 'fleet delete failed; will try again');
      }
    } finally {
      await redis.del(lock);
    }
  }

  /** Stops; waits for a round in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.round;
  }
}
