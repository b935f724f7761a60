/**
 * What the collector watches: agents, each with its gRPC address (Info over mTLS) and its
 * metrics address (:9091 on the same host unless the fleet says otherwise). From the fleets
 * registered in Redis, or from an explicit `--agent` list.
 *
 * A fleet may record metrics addresses that differ from host:9091 (fleets.ts: registerFleet),
 * e.g. a local fleet's, each on a free loopback port.
 */
import type { Cluster, Redis } from 'ioredis';
import { formatHostPort, GaxxError } from '../../proto/index.js';
import { splitAddress } from '../client/index.js';
import { fleetAgents, fleetMetricsAddresses, registeredFleets } from '../queue/fleets.js';

/** The agents' metrics port when nothing else is known. */
export const DEFAULT_METRICS_PORT = 9091;

/** One agent to watch. */
export interface MonitorTarget {
  /** Fleet name ('' for an `--agent` list). */
  fleet: string;
  host: string;
  /** gRPC address (host:port). */
  address: string;
  /** Metrics address (host:port). */
  metricsAddress: string;
}

/** host:9091 for a gRPC address host:port. */
export function defaultMetricsAddress(address: string): string {
  return formatHostPort(splitAddress(address).host, DEFAULT_METRICS_PORT);
}

/**
 * Parses an `--agent` item: `host:port` (metrics on host:9091) or `host:port/metricsPort`.
 * INVALID_ARGUMENT when it is neither.
 */
export function parseAgentItem(item: string): MonitorTarget {
  const [address = '', mport, extra] = item.split('/');
  if (extra !== undefined) throw new GaxxError('INVALID_ARGUMENT', `agent '${item}' must be host:port or host:port/metricsPort`);
  const { host } = splitAddress(address);
  let metricsAddress = defaultMetricsAddress(address);
  if (mport !== undefined) {
    const p = Number(mport);
    if (!(Number.isInteger(p) && p >= 1 && p <= 65535)) throw new GaxxError('INVALID_ARGUMENT', `agent '${item}': metrics port must be 1-65535`);
    metricsAddress = formatHostPort(host, p);
  }
  return { fleet: '', host: address, address, metricsAddress };
}

/**
 * Every registered fleet's agents (or only `fleets`), with their metrics addresses. An agent
 * whose recorded address or metrics address is no host:port is left out: the fleet directory is
 * anyone's who can write to Redis, and one bad entry must not leave every other agent unwatched.
 */
export async function fleetTargets(redis: Redis | Cluster, fleets?: readonly string[]): Promise<MonitorTarget[]> {
  const names = fleets ?? (await registeredFleets(redis));
  const out: MonitorTarget[] = [];
  for (const fleet of names) {
    const [agents, metrics] = await Promise.all([fleetAgents(redis, fleet), fleetMetricsAddresses(redis, fleet)]);
    for (const a of agents) {
      try {
        const metricsAddress = metrics[a.host] ?? defaultMetricsAddress(a.address);
        splitAddress(a.address);
        splitAddress(metricsAddress);
        out.push({ fleet, host: a.host, address: a.address, metricsAddress });
      } catch {
        continue;
      }
    }
  }
  return out;
}
