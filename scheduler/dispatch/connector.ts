/**
 * The worker's agent connector: AgentClient over mTLS with the scheduler's certificate, the
 * agent's identity pinned (fleet agents must present `agent/<fleet>/<host>`; fleet-less agents a
 * certificate naming the dialled address).
 */
import type { CertBundle } from '../../certs/index.js';
import { AgentClient } from '../client/agent-client.js';
import type { AgentConnector } from './agent-pool.js';

export interface ConnectorOptions {
  /** Deadline of unary calls (Info, Health, Cancel). */
  deadlineMs?: number | undefined;
  /** How long a call waits for a connection before UNAVAILABLE. */
  connectTimeoutMs?: number | undefined;
  /** The agents' bearer token, when they require one. */
  token?: string | undefined;
  /** Keepalive of Exec streams (AgentClientOptions.keepalive). */
  keepalive?: { timeMs: number; timeoutMs: number };
}

/** Connector for SchedulerWorker / runAndWait. */
export function agentConnector(creds: CertBundle, opts: ConnectorOptions = {}): AgentConnector {
  return (ep) =>
    AgentClient.connect({ address: ep.address, ...(ep.expect ? { expect: ep.expect } : {}) }, creds, {
      deadlineMs: opts.deadlineMs ?? 5000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 3000,
      token: opts.token,
      ...(opts.keepalive ? { keepalive: opts.keepalive } : {}),
    });
}
