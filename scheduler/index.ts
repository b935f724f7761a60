/** scheduler: the queue, its workers and daemon, and the Redis they share. The CLI's only door in. */
export { acquireEmbeddedRedis, type EmbeddedRedis, type EmbeddedRedisOptions } from './embedded-redis.js';
export { createRedis, durabilityWarnings, gaxxKey, KEY_PREFIX, redisSettingsFromUrl, waitReady, type RedisRole, type RedisSettings } from './redis.js';
export { assertJobId, jobIdFor, newRunId, parseRunSpec, parseTaskSpec, LIMITS, type RunSpec, type RunSpecInput, type TaskInput, type TaskSpec } from './task.js';
export { TaskQueue, QUEUE_NAME, RETENTION, type EnqueuedRun } from './queue.js';
export { registerFleet, forgetFleet, fleetAgents, type FleetAgent } from './fleets.js';
export { place, type AgentView, type Placement, type PlacementRequest } from './placement.js';
export { Breaker, backoffDelay, DEFAULT_BREAKER, type BreakerOptions, type BreakerState } from './breaker.js';
export { AgentPool, type AgentConnector, type AgentEndpoint, type AgentLink } from './agent-pool.js';
export { publishResult, waitForRun, outcomeOf, type OutputChunk, type RunResults, type TaskOutcome, type TaskResult } from './results.js';
export { SchedulerWorker, type SchedulerWorkerOptions, type WorkerLog } from './worker.js';
export { SchedulerMetrics } from './metrics.js';
export { SchedulerDaemon, schedulerAlive, HEARTBEAT_KEY, type DaemonOptions } from './daemon.js';
export { runAndWait, type RunAndWaitOptions, type RunOutcome } from './run.js';
