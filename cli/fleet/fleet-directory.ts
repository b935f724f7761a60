/** Registering and forgetting a fleet in the scheduler's fleet directory (Redis), with its TTL and budget. */
import {
  clearFleetLimits,
  createRedis,
  forgetFleet,
  holdFleet,
  redisTarget,
  registerFleet,
  schedulerAlive,
  setFleetLimits,
  waitReady,
  type FleetAgent,
  type FleetLimits,
} from '../../scheduler/index.js';
import type { GaxxConfig } from '../config.js';
import { fleetPricePerHour, type FleetState } from '../state.js';

async function withRedis<T>(config: GaxxConfig, fn: (redis: ReturnType<typeof createRedis>) => Promise<T>): Promise<T> {
  const target = await redisTarget(config.redis.url, config.paths.stateDir);
  const redis = createRedis(target.settings, 'producer');
  // Failures reach the caller through waitReady and the commands; unheard, ioredis prints each.
  redis.on('error', () => undefined);
  try {
    await waitReady(redis, 5000, target.settings.display);
    return await fn(redis);
  } finally {
    redis.disconnect();
    await target.release();
  }
}

/** Makes `fleet` with `agents` known to every scheduler sharing the queue. */
export function publishFleet(config: GaxxConfig, fleet: string, agents: FleetAgent[]): Promise<void> {
  return withRedis(config, (r) => registerFleet(r, fleet, agents));
}

/** Removes `fleet` (and any TTL or budget it had) from the scheduler's directory. */
export function unpublishFleet(config: GaxxConfig, fleet: string): Promise<void> {
  return withRedis(config, async (r) => {
    await forgetFleet(r, fleet);
    await clearFleetLimits(r, fleet);
  });
}

/**
 * The fleet's TTL and budget as `gaxx spawn --ttl/--budget` recorded them in its state, priced by
 * its hosts; undefined when it was spawned without. What the daemon's reaper decides by: the
 * copy in Redis may have been written by anyone who can write to Redis.
 */
export function ownFleetLimits(state: FleetState): FleetLimits | undefined {
  const l = state.limits;
  if (!l) return undefined;
  return {
    since: l.since,
    currency: l.currency,
    pricePerHour: fleetPricePerHour(state),
    ...(l.expiresAt !== undefined ? { expiresAt: l.expiresAt } : {}),
    ...(l.budget !== undefined ? { budget: l.budget } : {}),
  };
}

/**
 * Hands the fleet's TTL and budget (from its state, priced by its hosts) to the scheduler daemon
 * that enforces them; resolves to whether a daemon's heartbeat is there to enforce them (as
 * `gaxx run` asks before it leaves its tasks to one). True when the fleet has no limits.
 */
export function publishFleetLimits(config: GaxxConfig, state: FleetState): Promise<boolean> {
  const l = ownFleetLimits(state);
  if (!l) return Promise.resolve(true);
  return withRedis(config, async (r) => {
    await setFleetLimits(r, state.fleet, l);
    return schedulerAlive(r);
  });
}

/**
 * Keeps the scheduler's reaper off `fleet` while a spawn of it runs (its TTL may pass before the
 * spawn ends); resolves to the release, which also closes the connection.
 */
export async function holdFleetWhileSpawning(config: GaxxConfig, fleet: string): Promise<() => Promise<void>> {
  const target = await redisTarget(config.redis.url, config.paths.stateDir);
  const redis = createRedis(target.settings, 'producer');
  redis.on('error', () => undefined);
  const close = async (): Promise<void> => {
    redis.disconnect();
    await target.release();
  };
  try {
    await waitReady(redis, 5000, target.settings.display);
    const release = await holdFleet(redis, fleet);
    return async () => {
      await release().catch(() => undefined);
      await close();
    };
  } catch (e) {
    await close();
    throw e;
  }
}
