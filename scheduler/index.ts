/**
 * scheduler: the public seam. Other modules (cli, bench) import the scheduler only through this
 * file, and it exports only what they use: tests of an internal import it by its own path. The
 * agent client has an entry point of its own (./client/index.ts), which loads no queue code.
 */
export { acquireEmbeddedRedis, redisTarget, type RedisTarget } from './redis/embedded-redis.js';
export { createRedis, redisSettingsFromUrl, waitReady, withReadyClient, type RedisSettings } from './redis/redis.js';
export { newRunId, LIMITS, type RunSpec, type TaskInput } from './queue/task.js';
export { TaskQueue } from './queue/queue.js';
export { registerFleet, forgetFleet, fleetAgents, registeredFleets, type FleetAgent } from './queue/fleets.js';
export { publishResult, taskResult, OVER_BUDGET_ERROR, RESULT_TTL_MS, type OutputChunk, type TaskOutcome, type TaskResult } from './queue/results.js';
export { issuedAgentCerts, pushRevocationList, renewalReason, rotateAgent, type RotationResult } from './renewal/renewal.js';
export { HEARTBEAT_KEY, schedulerAlive } from './daemon/daemon.js';
export { resumeRun, runAndWait } from './queue/run.js';
export { landEndRecord, mustLand } from './queue/run-landing.js';
export { agentConnector, warmingConnector, type WarmingConnector } from './dispatch/connector.js';
export { agentKey, fleetEndpoint } from './dispatch/agent-pool.js';
export { WORKER_CONCURRENCY } from './dispatch/worker.js';
export { serveScheduler } from './daemon/serve.js';
export { isCancelled, requestCancel } from './queue/cancel.js';
export { streamRun } from './queue/stream-run.js';
export { keptTaskRecords, resultNamesKept, storeTaskRecords, taskRecords } from './queue/runs.js';
export { type RefusedTask } from './queue/refused.js';
export {
  countOutcome,
  createRunRecord,
  getRunRecord,
  listRunRecords,
  unfinishedFleetRuns,
  submitterAlive,
  updateRunRecord,
  RUN_INDEX_TTL_MS,
  type OutcomeCounts,
  type RunFailure,
  type RunRecord,
  type RunState,
} from './queue/run-index.js';
export { attachRun, cancelRecordedRun, requireRun, settleRunRecord, storedResults, type Attached } from './queue/run-control.js';
export { readBreakers } from './daemon/breakers.js';
export { clearFleetLimits, holdFleet, limitReached, setFleetLimits, type FleetLimits } from './queue/fleet-limits.js';
export { Dashboard, DEFAULT_UI_LISTEN } from './ui/dashboard.js';
export { fleetTargets, parseAgentItem, type MonitorTarget } from './ui/targets.js';
export { indexRun } from './queue/run-feed.js';
export { readDashboardUrl } from './ui/url-file.js';
export type { EndedEarly } from './queue/write-health.js';
