/** `gaxx delete F [--dry-run] [--yes]`: destroy a fleet's tagged instances, revoke its certificates, clear its state. */
import { createInterface } from 'node:readline';
import { FleetCa } from '../../certs/index.js';
import { counted, exitCodeFor, GaxxError, isGaxxError } from '../../proto/index.js';
import { boolFlag, JSON_FLAG, stringFlag, usageError, type Command } from '../command.js';
import { fleetKnownHosts } from '../fleet/bootstrap-step.js';
import { ownFleetLimits, unpublishFleet } from '../fleet/fleet-directory.js';
import { providerFor } from '../fleet/provider-for.js';
import { retireAgents } from '../fleet/retire-agents.js';
import type { Io } from '../output.js';
import { providerNames, type DestroyOutcome, type Provider } from '../providers/index.js';
import { limitReached } from '../../scheduler/index.js';
import { assertFleetName, readFleet, removeFleet, type FleetState } from '../state.js';
import type { GaxxConfig } from '../config.js';

/** Asks on the terminal; true only for y/yes. */
async function confirm(io: Io, question: string): Promise<boolean> {
  if (!io.stdin) return false;
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: false });
  io.stderr.write(`${question} [y/N] `);
  try {
    for await (const line of rl) return /^y(es)?$/i.test(line.trim());
    return false;
  } finally {
    rl.close();
  }
}

/** Revokes every unrevoked agent certificate of `fleet`; the serials revoked (none without a CA). */
export function revokeFleetCerts(caDir: string, fleet: string): string[] {
  let ca: FleetCa;
  try {
    ca = FleetCa.open(caDir);
  } catch (e) {
    if (isGaxxError(e, 'NOT_FOUND')) return [];
    throw e;
  }
  const revoked = ca.revoked();
  const serials = ca
    .list()
    .filter((r) => r.identity.role === 'agent' && r.identity.fleet === fleet && !revoked.has(r.serial))
    .map((r) => r.serial);
  for (const s of serials) ca.revoke(s);
  return serials;
}

/** What destroying a fleet did. */
export interface DestroyReport {
  result: {
    fleet: string;
    provider: string;
    /** Machines removed (rented ones); an inventory's hosts are never destroyed. */
    destroyed: number;
    /** Hosts gaxx did not rent (inventory): forgotten, the machine left as it is. */
    released: number;
    alreadyGone: number;
    refused: number;
    failed: { id: string; code: string; error: string }[];
    revokedCerts: string[];
    knownHostsRemoved: number;
    /** Hosts gaxx did not rent (inventory): agents stopped on them, and those it could not reach. */
    agentsStopped: number;
    agentsNotStopped: { host: string; code: string; error: string }[];
  };
  errors: Array<[string, GaxxError]>;
}

/**
 * Destroys `ids` (each re-checked for the fleet's tag by the provider), then, when every destroy
 * succeeded, revokes the fleet's certificates, unregisters it and removes its state. Shared by
 * `gaxx delete` and the scheduler daemon's TTL/budget reaper.
 */
