/** scheduler: the public seam. Other modules (cli) import the scheduler only through this file. */
export {
  AgentClient,
  FILE_CHUNK_BYTES,
  MAX_MESSAGE_BYTES,
  type AgentClientOptions,
  type AgentTarget,
  type ExecCallOptions,
  type ExecResult,
  type HealthStatus,
} from './agent-client.js';
export { checkAgentCertificate, grpcTarget, splitAddress, type AgentExpectation } from './agent-identity.js';
export { acquireEmbeddedRedis, type EmbeddedRedis, type EmbeddedRedisOptions } from './embedded-redis.js';
export { createRedis, durabilityWarnings, gaxxKey, KEY_PREFIX, redisSettingsFromUrl, waitReady, type RedisRole, type RedisSettings } from './redis.js';
export { assertJobId, jobIdFor, newRunId, parseRunSpec, parseTaskSpec, LIMITS, type RunSpec, type RunSpecInput, type TaskInput, type TaskSpec } from './task.js';
export { TaskQueue, QUEUE_NAME, RETENTION, type EnqueuedRun } from './queue.js';
export { registerFleet, forgetFleet, fleetAgents, registeredFleets, type FleetAgent } from './fleets.js';
export { place, type AgentView, type Placement, type PlacementRequest } from './placement.js';
export { Breaker, backoffDelay, DEFAULT_BREAKER, type BreakerOptions, type BreakerState } from './breaker.js';
export { AgentPool, type AgentConnector, type AgentEndpoint, type AgentLink } from './agent-pool.js';
export { publishResult, waitForRun, outcomeOf, type OutputChunk, type RunResults, type TaskOutcome, type TaskResult } from './results.js';
export { SchedulerWorker, type SchedulerWorkerOptions, type WorkerLog } from './worker.js';
export { SchedulerMetrics } from './metrics.js';
export { issuedAgentCerts, renewalReason, rotateAgent, type RenewalReason, type RotateOptions, type RotationResult, type RotationTarget } from './renewal.js';
export { CertRenewer, DEFAULT_RENEW_INTERVAL_MS, parseInterval, renewalSettings, type RenewerOptions, type RoundSummary } from './renewer.js';
export { SchedulerDaemon, schedulerAlive, HEARTBEAT_KEY, type DaemonOptions } from './daemon.js';
export { runAndWait, type RunAndWaitOptions, type RunOutcome } from './run.js';
export { redisTarget, type RedisTarget } from './embedded-redis.js';
export { agentConnector, type ConnectorOptions } from './connector.js';
export { serveScheduler, type ServeOptions, type Served } from './serve.js';
export { requestCancel, isCancelled, runCancelKey, CancelWatch, CANCEL_POLL_MS } from './cancel.js';
