/**
 * Prometheus metrics of the guards: the limits in force, and what they refused. Registered
 * into the registry the agent's metrics endpoint serves.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { PeerBlocker } from './blocklist.js';
import type { ConnectionTracker, StreamLimiter } from './conn-limits.js';
import type { GuardsConfig } from './guard-config.js';

/** The live objects whose state the gauges read at scrape time. */
export interface GuardSources {
  connections: ConnectionTracker;
  blocker: PeerBlocker;
  streams: StreamLimiter;
}

/** Numeric guard settings, flattened (`rateLimit.burst` -> `rate_limit_burst`). */
export function flattenLimits(g: GuardsConfig): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      const name = `${prefix}${k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
      if (typeof v === 'number') out[name] = v;
      else if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, `${name}_`);
    }
  };
  walk(g as unknown as Record<string, unknown>, '');
  return out;
}

/** Guard counters and gauges, registered into `registry`. */
export class GuardMetrics {
  readonly refused: Counter<'reason'>;
  readonly secured: Counter;
  readonly blocks: Counter;
  readonly rateLimited: Counter;
  readonly streamsRefused: Counter;
  readonly pingViolations: Counter;

  constructor(registry: Registry, guards: GuardsConfig, sources: GuardSources) {
    const registers = [registry];
    const limit = new Gauge({ name: 'gaxx_agent_guard_limit', help: 'Guard limits in force', labelNames: ['limit'], registers });
    for (const [name, v] of Object.entries(flattenLimits(guards))) limit.set({ limit: name }, v);
    new Gauge({
      name: 'gaxx_agent_connections_open',
      help: 'Open connections, handshakes included',
      registers,
      collect() {
        this.set(sources.connections.open());
      },
    });
    new Gauge({
      name: 'gaxx_agent_calls_in_flight',
      help: 'Calls in flight, all peers',
      registers,
      collect() {
        this.set(sources.streams.active());
      },
    });
    new Gauge({
      name: 'gaxx_agent_blocked_peers',
      help: 'Peer addresses blocked now',
      registers,
      collect() {
        this.set(sources.blocker.blocked().length);
      },
    });
    this.secured = new Counter({
      name: 'gaxx_agent_connections_total',
      help: 'Connections accepted (TLS handshake completed), to gRPC and to metrics',
      registers,
    });
    this.refused = new Counter({
      name: 'gaxx_agent_connections_refused_total',
      help: 'Connections refused before TLS (or, at the per-address cap, once verified)',
      labelNames: ['reason'],
      registers,
    });
    this.blocks = new Counter({ name: 'gaxx_agent_peer_blocks_total', help: 'Peer addresses blocked after repeated failures', registers });
    this.rateLimited = new Counter({ name: 'gaxx_agent_rate_limited_total', help: 'Calls refused by the per-identity rate limit', registers });
    this.streamsRefused = new Counter({ name: 'gaxx_agent_streams_refused_total', help: 'Calls refused by the per-peer concurrent call cap', registers });
    this.pingViolations = new Counter({ name: 'gaxx_agent_ping_violations_total', help: 'Connections cut for pinging too often', registers });
  }
}