export async function destroyFleet(
  config: GaxxConfig,
  fleet: string,
  o: { state: FleetState | undefined; provider: Provider; name: string; ids: string[]; signal?: AbortSignal },
): Promise<DestroyReport> {
  const { state, provider, name, ids, signal } = o;
  // Machines that outlive the fleet (an inventory) keep running: their agents are stopped first,
  // while known_hosts still vouches for them. An unreachable host does not block the delete.
  const keepsMachines = !provider.capabilities.destroys && !provider.capabilities.startsAgent;
  const retired = keepsMachines && state ? await retireAgents(config, state.hosts) : [];
  const outcomes = new Map<string, DestroyOutcome | GaxxError>();
  await Promise.all(
    ids.map(async (id) =>
      outcomes.set(
        id,
        await provider.destroy(fleet, id, { signal }).catch((e: unknown) => (e instanceof GaxxError ? e : new GaxxError('INTERNAL', String(e)))),
      ),
    ),
  );
  const errors = [...outcomes].filter((o): o is [string, GaxxError] => o[1] instanceof GaxxError);
  const count = (k: DestroyOutcome) => [...outcomes.values()].filter((v) => v === k).length;
  const revoked = errors.length ? [] : revokeFleetCerts(config.paths.caDir, fleet);
  let knownHostsRemoved = 0;
  if (!errors.length) {
    if (!state || state.limits || state.hosts.some((h) => h.status === 'ready')) await unpublishFleet(config, fleet);
    knownHostsRemoved = fleetKnownHosts(config).removeFleet(fleet);
    removeFleet(config.paths.fleetsDir, fleet);
  }
  const result = {
    fleet,
    provider: name,
    destroyed: provider.capabilities.destroys ? count('deleted') : 0,
    released: provider.capabilities.destroys ? 0 : count('deleted'),
    alreadyGone: count('gone'),
    refused: count('refused'),
    failed: errors.map(([id, e]) => ({ id, code: e.code, error: e.message })),
    revokedCerts: revoked,
    knownHostsRemoved,
    agentsStopped: retired.filter((r) => 'stopped' in r && r.stopped !== 'none').length,
    agentsNotStopped: retired.flatMap((r) => ('error' in r ? [{ host: r.name, code: r.error.code, error: r.error.message }] : [])),
  };
  return { result, errors };
}

/**
 * Deletes a fleet without asking (the daemon's reaper): its tagged and recorded instances,
 * certificates, registration, state. Only a fleet whose own state records a TTL or budget that
 * it has reached: FAILED_PRECONDITION otherwise (whatever Redis says, the operator's record decides).
 */
export async function reapFleet(config: GaxxConfig, fleet: string, signal?: AbortSignal): Promise<DestroyReport> {
  const state = readFleet(config.paths.fleetsDir, fleet);
  const own = state && ownFleetLimits(state);
  if (!state || !own || !limitReached(own))
    throw new GaxxError('FAILED_PRECONDITION', `fleet ${fleet} has not reached a TTL or budget recorded in its state: not deleted`);
  const provider = await providerFor(config, state.provider);
  const tagged = await provider.list(fleet, { signal });
  const ids = [...new Set([...tagged.map((i) => i.id), ...state.hosts.flatMap((h) => (h.id ? [h.id] : []))])];
  const report = await destroyFleet(config, fleet, { state, provider, name: state.provider, ids, signal });
  if (report.errors.length) throw (report.errors[0] as [string, GaxxError])[1];
  return report;
}

