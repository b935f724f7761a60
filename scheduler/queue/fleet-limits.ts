/**
 * A fleet's time-to-live and budget, kept beside the fleet directory so the scheduler daemon
 * (any daemon sharing the queue) can end a fleet that outlived its owner's intent: one hash per
 * fleet, `{gaxx}:fleet-limits:<fleet>`, and the set `{gaxx}:fleet-limits` naming them.
 *
 * Cost so far is the fleet's price per hour (the sum over its hosts, in the provider's currency)
 * times the hours since `since`; the budget is reached when that cost reaches it.
 */
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import { GaxxError } from '../../proto/index.js';
import { gaxxKey } from '../redis/redis.js';

const LIMITS_SET = gaxxKey('fleet-limits');
const limitsKey = (fleet: string): string => gaxxKey('fleet-limits', fleet);
/** The per-fleet lock the reaper takes before ending a fleet (daemon/reaper.ts), and a spawn holds while it runs. */
export const reapLockKey = (fleet: string): string => gaxxKey('fleet-reaping', fleet);

/** What a fleet may not outlive or outspend. */
export const FleetLimitsSchema = z
  .object({
    /** When the fleet must be gone (ms epoch); absent: no TTL. */
    expiresAt: z.number().int().positive().optional(),
    /** The most the fleet may cost, in `currency`; absent: no budget. */
    budget: z.number().positive().optional(),
    currency: z.string().max(8).default('USD'),
    /** Price per hour of the whole fleet. */
    pricePerHour: z.number().min(0).default(0),
    /** Start of billing (ms epoch). */
    since: z.number().int().positive(),
  })
  .strict();

export type FleetLimits = z.output<typeof FleetLimitsSchema>;

/** Why a fleet is due to be ended. */
export type LimitReason = 'ttl' | 'budget';

/** The fleet's cost at `now`, in its currency. */
export function fleetCost(l: FleetLimits, now = Date.now()): number {
  return (l.pricePerHour * Math.max(0, now - l.since)) / 3_600_000;
}

/** Whether (and why) a fleet has reached a limit at `now`. */
export function limitReached(l: FleetLimits, now = Date.now()): LimitReason | undefined {
  if (l.expiresAt !== undefined && now >= l.expiresAt) return 'ttl';
  if (l.budget !== undefined && fleetCost(l, now) >= l.budget) return 'budget';
  return undefined;
}

/**
 * Whether two records set the same limits: TTL, budget, currency and start of billing. The price
 * is not compared: it follows the hosts, and the reaper reckons cost with the one its own record gives.
 */
export function sameLimits(a: FleetLimits, b: FleetLimits): boolean {
  return a.expiresAt === b.expiresAt && a.budget === b.budget && a.currency === b.currency && a.since === b.since;
}

/** Records (replaces) a fleet's limits; INVALID_ARGUMENT for bad values. */
export async function setFleetLimits(redis: Redis | Cluster, fleet: string, limits: z.input<typeof FleetLimitsSchema>): Promise<void> {
  const r = FleetLimitsSchema.safeParse(limits);
  if (!r.success) throw new GaxxError('INVALID_ARGUMENT', `fleet limits: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  await redis.multi().set(limitsKey(fleet), JSON.stringify(r.data)).sadd(LIMITS_SET, fleet).exec();
}

/** A fleet's limits, or undefined (none, or unreadable: never acted on). */
export async function getFleetLimits(redis: Redis | Cluster, fleet: string): Promise<FleetLimits | undefined> {
  const raw = await redis.get(limitsKey(fleet));
  if (raw === null) return undefined;
  try {
    const r = FleetLimitsSchema.safeParse(JSON.parse(raw));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** Forgets a fleet's limits (the fleet was deleted). */
export async function clearFleetLimits(redis: Redis | Cluster, fleet: string): Promise<void> {
  await redis.multi().del(limitsKey(fleet)).srem(LIMITS_SET, fleet).exec();
}

/** The fleets that have limits. */
export async function limitedFleets(redis: Redis | Cluster): Promise<string[]> {
  return (await redis.smembers(LIMITS_SET)).sort();
}

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
/** Extends the hold only while it is still this holder's (an expired hold another took stays theirs). */
const REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/**
 * Keeps the reaper off `fleet` while it is being spawned (a TTL shorter than the spawn must not
 * delete hosts under it): holds the fleet's reap lock, refreshed every third of `ttlMs`, until
 * the returned release is called; a spawn that dies lets it expire after `ttlMs`.
 * FAILED_PRECONDITION when a reaper is deleting the fleet right now.
 */
export async function holdFleet(redis: Redis | Cluster, fleet: string, ttlMs = 60_000): Promise<() => Promise<void>> {
  const key = reapLockKey(fleet);
  const token = randomBytes(12).toString('hex');
  if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK')
    throw new GaxxError('FAILED_PRECONDITION', `fleet ${fleet} is being deleted by a scheduler (its TTL or budget was reached)`);
  const timer = setInterval(() => void redis.eval(REFRESH, 1, key, token, String(ttlMs)).catch(() => undefined), Math.max(100, Math.floor(ttlMs / 3)));
  timer.unref();
  return async () => {
    clearInterval(timer);
    await redis.eval(RELEASE, 1, key, token);
  };
}
