/**
 * The agent client: one agent over mTLS with its identity pinned. An entry point of its own so
 * that callers that talk to agents directly (`gaxx exec`, cert rotation, bootstrap checks) load
 * no queue code: nothing under this folder imports BullMQ, ioredis or prom-client.
 */
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
export { outcomeOf, type ExitOutcome } from './outcome.js';
export { checkAgentCertificate, grpcTarget, splitAddress, type AgentExpectation } from './agent-identity.js';
