/**
 * The scheduler's light entry: what the CLI needs before (or without) the queue's modules, none
 * of which it loads (no ioredis, no BullMQ): the Redis a command will use (a configured URL, or
 * the embedded redis-server, started or joined) and the limits of a run's tasks. `gaxx run` gets
 * its Redis through here before it loads the queue, so that a redis-server it starts boots
 * meanwhile (tens of ms that a run without a daemon used to wait).
 */
export { redisTarget, type RedisTarget } from '../redis/embedded-redis.js';
export { isRedisClientError, redisError } from '../redis/errors.js';
export { DEFAULT_OUTPUT_CAP_BYTES, LIMITS, type TaskInput } from '../queue/task.js';
