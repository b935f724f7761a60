/** `gaxx delete F [--dry-run] [--yes]`: destroy a fleet's tagged instances, revoke its certificates, clear its state. */
import { createInterface } from 'node:readline';
import { counted, exitCodeFor, GaxxError, isGaxxError } from '../../proto/index.js';
import { boolFlag, JSON_FLAG, stringFlag, usageError, type Command } from '../command.js';
import { ownFleetLimits } from '../fleet/fleet-directory.js';
import { lockFleet } from '../fleet/fleet-lock.js';
import { cancelFleetRuns, fleetRunsInProgress, fleetRunsSince } from '../fleet/fleet-runs.js';
import { forgetFleet, unregisterHint } from '../fleet/forget-fleet.js';
import { providerFor } from '../fleet/provider-for.js';
import { retireAgents } from '../fleet/retire-agents.js';
import type { Io } from '../output.js';
import { stdinReadError } from '../std-streams.js';
import { providerNames, type DestroyOutcome, type Instance, type Provider } from '../providers/index.js';
import { limitReached } from '../../scheduler/index.js';
import { assertFleetName, readFleet, type FleetState } from '../state.js';
import type { GaxxConfig } from '../config.js';

/** Asks on the terminal; true only for y/yes. A terminal that cannot be read is FILE_ACCESS (nothing deleted). */
async function confirm(io: Io, question: string): Promise<boolean> {
  const unreadable = io.stdinUnreadable;
  if (unreadable) throw unreadable;
  if (!io.stdin) return false;
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: false });
  io.stderr.write(`${question} [y/N] `);
  try {
    for await (const line of rl) return /^y(es)?$/i.test(line.trim());
    return false;
  } catch (e) {
    throw typeof (e as NodeJS.ErrnoException | null)?.code === 'string' ? stdinReadError(e as NodeJS.ErrnoException, io.stdinFile) : e;
  } finally {
    rl.close();
  }
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
    /** The instances refused (no longer carrying the fleet's tag), as the state knew them. */
    refusedInstances?: { id: string; label: string | undefined; address: string | undefined }[];
    failed: { id: string; code: string; error: string }[];
    /** Why the provider's list of the fleet's tagged instances failed (only the state's ids were destroyed). */
    listFailed?: { code: string; error: string };
    revokedCerts: string[];
    knownHostsRemoved: number;
    /** Why unregistering the fleet from Redis failed (the rest of the delete was done). */
    unregisterFailed?: { code: string; error: string };
    /** Runs on the fleet that still had tasks to run, cancelled before its machines went. */
    runsCancelled: string[];
    /** Why cancelling them failed (Redis); the delete went on. */
    runsCancelFailed?: { code: string; error: string };
    /** Hosts gaxx did not rent (inventory): agents stopped on them, and those it could not reach. */
    agentsStopped: number;
    agentsNotStopped: { host: string; code: string; error: string }[];
  };
  errors: Array<[string, GaxxError]>;
  /** The fleet is gone but for its registration in Redis, which failed. */
  unregisterError?: GaxxError | undefined;
}

/**
 * Destroys `ids` (each re-checked for the fleet's tag by the provider), then, when every destroy
 * succeeded and the fleet's tagged instances were listed (no `listError`), forgets the fleet
 * (forgetFleet: certificates, known_hosts, state, then Redis). Shared by `gaxx delete` and the
 * scheduler daemon's TTL/budget reaper.
 */
export async function destroyFleet(
  config: GaxxConfig,
  fleet: string,
  o: { state: FleetState | undefined; provider: Provider; name: string; ids: string[]; signal?: AbortSignal; listError?: GaxxError },
): Promise<DestroyReport> {
  const { state, provider, name, ids, signal } = o;
  // Its runs end now, cancelled, rather than wait minutes for agents that will not come back.
  const runs = await cancelFleetRuns(config, fleet, `fleet ${fleet} deleted`, fleetRunsSince(state));
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
  const forgot =
    errors.length || o.listError
      ? undefined
      : await forgetFleet(config, fleet, { registered: !state || state.limits !== undefined || state.hosts.some((h) => h.status === 'ready') });
  const refusedInstances = [...outcomes].flatMap(([id, v]) => {
    if (v !== 'refused') return [];
    const h = state?.hosts.find((x) => x.id === id);
    return [{ id, label: h?.name, address: h?.ipv4 }];
  });
  const result = {
    fleet,
    provider: name,
    destroyed: provider.capabilities.destroys ? count('deleted') : 0,
    released: provider.capabilities.destroys ? 0 : count('deleted'),
    alreadyGone: count('gone'),
    refused: refusedInstances.length,
    refusedInstances,
    failed: errors.map(([id, e]) => ({ id, code: e.code, error: e.message })),
    ...(o.listError ? { listFailed: { code: o.listError.code, error: o.listError.message } } : {}),
    revokedCerts: forgot?.revokedCerts ?? [],
    knownHostsRemoved: forgot?.knownHostsRemoved ?? 0,
    ...(forgot?.unregisterError ? { unregisterFailed: { code: forgot.unregisterError.code, error: forgot.unregisterError.message } } : {}),
    runsCancelled: runs.cancelled,
    ...('error' in runs ? { runsCancelFailed: { code: runs.error.code, error: runs.error.message } } : {}),
    agentsStopped: retired.filter((r) => 'stopped' in r && r.stopped !== 'none').length,
    agentsNotStopped: retired.flatMap((r) => ('error' in r ? [{ host: r.name, code: r.error.code, error: r.error.message }] : [])),
  };
  return { result, errors, unregisterError: forgot?.unregisterError };
}

