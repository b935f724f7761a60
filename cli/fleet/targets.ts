/**
 * The agents a direct command (`gaxx cp`, `gaxx status`) talks to: a fleet's agents from the
 * scheduler's fleet registry (each pinned to its fleet and host name), or `--agent` addresses.
 * Also the operator credentials and a bounded parallel map with progress, shared by both.
 */
import type { CertBundle } from '../../certs/index.js';
import { GaxxError } from '../../proto/index.js';
import type { AgentExpectation } from '../../scheduler/client/index.js';
import { stringsFlag, type FlagValues } from '../command.js';
import { agentAddress } from '../commands/exec.js';
import type { GaxxConfig } from '../config.js';
import { operatorCredentials } from '../operator-credentials.js';
import type { Output } from '../output.js';
import { withReadyRedis } from '../run/redis-session.js';
import { resolveFleetAgents } from './fleet-directory.js';

/** One agent to talk to: `name` is its host name in the fleet, or its address. */
export interface Target {
  name: string;
  address: string;
  expect?: AgentExpectation;
}

/**
 * A fleet's agents (NOT_FOUND when unknown), optionally only the `hosts` named; a fleet only this
 * home's state still knows is registered again (resolveFleetAgents), noted on `out`. `stop` (the
 * command's Ctrl-C) ends the waits for Redis (withReadyRedis).
 */
export async function fleetTargets(config: GaxxConfig, fleet: string, hosts: string[] = [], out?: Output, stop?: AbortSignal): Promise<Target[]> {
  const agents = await withReadyRedis(config, (redis) => resolveFleetAgents(config, redis, fleet, out), stop);
  if (agents.length === 0) throw new GaxxError('NOT_FOUND', `unknown fleet '${fleet}' (no agents registered for it)`);
  const wanted = new Set(hosts);
  for (const h of wanted) if (!agents.some((a) => a.host === h)) throw new GaxxError('NOT_FOUND', `fleet '${fleet}' has no host '${h}'`);
  return agents.filter((a) => wanted.size === 0 || wanted.has(a.host)).map((a) => ({ name: a.host, address: a.address, expect: { fleet, host: a.host } }));
}

/** The `--agent ADDR[,ADDR...]` targets (empty when not given). */
export function agentTargets(flags: FlagValues, defaultPort: number, command: string): Target[] {
  const raw = stringsFlag(flags, 'agent')
    .flatMap((a) => a.split(','))
    .filter((a) => a !== '');
  return [...new Set(raw.map((a) => agentAddress(a, defaultPort, command)))].map((address) => ({ name: address, address }));
}

/**
 * The operator's certificate bundle, read once per command (config): every agent of a fleet
 * command then shares one bundle and so one TLS context. NOT_FOUND says to run `gaxx init`.
 */
const operatorBundles = new WeakMap<GaxxConfig, CertBundle>();
export function operatorCreds(config: GaxxConfig): CertBundle {
  const known = operatorBundles.get(config);
  if (known) return known;
  const bundle = operatorCredentials(config.paths.operatorCertDir, config.paths.caDir);
  operatorBundles.set(config, bundle);
  return bundle;
}

/** Maps `fn` over `items` with at most `limit` at once, showing `done/total` progress on a terminal. */
export async function parallelMap<T, R>(out: Output, label: string, items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  const progress = out.progress(label);
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) {
        results[i] = await fn(items[i] as T);
        progress.update(`${++done}/${items.length}`);
      }
    }),
  );
  progress.done();
  return results;
}
