/**
 * The queue's Redis for one command (the configured URL, or the embedded server of the state
 * dir), held for the duration of `fn` and released after.
 */
import { withReadyClient, type createRedis, type RedisSettings } from '../../scheduler/index.js';
import type { GaxxConfig } from '../config.js';
import { queueRedis } from './queue-redis.js';

/** Runs `fn` with the settings of the queue's Redis; `stop` ends a wait for the embedded one (CANCELLED). */
export async function withRedis<T>(config: GaxxConfig, fn: (settings: RedisSettings) => Promise<T>, stop?: AbortSignal): Promise<T> {
  const target = await queueRedis(config, stop);
  try {
    return await fn(target.settings);
  } finally {
    await target.release();
  }
}

/**
 * Runs `fn` on a ready producer connection to the queue's Redis (withReadyClient), closed after.
 * `stop` (the command's Ctrl-C) ends the waits for the server and the connection at once (CANCELLED).
 */
export function withReadyRedis<T>(config: GaxxConfig, fn: (redis: ReturnType<typeof createRedis>) => Promise<T>, stop?: AbortSignal): Promise<T> {
  return withRedis(config, (settings) => withReadyClient(settings, fn, stop), stop);
}