/**
 * Deletes a fleet without asking (the daemon's reaper): its tagged and recorded instances,
 * certificates, registration, state. Only a fleet whose own state records a TTL or budget that
 * it has reached: FAILED_PRECONDITION otherwise (whatever Redis says, the operator's record decides).
 */
export async function reapFleet(config: GaxxConfig, fleet: string, signal?: AbortSignal): Promise<DestroyReport> {
  // As `gaxx delete` and `gaxx spawn` of the fleet on this machine do: one of them at a time.
  const lock = lockFleet(config.paths.fleetsDir, fleet, 'delete');
  try {
    return await reapLocked(config, fleet, signal);
  } finally {
    lock.release();
  }
}

async function reapLocked(config: GaxxConfig, fleet: string, signal?: AbortSignal): Promise<DestroyReport> {
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
  usage: 'gaxx delete (F | --fleet F) [--provider P] [--dry-run] [--yes] [--json]',
  description: [
    'Destroys every instance of fleet F: those in its state and those the provider lists with the',
    "fleet's tag (gaxx-fleet:F), so instances an interrupted spawn lost are found too. Each instance",
    'is checked for the tag again right before it is destroyed: an untagged or foreign instance,',
    "whatever its name, is never touched. Then revokes the fleet's agent certificates, removes its",
    "entries from gaxx's known_hosts, unregisters the fleet",
    'and removes its state. Refused (exit 6) while a gaxx spawn of F runs, naming its pid. Asks first',
    'on a terminal; when stdin is not a terminal it',
    'refuses unless --yes. --dry-run lists what would be destroyed and changes nothing. --provider',
    'is needed only when the state is gone. Hosts of an SSH inventory are not destroyed: gaxx logs in',
    'as gx, stops the agent and deletes its key and certificates, and forgets the hosts.',
    '',
    'Runs on F that still have tasks to run are cancelled first (named in the question and by',
    '--dry-run; runsCancelled in --json): their queued tasks are withdrawn, their running ones',
    'stopped, and their gaxx run ends at once instead of waiting minutes for agents that will not',
    'come back. The TTL/budget reaper of `gaxx scheduler` does the same.',
    '',
    "An instance in the state that no longer carries the fleet's tag (removed by hand) is not",
    'destroyed: it is listed with its id, label and address (refusedInstances in --json), the rest',
    'of the fleet is deleted and the command exits 6 (FAILED_PRECONDITION): destroy it by hand, or',
    "tag it again and run 'gaxx delete F --provider P'. When the provider cannot list the fleet's",
    'tagged instances, the instances the state records are destroyed all the same and the state is',
    'kept (exit 12): run the delete again. When Redis cannot be reached, everything but the',
    "fleet's unregistration is done and the command exits 12, naming what to run once Redis is back.",
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
    // One command at a time on a fleet: a spawn of it must not go on recording hosts meanwhile.
    const lock = boolFlag(flags, 'dry-run') ? undefined : lockFleet(config.paths.fleetsDir, fleet, 'delete');
    try {
      const state = readFleet(config.paths.fleetsDir, fleet);
      const name = state?.provider ?? stringFlag(flags, 'provider');
      if (!name) throw new GaxxError('NOT_FOUND', `no state for fleet ${fleet}; pass --provider P to look for its tagged instances`);
      if (state && stringFlag(flags, 'provider') && stringFlag(flags, 'provider') !== state.provider)
        throw usageError('delete', `fleet ${fleet} runs on ${state.provider}`);
      const provider = await providerFor(config, name, { state });
      // A failed listing still leaves the instances the state recorded to destroy.
      let tagged: Instance[] = [];
      let listError: GaxxError | undefined;
      try {
        tagged = await provider.list(fleet, { signal });
      } catch (e) {
        if (!state || signal.aborted || boolFlag(flags, 'dry-run') || !isGaxxError(e)) throw e;
        listError = e;
      }
      const ids = [...new Set([...tagged.map((i) => i.id), ...(state?.hosts.flatMap((h) => (h.id ? [h.id] : [])) ?? [])])];
      // Hosts gaxx did not rent (an inventory) are never destroyed: their agents are stopped and gaxx forgets them.
      const keeps = !provider.capabilities.destroys;
      // Said before anything is done: a delete cancels them (destroyFleet).
      const inProgress =
        boolFlag(flags, 'dry-run') || !boolFlag(flags, 'yes') ? await fleetRunsInProgress(config, fleet, fleetRunsSince(state)).catch(() => []) : [];
      const runsNote = inProgress.length ? `${counted(inProgress.length, 'run')} in progress on it (${inProgress.join(', ')})` : '';
      if (boolFlag(flags, 'dry-run')) {
        const listed = tagged.map((i) => ({ id: i.id, label: i.label, address: i.ipv4 }));
        out.result(
          {
            fleet,
            provider: name,
            wouldDestroy: keeps ? [] : listed,
            ...(keeps ? { wouldRelease: listed } : {}),
            stateHosts: state?.hosts.length ?? 0,
            wouldCancelRuns: inProgress,
          },
          () =>
            [
              keeps
                ? `fleet ${fleet} (${name}): would release ${counted(tagged.length, 'inventory host')}: stop the agent, delete its key and certificate, forget the host; the machine is left as it is (never destroyed)`
                : `fleet ${fleet} (${name}): would destroy ${counted(tagged.length, 'tagged instance')}`,
              // An inventory host's label is its id: named once.
              ...tagged.map((i) => `  ${[...new Set([i.label, i.id])].join(' ')} ${i.ipv4 ?? '-'}`),
              ...(runsNote ? [`would cancel the ${runsNote}`] : []),
            ].join('\n'),
        );
        return 0;
      }
      if (!boolFlag(flags, 'yes')) {
        if (!io.stdinIsTty) throw usageError('delete', `refusing to delete fleet ${fleet} without --yes when stdin is not a terminal`);
        const question = keeps
          ? `stop the agents on ${counted(ids.length, 'inventory host')} of fleet ${fleet} and forget them (the machines stay)?`
          : `destroy ${counted(ids.length, 'instance')} of fleet ${fleet} on ${name}?`;
        const ask = runsNote ? `${question.slice(0, -1)}, and cancel the ${runsNote}?` : question;
        if (!(await confirm(io, ask))) throw new GaxxError('CANCELLED', 'nothing deleted');
      }
      const { result, errors, unregisterError } = await destroyFleet(config, fleet, {
        state,
        provider,
        name,
        ids,
        signal,
        ...(listError ? { listError } : {}),
      });
      out.result(result, () =>
        [
          `fleet ${fleet}: ${keeps ? `released ${counted(result.released, 'inventory host')} (left as they are, not destroyed)` : `destroyed ${result.destroyed}`}, already gone ${result.alreadyGone}${result.refused ? `, left ${result.refused} not carrying the fleet's tag` : ''}`,
          ...result.failed.map((f) => `  ${f.id}: ${f.error} [${f.code}]`),
          ...(result.refusedInstances ?? []).map(
            (r) =>
              `  ${[r.id, r.label, r.address].filter(Boolean).join(' ')}: not destroyed, it no longer carries the tag gaxx-fleet:${fleet}: destroy it by hand, or tag it again and run 'gaxx delete ${fleet} --provider ${name}'`,
          ),
          ...(listError
            ? [
                `could not list the fleet's tagged instances (${listError.message} [${listError.code}]): only the ${ids.length} the state records were destroyed`,
              ]
            : []),
          ...(result.runsCancelled.length
            ? [`cancelled ${counted(result.runsCancelled.length, 'run')} in progress on it: ${result.runsCancelled.join(', ')}`]
            : []),
          ...(result.runsCancelFailed ? [`runs in progress on it not cancelled: ${result.runsCancelFailed.error} [${result.runsCancelFailed.code}]`] : []),
          ...(result.agentsStopped ? [`stopped the agent on ${result.agentsStopped} host(s) that stay`] : []),
          ...result.agentsNotStopped.map((f) => `  ${f.host}: agent not stopped: ${f.error} [${f.code}]`),
          errors.length || listError
            ? `state kept: run 'gaxx delete ${fleet}' again`
            : `revoked ${result.revokedCerts.length} certificate(s), removed ${result.knownHostsRemoved} known_hosts entr${result.knownHostsRemoved === 1 ? 'y' : 'ies'}; state cleared`,
          ...(unregisterError ? [unregisterHint(fleet, name, unregisterError)] : []),
        ].join('\n'),
      );
      const failure = (errors[0] as [string, GaxxError] | undefined)?.[1] ?? listError ?? unregisterError;
      if (failure) return exitCodeFor(failure.code);
      return result.refused ? exitCodeFor('FAILED_PRECONDITION') : 0;
    } finally {
      lock?.release();
    }
  },
};
