/**
 * The queue's Redis for one command (the configured URL, or the embedded server of the state
 * dir), held for the duration of `fn` and released after.
 */
import { redisTarget, type RedisSettings } from '../../scheduler/index.js';
import type { GaxxConfig } from '../config.js';

/** Runs `fn` with the settings of the queue's Redis. */
export async function withRedis<T>(config: GaxxConfig, fn: (settings: RedisSettings) => Promise<T>): Promise<T> {
  const target = await redisTarget(config.redis.url, config.paths.stateDir);
  try {
    return await fn(target.settings);
  } finally {
    await target.release();
  }
}