export const command: Command = {
  usage: 'gaxx delete F [--provider P] [--dry-run] [--yes] [--json]',
  description: [
    'Destroys every instance of fleet F: those in its state and those the provider lists with the',
    "fleet's tag (gaxx-fleet:F), so instances an interrupted spawn lost are found too. Each instance",
    'is checked for the tag again right before it is destroyed: an untagged or foreign instance,',
    "whatever its name, is never touched. Then revokes the fleet's agent certificates, removes its",
    "entries from gaxx's known_hosts, unregisters the fleet",
    'and removes its state. Asks first on a terminal; when stdin is not a terminal it',
    'refuses unless --yes. --dry-run lists what would be destroyed and changes nothing. --provider',
    'is needed only when the state is gone. Hosts of an SSH inventory are not destroyed: gaxx logs in',
    'as gx, stops the agent and deletes its key and certificates, and forgets the hosts.',
  ].join('\n'),
  flags: {
    provider: {
      type: 'string',
      valueName: 'P',
      values: providerNames(),
      help: `provider to search when the fleet has no state (${providerNames().join(', ')})`,
    },
    'dry-run': { type: 'boolean', help: 'show what would be destroyed; change nothing' },
    yes: { type: 'boolean', short: 'y', help: 'do not ask' },
    json: JSON_FLAG,
  },
  positionals: { names: ['F'], min: 1, complete: 'fleet' },
  examples: ['gaxx delete web', 'gaxx delete web --dry-run', 'gaxx delete web --yes --json', 'gaxx delete web --provider linode --yes'],
  async run({ flags, positionals, config, out, io, signal }) {
    const fleet = positionals[0] as string;
    assertFleetName(fleet);
    const state = readFleet(config.paths.fleetsDir, fleet);
    const name = state?.provider ?? stringFlag(flags, 'provider');
    if (!name) throw new GaxxError('NOT_FOUND', `no state for fleet ${fleet}; pass --provider P to look for its tagged instances`);
    if (state && stringFlag(flags, 'provider') && stringFlag(flags, 'provider') !== state.provider)
      throw usageError('delete', `fleet ${fleet} runs on ${state.provider}`);
    const provider = await providerFor(config, name, { state });
    const tagged = await provider.list(fleet, { signal });
    const ids = [...new Set([...tagged.map((i) => i.id), ...(state?.hosts.flatMap((h) => (h.id ? [h.id] : [])) ?? [])])];
    // Hosts gaxx did not rent (an inventory) are never destroyed: their agents are stopped and gaxx forgets them.
    const keeps = !provider.capabilities.destroys;
    if (boolFlag(flags, 'dry-run')) {
      const listed = tagged.map((i) => ({ id: i.id, label: i.label, address: i.ipv4 }));
      out.result(
        { fleet, provider: name, wouldDestroy: keeps ? [] : listed, ...(keeps ? { wouldRelease: listed } : {}), stateHosts: state?.hosts.length ?? 0 },
        () =>
          [
            keeps
              ? `fleet ${fleet} (${name}): would release ${counted(tagged.length, 'inventory host')}: stop the agent, delete its key and certificate, forget the host; the machine is left as it is (never destroyed)`
              : `fleet ${fleet} (${name}): would destroy ${counted(tagged.length, 'tagged instance')}`,
            // An inventory host's label is its id: named once.
            ...tagged.map((i) => `  ${[...new Set([i.label, i.id])].join(' ')} ${i.ipv4 ?? '-'}`),
          ].join('\n'),
      );
      return 0;
    }
    if (!boolFlag(flags, 'yes')) {
      if (!io.stdinIsTty) throw usageError('delete', `refusing to delete fleet ${fleet} without --yes when stdin is not a terminal`);
      const question = keeps
        ? `stop the agents on ${counted(ids.length, 'inventory host')} of fleet ${fleet} and forget them (the machines stay)?`
        : `destroy ${counted(ids.length, 'instance')} of fleet ${fleet} on ${name}?`;
      if (!(await confirm(io, question))) throw new GaxxError('CANCELLED', 'nothing deleted');
    }
    const { result, errors } = await destroyFleet(config, fleet, { state, provider, name, ids, signal });
    out.result(result, () =>
      [
        `fleet ${fleet}: ${keeps ? `released ${counted(result.released, 'inventory host')} (left as they are, not destroyed)` : `destroyed ${result.destroyed}`}, already gone ${result.alreadyGone}${result.refused ? `, left ${result.refused} not carrying the fleet's tag` : ''}`,
        ...result.failed.map((f) => `  ${f.id}: ${f.error} [${f.code}]`),
        ...(result.agentsStopped ? [`stopped the agent on ${result.agentsStopped} host(s) that stay`] : []),
        ...result.agentsNotStopped.map((f) => `  ${f.host}: agent not stopped: ${f.error} [${f.code}]`),
        errors.length
          ? `state kept: run 'gaxx delete ${fleet}' again`
          : `revoked ${result.revokedCerts.length} certificate(s), removed ${result.knownHostsRemoved} known_hosts entr${result.knownHostsRemoved === 1 ? 'y' : 'ies'}; state cleared`,
      ].join('\n'),
    );
    return errors.length ? exitCodeFor((errors[0] as [string, GaxxError])[1].code) : 0;
  },
};
