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
