/**
 * What the dashboard shows per fleet besides its agents, and how a page watches only some
 * fleets. Fleets spawned with a TTL or budget (queue/fleet-limits.ts) show their cost so far
 * against the budget and when the TTL ends, reckoned as the daemon's reaper does. A page (or
 * `/api/state`) asked with `?fleet=a,b` sees only those fleets' agents, runs and limits, the
 * same whether the daemon or `gaxx ui` serves it.
 */
import type { Cluster, Redis } from 'ioredis';
import { fleetCost, getFleetLimits, limitedFleets } from '../queue/fleet-limits.js';
import type { StreamView } from './sse.js';

/** A fleet's limits as the page shows them. */
export interface FleetLimitsView {
  fleet: string;
  currency: string;
  pricePerHour: number;
  /** Rounded to 1/10,000 of the currency (so a change is worth an event). */
  costSoFar: number;
  budget?: number;
  /** costSoFar / budget (0..1+), when there is a budget. */
  budgetUsed?: number;
  /** When the TTL ends (the page counts down to it). */
  expiresAtMs?: number;
}

/** The limits of every fleet that has some, at `now`. */
export async function fleetLimitViews(redis: Redis | Cluster, now = Date.now()): Promise<FleetLimitsView[]> {
  const out: FleetLimitsView[] = [];
  for (const fleet of await limitedFleets(redis)) {
    const l = await getFleetLimits(redis, fleet);
    if (!l) continue;
    const costSoFar = Math.round(fleetCost(l, now) * 10_000) / 10_000;
    out.push({
      fleet,
      currency: l.currency,
      pricePerHour: l.pricePerHour,
      costSoFar,
      ...(l.budget !== undefined ? { budget: l.budget, budgetUsed: Math.round((costSoFar / l.budget) * 1000) / 1000 } : {}),
      ...(l.expiresAt !== undefined ? { expiresAtMs: l.expiresAt } : {}),
    });
  }
  return out;
}

/** The fleets a request asks for (`?fleet=a,b`, repeatable); undefined: all. */
export function requestedFleets(url: URL): Set<string> | undefined {
  const names = url.searchParams
    .getAll('fleet')
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  return names.length ? new Set(names) : undefined;
}

type Fleeted = { fleet: string } | { fleets: string[] };
const inFleets = (fleets: Set<string>, x: Fleeted): boolean => ('fleets' in x ? x.fleets.some((f) => fleets.has(f)) : fleets.has(x.fleet));

/**
 * What a page watching only `fleets` sees of an event: agents, runs and fleet limits of those
 * fleets (a run counts when it uses one of them); queue depth and settings as they are. Runs
 * arrive as changes: a change that holds none of the fleets' runs is not sent.
 */
export function fleetsView(fleets: Set<string>): StreamView {
  return (event, value) => {
    if (!Array.isArray(value) || !['agents', 'runs', 'fleets'].includes(event)) return value;
    const kept = (value as Fleeted[]).filter((x) => inFleets(fleets, x));
    return event === 'runs' && kept.length === 0 && value.length > 0 ? undefined : kept;
  };
}
