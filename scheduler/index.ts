/** scheduler: the public seam. Other modules (cli) import the scheduler only through this file. */
// The agent client has its own entry point (./client/index.ts); re-exported for queue-side callers.
export * from './client/index.js';
export { acquireEmbeddedRedis, type EmbeddedRedis, type EmbeddedRedisOptions } from './redis/embedded-redis.js';
export { createRedis, durabilityWarnings, gaxxKey, KEY_PREFIX, redisSettingsFromUrl, waitReady, type RedisRole, type RedisSettings } from './redis/redis.js';
export { assertJobId, jobIdFor, newRunId, parseRunSpec, parseTaskSpec, LIMITS, type RunSpec, type RunSpecInput, type TaskInput, type TaskSpec } from './queue/task.js';
export { TaskQueue, RETENTION, type EnqueuedRun } from './queue/queue.js';
export { loadRunMeta, runQueueName, type RunMeta } from './queue/runs.js';
export { checkJobSignature, signTask, signedFieldsOf, DEFAULT_SIGNED_TTL_MS, type SignedBlock } from './queue/sign.js';
export { registerFleet, forgetFleet, fleetAgents, registeredFleets, type FleetAgent } from './queue/fleets.js';
export { place, type AgentView, type Placement, type PlacementRequest } from './dispatch/placement.js';
export { backoffDelay, busyDelay, isTransportFailure, retryPolicy, RETRY_DEFAULTS, type RetryPolicy } from './dispatch/retry-policy.js';
export { Breaker, DEFAULT_BREAKER, type BreakerOptions, type BreakerState } from './dispatch/breaker.js';
export { AgentPool, type AgentConnector, type AgentEndpoint, type AgentLink } from './dispatch/agent-pool.js';
export { publishResult, taskResult, outcomeOf, type OutputChunk, type TaskOutcome, type TaskResult } from './queue/results.js';
export { waitForRun, type RunResults, type WaitOptions } from './queue/wait.js';
export { SchedulerWorker, type SchedulerWorkerOptions, type WorkerLog } from './dispatch/worker.js';
export { SchedulerMetrics } from './daemon/metrics.js';
export { issuedAgentCerts, renewalReason, rotateAgent, type RenewalReason, type RotateOptions, type RotationResult, type RotationTarget } from './renewal/renewal.js';
export { CertRenewer, type RenewerOptions, type RoundSummary } from './renewal/renewer.js';
export { SchedulerDaemon, schedulerAlive, HEARTBEAT_KEY, type DaemonOptions } from './daemon/daemon.js';
export { resumeRun, runAndWait, REDIS_GONE_MS, type RunAndWaitOptions, type RunOutcome } from './queue/run.js';
export { redisTarget, type RedisTarget } from './redis/embedded-redis.js';
export { agentConnector, type ConnectorOptions } from './dispatch/connector.js';
export { serveScheduler, type ServeOptions, type Served } from './daemon/serve.js';
export { requestCancel, isCancelled, runCancelKey, CancelWatch, CANCEL_POLL_MS } from './queue/cancel.js';
