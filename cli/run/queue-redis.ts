/**
 * The queue's Redis as the installation's settings name it, for every command that uses it: the
 * configured URL (`--redis-insecure` honoured) or the embedded redis-server of the state dir, each
 * request of its producer connections bounded by `--redis-timeout-ms`, and a run's wait riding out
 * an unreachable Redis for `--redis-gone-ms`. Light (no ioredis, no
 * BullMQ): `gaxx run` calls it before it loads the queue.
 */
import { redisTarget, type RedisTarget } from '../../scheduler/light/index.js';
import type { GaxxConfig } from '../config.js';

/** The queue's Redis for one command; `stop` (its Ctrl-C) ends a wait for the embedded one (CANCELLED). */
export function queueRedis(config: Pick<GaxxConfig, 'redis' | 'paths'>, stop?: AbortSignal): Promise<RedisTarget> {
  return redisTarget(config.redis.url, config.paths.stateDir, {
    allowInsecure: config.redis.insecure,
    answerMs: config.redis.timeoutMs,
    goneMs: config.redis.goneMs,
    ...(stop ? { stop } : {}),
  });
}
