/** scheduler: the public seam. Other modules (cli) import the scheduler only through this file. */
// The agent client has its own entry point (./client/index.ts); re-exported for queue-side callers.
export * from './client/index.js';
export { acquireEmbeddedRedis, type EmbeddedRedis, type EmbeddedRedisOptions } from './redis/embedded-redis.js';
export { createRedis, durabilityWarnings, gaxxKey, KEY_PREFIX, redisSettingsFromUrl, waitReady, type RedisRole, type RedisSettings } from './redis/redis.js';
export {
  assertJobId,
  jobIdFor,
  newRunId,
  parseRunSpec,
  parseTaskSpec,
  LIMITS,
  type RunSpec,
  type RunSpecInput,
  type TaskInput,
  type TaskSpec,
} from './queue/task.js';
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
export {
  issuedAgentCerts,
  renewalReason,
  rotateAgent,
  type RenewalReason,
  type RotateOptions,
  type RotationResult,
  type RotationTarget,
} from './renewal/renewal.js';
export { CertRenewer, type RenewerOptions, type RoundSummary } from './renewal/renewer.js';
export { SchedulerDaemon, schedulerAlive, HEARTBEAT_KEY, type DaemonOptions } from './daemon/daemon.js';
export { resumeRun, runAndWait, REDIS_GONE_MS, type RunAndWaitOptions, type RunOutcome } from './queue/run.js';
export { redisTarget, type RedisTarget } from './redis/embedded-redis.js';
export { agentConnector, type ConnectorOptions } from './dispatch/connector.js';
export { serveScheduler, type ServeOptions, type Served } from './daemon/serve.js';
export { requestCancel, isCancelled, runCancelKey, CancelWatch, CANCEL_POLL_MS } from './queue/cancel.js';
export { streamRun, syntheticResult, type StreamRunOptions, type StreamRunOutcome } from './queue/stream-run.js';
export { followRun, type FollowHandlers, type FollowOptions } from './queue/follow.js';
export {
  countOutcome,
  countTotal,
  getRunRecord,
  listRunRecords,
  submitterAlive,
  updateRunRecord,
  createRunRecord,
  RUN_INDEX_TTL_MS,
  PRODUCER_STALE_MS,
  type OutcomeCounts,
  type RunRecord,
  type RunState,
} from './queue/run-index.js';
export { RESULT_TTL_MS, runDoneKey } from './queue/results.js';
export { attachRun, cancelRecordedRun, requireRun, runComplete, storedResults, type AttachOptions, type Attached } from './queue/run-control.js';
export { readBreakers } from './daemon/breakers.js';
export {
  clearFleetLimits,
  fleetCost,
  getFleetLimits,
  holdFleet,
  limitedFleets,
  limitReached,
  setFleetLimits,
  type FleetLimits,
  type LimitReason,
} from './queue/fleet-limits.js';
export { FleetReaper, DEFAULT_REAP_INTERVAL_MS, type ReaperOptions } from './daemon/reaper.js';
export { Dashboard, DEFAULT_UI_LISTEN, type AgentView as DashboardAgentView, type DashboardOptions } from './ui/dashboard.js';
export { fleetTargets, parseAgentItem, registerMetricsAddresses, DEFAULT_METRICS_PORT, type MonitorTarget } from './ui/targets.js';
export { parsePrometheusText, mergeExpositions, type Family, type Sample } from './ui/prom-text.js';
export { indexRun, recentRuns, type RunMeta as RunFeedEntry } from './queue/run-feed.js';
export { readDashboardUrl, dashboardUrlFile } from './ui/url-file.js';
