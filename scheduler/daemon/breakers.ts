/**
 * Breaker states as the running scheduler daemons see them, for `gaxx status`: each daemon
 * writes its agents' states with every heartbeat to `{gaxx}:breakers:<daemonId>` (expiring with
 * the heartbeat), and readers merge the live daemons' views, the worst state winning. Fields are
 * agent keys (agentKey: `<fleet>/<host>@<address>`), not bare addresses: the breaker of an agent
 * that held an address before is never shown for the one that holds it now.
 */
import type { Cluster, Redis } from 'ioredis';
import type { BreakerState } from '../dispatch/breaker.js';
import { gaxxKey } from '../redis/redis.js';

const breakersKey = (daemonId: string): string => gaxxKey('breakers', daemonId);
const RANK: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** Writes one daemon's breaker states, kept for `ttlMs`. */
export async function publishBreakers(redis: Redis | Cluster, daemonId: string, states: ReadonlyMap<string, BreakerState>, ttlMs: number): Promise<void> {
  const key = breakersKey(daemonId);
  const tx = redis.multi().del(key);
  if (states.size) tx.hset(key, Object.fromEntries(states)).pexpire(key, ttlMs);
  await tx.exec();
}

/** The merged breaker state per agent key (agentKey) across the daemons `daemonIds`. */
export async function readBreakers(redis: Redis | Cluster, daemonIds: readonly string[]): Promise<Map<string, BreakerState>> {
  const out = new Map<string, BreakerState>();
  for (const id of daemonIds) {
    for (const [key, state] of Object.entries(await redis.hgetall(breakersKey(id)))) {
      if (!(state in RANK)) continue;
      const prev = out.get(key);
      if (!prev || RANK[state as BreakerState] > RANK[prev]) out.set(key, state as BreakerState);
    }
  }
  return out;
}
