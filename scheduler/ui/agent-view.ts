/** What the dashboard shows of an agent: the collector's state of it, with its circuit breaker's. */
import { compareText } from '../../proto/index.js';
import type { BreakerState } from '../dispatch/breaker.js';
import type { AgentState } from './collector.js';

/** What the page shows of an agent. */
export interface AgentView {
  fleet: string;
  host: string;
  address: string;
  reachable: boolean;
  metricsUp: boolean;
  error?: string;
  version?: string;
  uid?: number;
  load?: number[];
  running?: number;
  capacity?: number;
  certNotAfterMs?: number;
  certRenewalDue?: boolean;
  breaker: BreakerState | 'unknown';
  blockedPeers: Array<{ address: string; untilMs: number; reason: string }>;
}

/** Agents in order of fleet, then host. */
export const byFleetHost = (a: AgentState, b: AgentState): number => compareText(a.fleet, b.fleet) || compareText(a.host, b.host);

/** What the page shows of agent `s`, with its circuit breaker's state as the dispatcher last saw it. */
export function agentView(s: AgentState, breaker: BreakerState | undefined): AgentView {
  const i = s.info;
  return {
    fleet: s.fleet,
    host: s.host,
    address: s.address,
    reachable: s.reachable,
    metricsUp: s.metricsUp,
    ...(s.error ? { error: s.error } : {}),
    ...(i
      ? {
          version: i.version,
          uid: i.uid,
          load: i.load,
          running: i.running,
          capacity: i.capacity,
          certNotAfterMs: i.certNotAfterMs,
          certRenewalDue: i.certRenewalDue,
        }
      : {}),
    breaker: breaker ?? 'unknown',
    blockedPeers: i?.blockedPeers ?? [],
  };
}
