/** proto: the wire contract (loaded services and generated types) and the shared error model. */
export * from './errors.js';
export { GrpcStatus } from './grpc-status.js';
export { formatHostPort, isHostName, isLoopbackAddress, isLoopbackHost, parseHostPort, type HostPort, type ParseHostPortOptions } from './address.js';
export { checkDuration, DURATION_PATTERN, formatDuration, MAX_DURATION_MS, MAX_TIMER_MS, parseDuration, type DurationBounds } from './durations.js';
export { formatSize, parseSize, SIZE_HINT, SIZE_PATTERN } from './sizes.js';
export { compareText } from './order.js';
export { counted } from './words.js';
export { nodeFsPromises, nodeHttp, nodeHttps, nodeTty } from './builtins.js';
export { nodeNet } from './net-builtin.js';
export {
  AGENT_TASKS_DIR,
  argvBytes,
  envBytes,
  ENV_NAME_PATTERN,
  EXEC_TASK_ID_PATTERN,
  isExecTaskId,
  MAX_FILE_BYTES,
  refuseLoaderEnv,
  REQUEST_LIMITS,
  requestProblems,
  workDirProblems,
} from './limits.js';
export { loadProtos, LOADER_OPTIONS, methodSubset, type AgentMethod } from './load.js';
export { warmExecMethod } from './warm-codecs.js';
export { colonFirstIpChecks, grpcModules } from './grpc-modules.cjs';
export { packageVersion } from './version.js';
export {
  SIGNED_TASK_CONTEXT,
  canonicalJson,
  canonicalTaskBytes,
  createTaskSigner,
  execIdAllowed,
  execTaskId,
  sha256Hex,
  signTaskFields,
  taskSpecDigest,
  verifyTaskSignature,
  type SignedTarget,
  type SignedTaskFields,
  type TaskSigner,
} from './signed-task.js';
export type { AgentClient as AgentGrpcClient, AgentHandlers } from './gen/gaxx/agent/v1/Agent.js';
export type { ExecRequest, ExecRequest__Output } from './gen/gaxx/agent/v1/ExecRequest.js';
export type { SignedTask, SignedTask__Output } from './gen/gaxx/agent/v1/SignedTask.js';
export type { TaskTarget, TaskTarget__Output } from './gen/gaxx/agent/v1/TaskTarget.js';
export type { ExecEvent, ExecEvent__Output } from './gen/gaxx/agent/v1/ExecEvent.js';
export type { Exit, Exit__Output } from './gen/gaxx/agent/v1/Exit.js';
export type { Started, Started__Output } from './gen/gaxx/agent/v1/Started.js';
export type { CancelRequest, CancelRequest__Output } from './gen/gaxx/agent/v1/CancelRequest.js';
export type { CancelResponse, CancelResponse__Output } from './gen/gaxx/agent/v1/CancelResponse.js';
export type { PutFileChunk, PutFileChunk__Output } from './gen/gaxx/agent/v1/PutFileChunk.js';
export type { PutFileHeader, PutFileHeader__Output } from './gen/gaxx/agent/v1/PutFileHeader.js';
export type { PutFileResponse, PutFileResponse__Output } from './gen/gaxx/agent/v1/PutFileResponse.js';
export type { GetFileRequest, GetFileRequest__Output } from './gen/gaxx/agent/v1/GetFileRequest.js';
export type { GetFileChunk, GetFileChunk__Output } from './gen/gaxx/agent/v1/GetFileChunk.js';
export type { GetFileHeader, GetFileHeader__Output } from './gen/gaxx/agent/v1/GetFileHeader.js';
export type { InfoRequest, InfoRequest__Output } from './gen/gaxx/agent/v1/InfoRequest.js';
export type { InfoResponse, InfoResponse__Output } from './gen/gaxx/agent/v1/InfoResponse.js';
export type { BlockedPeer, BlockedPeer__Output } from './gen/gaxx/agent/v1/BlockedPeer.js';
export type { CreateCsrRequest, CreateCsrRequest__Output } from './gen/gaxx/agent/v1/CreateCsrRequest.js';
export type { CreateCsrResponse, CreateCsrResponse__Output } from './gen/gaxx/agent/v1/CreateCsrResponse.js';
export type { FileArea } from './gen/gaxx/agent/v1/FileArea.js';
export type { HealthClient, HealthHandlers } from './gen/grpc/health/v1/Health.js';
export type { HealthCheckRequest, HealthCheckRequest__Output } from './gen/grpc/health/v1/HealthCheckRequest.js';
export type { HealthCheckResponse, HealthCheckResponse__Output } from './gen/grpc/health/v1/HealthCheckResponse.js';
export { BusyLoopDelay, type LoopHistogram } from './loop-delay.js';
export { raceAbort } from './race.js';
export { spawnDetached, type DetachedSpawnOptions, type DetachedStdio } from './spawn-detached.js';
export {
  AfterQuiet,
  closeInheritedFds,
  fdLogDestination,
  inside,
  makeDirs,
  makeDirsAsync,
  asProcessMark,
  pidAlive,
  processLives,
  processMark,
  processRunning,
  processStartTicks,
  type ProcessMark,
  removeTree,
  type LogDestination,
  type MakeDirsOptions,
} from './light.js';
export { printable, printableLines, printableOutputLine } from './printable.js';
export { claimMark, heldByAnother, processClaimText, releaseClaim, rewriteClaim, takeClaim, takeProcessClaim, type ClaimOutcome } from './claim-file.js';
export { LOCK_WAIT_MS, withFileLock, withFileLockSync, type FileLockOptions } from './file-lock.js';
