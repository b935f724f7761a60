/**
 * The fleet directory the scheduler places work from: one Redis hash per fleet, host name ->
 * agent address (`{gaxx}:fleet:<name>`), written when a fleet is created or changes. Kept in
 * Redis so every scheduler sharing the queue sees the same fleets. The set `{gaxx}:fleets` names
 * the registered fleets (the daemon's certificate renewal walks it; no SCAN over the queue's keys).
 * Beside it, `{gaxx}:fleet:<name>:metrics` (host name -> host:port) names where agents serve
 * their metrics when that is not host:9091 (a local fleet's: each on a free port), for the
 * dashboard's collector (ui/targets.ts).
 */
import type { Cluster, Redis } from 'ioredis';
import { compareText } from '../../proto/index.js';
import { gaxxKey } from '../redis/redis.js';

/** One agent of a fleet. */
export interface FleetAgent {
  host: string;
  address: string;
  /** Where it serves its metrics (host:port), when not host:9091. */
  metrics?: string | undefined;
}

const FLEETS_KEY = gaxxKey('fleets');
const metricsKey = (fleet: string): string => gaxxKey('fleet', fleet, 'metrics');

/** Replaces a fleet's agent list (and where its agents serve metrics). */
export async function registerFleet(redis: Redis | Cluster, fleet: string, agents: FleetAgent[]): Promise<void> {
  const key = gaxxKey('fleet', fleet);
  const tx = redis.multi().del(key).del(metricsKey(fleet)).sadd(FLEETS_KEY, fleet);
  if (agents.length) tx.hset(key, Object.fromEntries(agents.map((a) => [a.host, a.address])));
  const metrics = agents.flatMap((a) => (a.metrics ? [[a.host, a.metrics]] : []));
  if (metrics.length) tx.hset(metricsKey(fleet), Object.fromEntries(metrics));
  await tx.exec();
}

/** Removes a fleet. */
export async function forgetFleet(redis: Redis | Cluster, fleet: string): Promise<void> {
  await redis.multi().del(gaxxKey('fleet', fleet)).del(metricsKey(fleet)).srem(FLEETS_KEY, fleet).exec();
}

/** Where a fleet's agents serve metrics, by host name, for those not on host:9091. */
export function fleetMetricsAddresses(redis: Redis | Cluster, fleet: string): Promise<Record<string, string>> {
  return redis.hgetall(metricsKey(fleet));
}

/** The names of the registered fleets, sorted. */
export async function registeredFleets(redis: Redis | Cluster): Promise<string[]> {
  return (await redis.smembers(FLEETS_KEY)).sort();
}

/** A fleet's agents (empty when the fleet is unknown). */
export async function fleetAgents(redis: Redis | Cluster, fleet: string): Promise<FleetAgent[]> {
  const h = await redis.hgetall(gaxxKey('fleet', fleet));
  return Object.entries(h)
    .map(([host, address]) => ({ host, address }))
    .sort((a, b) => compareText(a.host, b.host));
}

/** Which of `fleets` are not registered. */
export async function unknownFleets(redis: Redis | Cluster, fleets: Iterable<string>): Promise<string[]> {
  const out: string[] = [];
  for (const f of new Set(fleets)) if ((await redis.exists(gaxxKey('fleet', f))) === 0) out.push(f);
  return out;
}
