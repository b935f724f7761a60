/** Registering and forgetting a fleet in the scheduler's fleet directory (Redis). */
import { createRedis, forgetFleet, redisTarget, registerFleet, waitReady, type FleetAgent } from '../../scheduler/index.js';
import type { GaxxConfig } from '../config.js';

async function withRedis(config: GaxxConfig, fn: (redis: ReturnType<typeof createRedis>) => Promise<void>): Promise<void> {
  const target = await redisTarget(config.redis.url, config.paths.stateDir);
  const redis = createRedis(target.settings, 'producer');
  try {
    await waitReady(redis);
    await fn(redis);
  } finally {
    redis.disconnect();
    await target.release();
  }
}

/** Makes `fleet` with `agents` known to every scheduler sharing the queue. */
export function publishFleet(config: GaxxConfig, fleet: string, agents: FleetAgent[]): Promise<void> {
  return withRedis(config, (r) => registerFleet(r, fleet, agents));
}

/** Removes `fleet` from the scheduler's directory. */
export function unpublishFleet(config: GaxxConfig, fleet: string): Promise<void> {
  return withRedis(config, (r) => forgetFleet(r, fleet));
}
