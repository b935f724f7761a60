/** Registering and forgetting a fleet in the scheduler's fleet directory (Redis), with its TTL and budget. */
import {
  clearFleetLimits,
  createRedis,
  fleetAgents,
  forgetFleet,
  holdFleet,
  registerFleet,
  schedulerAlive,
  setFleetLimits,
  waitReady,
  type FleetAgent,
  type FleetLimits,
} from '../../scheduler/index.js';
import { compareText } from '../../proto/index.js';
import { agentAddress } from '../commands/exec.js';
import type { GaxxConfig } from '../config.js';
import type { Output } from '../output.js';
import { queueRedis } from '../run/queue-redis.js';
import { withReadyRedis } from '../run/redis-session.js';
import { fleetPricePerHour, readFleet, type FleetState } from '../state.js';

/** Makes `fleet` with `agents` known to every scheduler sharing the queue. */
export function publishFleet(config: GaxxConfig, fleet: string, agents: FleetAgent[], stop?: AbortSignal): Promise<void> {
  return withReadyRedis(config, (r) => registerFleet(r, fleet, agents), stop);
}

/** The agents a fleet's state registers: its ready hosts, at the address each answered Health on. */
export function stateAgents(config: GaxxConfig, state: FleetState): FleetAgent[] {
  // Older state without that address: the host's IPv4 and the agent port.
  return state.hosts
    .filter((h) => h.status === 'ready' && (h.agent || h.ipv4))
    .map((h) => ({ host: h.name, address: h.agent ?? agentAddress(h.ipv4 as string, config.agent.port, 'spawn'), metrics: h.metrics }));
}

/**
 * A fleet's agents as the scheduler's directory lists them (empty when neither it nor this home
 * knows the fleet). The directory lives in Redis: a Redis restarted without its data (one that
 * does not persist), or another Redis configured since, no longer knows fleets this home spawned,
 * and every command naming one would say it is unknown. Such a fleet is registered again from its
 * state here (agents, TTL and budget, as `gaxx spawn` registered them), with a note on `out`.
 * `gaxx delete` removes the state before it unregisters the fleet, so a fleet being deleted is
 * never registered again.
 */
export async function resolveFleetAgents(
  config: GaxxConfig,
  redis: Parameters<typeof fleetAgents>[0],
  fleet: string,
  out?: Output,
): Promise<{ host: string; address: string }[]> {
  const listed = await fleetAgents(redis, fleet);
  if (listed.length > 0) return listed;
  const state = readFleet(config.paths.fleetsDir, fleet);
  const own = state ? stateAgents(config, state) : [];
  if (!state || own.length === 0) return listed;
  await registerFleet(redis, fleet, own);
  const limits = ownFleetLimits(state);
  if (limits) await setFleetLimits(redis, fleet, limits);
  out?.note(`fleet ${fleet} was not registered in Redis (restarted without its data?): registered again from this home's state (${own.length} hosts)`);
  return own.map(({ host, address }) => ({ host, address })).sort((a, b) => compareText(a.host, b.host));
}

/** Removes `fleet` (and any TTL or budget it had) from the scheduler's directory. */
export function unpublishFleet(config: GaxxConfig, fleet: string): Promise<void> {
  return withReadyRedis(config, async (r) => {
    await forgetFleet(r, fleet);
    await clearFleetLimits(r, fleet);
  });
}

/**
 * The fleet's TTL and budget as `gaxx spawn --ttl/--budget` recorded them in its state, priced by
 * its hosts; undefined when it was spawned without. What the daemon's reaper decides by: the
 * copy in Redis may have been written by anyone who can write to Redis.
 */
export function ownFleetLimits(state: FleetState): FleetLimits | undefined {
  const l = state.limits;
  if (!l) return undefined;
  return {
    since: l.since,
    currency: l.currency,
    pricePerHour: fleetPricePerHour(state),
    ...(l.expiresAt !== undefined ? { expiresAt: l.expiresAt } : {}),
    ...(l.budget !== undefined ? { budget: l.budget } : {}),
  };
}

/**
 * Hands the fleet's TTL and budget (from its state, priced by its hosts) to the scheduler daemon
 * that enforces them; resolves to whether a daemon's heartbeat is there to enforce them (as
 * `gaxx run` asks before it leaves its tasks to one). True when the fleet has no limits.
 */
export function publishFleetLimits(config: GaxxConfig, state: FleetState, stop?: AbortSignal): Promise<boolean> {
  const l = ownFleetLimits(state);
  if (!l) return Promise.resolve(true);
  return withReadyRedis(
    config,
    async (r) => {
      await setFleetLimits(r, state.fleet, l);
      return schedulerAlive(r);
    },
    stop,
  );
}

/**
 * Keeps the scheduler's reaper off `fleet` while a spawn of it runs (its TTL may pass before the
 * spawn ends); resolves to the release, which also closes the connection.
 */
export async function holdFleetWhileSpawning(config: GaxxConfig, fleet: string, stop?: AbortSignal): Promise<() => Promise<void>> {
  const target = await queueRedis(config, stop);
  const redis = createRedis(target.settings, 'producer');
  redis.on('error', () => undefined);
  const close = async (): Promise<void> => {
    redis.disconnect();
    await target.release();
  };
  try {
    await waitReady(redis, 5000, target.settings.display, stop);
    const release = await holdFleet(redis, fleet);
    return async () => {
      await release().catch(() => undefined);
      await close();
    };
  } catch (e) {
    await close();
    throw e;
  }
}
