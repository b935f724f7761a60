/**
 * The worker's agent connector: AgentClient over mTLS with the scheduler's certificate, the
 * agent's identity pinned (fleet agents must present `agent/<fleet>/<host>`; fleet-less agents a
 * certificate naming the dialled address). Given a CredentialSource, every call asks it for the
 * certificate in force (renewing-link.ts): a daemon whose certificate is revoked and re-issued
 * goes on with the new one.
 */
import type { CertBundle, Credentials } from '../../certs/index.js';
import { AgentClient } from '../client/agent-client.js';
import { identityKey, type AgentConnector, type AgentEndpoint, type AgentLink } from './agent-pool.js';
import { RenewingLink } from './renewing-link.js';

export interface ConnectorOptions {
  /** Deadline of unary calls (Info, Health, Cancel). */
  deadlineMs?: number | undefined;
  /** How long a call waits for a connection before UNAVAILABLE. */
  connectTimeoutMs?: number | undefined;
  /** The agents' bearer token, when they require one. */
  token?: string | undefined;
  /** Keepalive of Exec streams (AgentClientOptions.keepalive). */
  keepalive?: { timeMs: number; timeoutMs: number };
  /** Reconnect after an idle close while the last call is this recent (AgentClientOptions.keepWarmMs). */
  keepWarmMs?: number;
}

/** Connector for SchedulerWorker / runAndWait. */
export function agentConnector(creds: Credentials, opts: ConnectorOptions = {}): AgentConnector {
  const connect = (ep: AgentEndpoint, bundle: CertBundle): AgentLink =>
    AgentClient.connect({ address: ep.address, ...(ep.expect ? { expect: ep.expect } : {}) }, bundle, {
      deadlineMs: opts.deadlineMs ?? 5000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 3000,
      token: opts.token,
      ...(opts.keepalive ? { keepalive: opts.keepalive } : {}),
      ...(opts.keepWarmMs ? { keepWarmMs: opts.keepWarmMs } : {}),
    });
  if ('current' in creds) return (ep) => new RenewingLink(creds, (bundle) => connect(ep, bundle));
  return (ep) => connect(ep, creds);
}

/** A connector that can start connecting to agents before anything asks for them. */
export interface WarmingConnector {
  /** Hands out the link warmed for this endpoint (once), else a new one from the inner connector. */
  connect: AgentConnector;
  /**
   * Opens links to `endpoints` now and starts their connections (TLS handshakes) without a call;
   * none to an endpoint already warmed or already asked for (its link is out).
   */
  warm(endpoints: readonly AgentEndpoint[]): void;
  /** Closes the warmed links nobody took (the ones handed out belong to whoever took them). */
  close(): void;
}

/** The key of a link: its address and the identity it pins, as the agent pool keys its links. */
function linkKey(ep: AgentEndpoint): string {
  return JSON.stringify([ep.address, identityKey(ep.expect)]);
}

/**
 * Wraps `inner` so that a process that is about to work on a run itself (no daemon) can open
 * its connections to the run's agents while it still enqueues: the handshakes then overlap
 * with the queue's round trips instead of starting once the first job is taken. A daemon does
 * the same for the registered fleets' agents when it starts (daemon.ts connectFleets). A link is
 * handed out at most once, to the first `connect` for the same address and identity.
 */
export function warmingConnector(inner: AgentConnector): WarmingConnector {
  const warmed = new Map<string, AgentLink>();
  /** Endpoints asked for: warming one later would open a second link nobody takes. */
  const asked = new Set<string>();
  return {
    connect: (ep) => {
      const key = linkKey(ep);
      asked.add(key);
      const link = warmed.get(key);
      if (!link) return inner(ep);
      warmed.delete(key);
      return link;
    },
    warm: (endpoints) => {
      for (const ep of endpoints) {
        const key = linkKey(ep);
        if (warmed.has(key) || asked.has(key)) continue;
        const link = inner(ep);
        link.warm();
        warmed.set(key, link);
      }
    },
    close: () => {
      for (const link of warmed.values()) link.close();
      warmed.clear();
    },
  };
}
