/**
 * The agent client: one agent over mTLS with its identity pinned. An entry point of its own so
 * that callers that talk to agents directly (`gaxx exec`, cert rotation, bootstrap checks) load
 * no queue code: nothing under this folder imports BullMQ, ioredis or prom-client. It exports
 * only what its callers use.
 */
export { AgentClient, MAX_MESSAGE_BYTES } from './agent-client.js';
export { localFile, type Downloaded, type LocalFile } from './file-transfer.js';
export { outcomeOf, outputBytes } from './outcome.js';
export { checkAgentCertificate, splitAddress, type AgentExpectation } from './agent-identity.js';
