/**
 * The daemon's fleet reaper: every `intervalMs` it checks the fleets that have limits
 * (queue/fleet-limits.ts) and ends those past their TTL or budget through `reap`, which the
 * process running the daemon supplies (`gaxx scheduler` destroys the fleet's instances through
 * its provider, revokes its certificates and unregisters it; the scheduler module itself holds
 * no provider code). One daemon reaps a fleet at a time (a lock in Redis, refreshed while it is
 * held), several fleets at once, each round waiting one interval at most; a failed reap is
 * tried again next round; limits are cleared once the reap succeeded.
 *
 * The queue is not a trust root: anyone who can write to Redis can write a limits record. The
 * record in Redis only names the fleets to look at; whether a fleet is due is reckoned from the
 * limits the operator recorded (`ownLimits`: the fleet's state file, which no Redis writer can
 * touch), and a fleet is left alone, with a warning, when it has none or Redis's differ.
 */
import type { Cluster, Redis } from 'ioredis';
import type { WorkerLog } from '../dispatch/worker.js';
import { bounded, CLEANUP_MS } from '../queue/run-landing.js';
import { isGaxxError } from '../../proto/index.js';
import {
  clearFleetLimits,
  fleetCost,
  holdFleet,
  getFleetLimits,
  limitedFleets,
  limitReached,
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
  /** The reap lock's lifetime, refreshed every third of it while a reap runs (default 60 s). */
  lockMs?: number;
  /** Fleets reaped at once (default 4): a provider that hangs holds one of them, not the round. */
  parallel?: number;
  log?: WorkerLog;
  now?: () => number;
}

export const DEFAULT_REAP_INTERVAL_MS = 15_000;
const DEFAULT_REAP_LOCK_MS = 60_000;

/** A running reaper. */
export class FleetReaper {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();
  /** Fleets refused, with why: each refusal is logged when it starts or its reason changes, not every round. */
  private readonly refused = new Map<string, string>();
  /** Reaps under way, by fleet: each fleet has one at most, the daemon `parallel` at most. */
  private readonly reaping = new Map<string, Promise<void>>();
  /** stop() was called: no delete starts after it. */
  private stopped = false;

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
    const started: Array<Promise<void>> = [];
    for (const fleet of fleets) {
      // A round that outlived stop() (it waited on Redis) starts no delete after it.
      if (this.stopped) break;
      // Its reap still runs (a provider that does not answer): that fleet only waits.
      if (this.reaping.has(fleet)) continue;
      // One fleet's trouble (an unreadable state file, a name that is no fleet's) never stops the others.
      try {
        const due = await this.due(fleet, now);
        // Past the bound, the next round starts it.
        if (!due || this.stopped || this.reaping.size >= (this.opts.parallel ?? 4)) continue;
        const reap = this.end(fleet, due.reason, due.limits, now).finally(() => this.reaping.delete(fleet));
        this.reaping.set(fleet, reap);
        started.push(reap);
      } catch (e) {
        this.note(fleet, `not checked: ${(e as Error).message}`, 'fleet reaper: fleet not checked');
      }
    }
    // The round waits for its reaps, but not for ever: one that hangs keeps its fleet, not the next rounds.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => (timer = setTimeout(r, this.opts.intervalMs ?? DEFAULT_REAP_INTERVAL_MS)));
    await Promise.race([Promise.allSettled(started), bound]).finally(() => clearTimeout(timer));
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

  /** Deletes `fleet` under its reap lock; never throws (a failed reap is tried again next round). */
  private async end(fleet: string, reason: LimitReason, limits: FleetLimits, now: number): Promise<void> {
    const { redis, log } = this.opts;
    let release: () => Promise<void>;
    try {
      // The lock is also held by a spawn of the fleet that is still running, or by another daemon's
      // reaper; it is refreshed while held, so a daemon killed mid-reap frees it within lockMs.
      release = await holdFleet(redis, fleet, this.opts.lockMs ?? DEFAULT_REAP_LOCK_MS);
    } catch (e) {
      if (!isGaxxError(e) || e.code !== 'FAILED_PRECONDITION') log?.warn({ fleet, err: (e as Error).message }, 'fleet reaper: could not take the reap lock');
      return;
    }
    try {
      // Another daemon may have reaped it between our read and our lock.
      if (!(await getFleetLimits(redis, fleet))) return;
      const cost = fleetCost(limits, now);
      log?.info({ fleet, reason, cost, currency: limits.currency }, 'fleet reached its limit: deleting it');
      await this.opts.reap(fleet, reason, cost);
      await clearFleetLimits(redis, fleet);
      log?.info({ fleet, reason }, 'fleet deleted');
    } catch (e) {
      log?.error({ fleet, reason, err: (e as Error).message }, 'fleet delete failed; will try again');
    } finally {
      await release().catch(() => undefined);
    }
  }

  /**
   * Stops; waits for the deletes in progress. A round still reading which fleets are due gets
   * CLEANUP_MS: one waiting on a Redis that does not answer would keep a drained daemon for ever.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await bounded(this.round, CLEANUP_MS);
    await Promise.allSettled(this.reaping.values());
  }
}
