/** `gaxx spawn --provider P --count N --fleet F [...]`: rent (or take) hosts, bootstrap them, register the fleet. */
import { resolve } from 'node:path';
import { checkDuration, counted, GaxxError } from '../../proto/index.js';
import { boolFlag, durationFlag, intFlag, JSON_FLAG, stringFlag, usageError, type Command, type CommandContext } from '../command.js';
import type { GaxxConfig } from '../config.js';
import { loadBootstrapStep } from '../fleet/bootstrap-step.js';
import { holdFleetWhileSpawning, publishFleet, publishFleetLimits, stateAgents, unpublishFleet } from '../fleet/fleet-directory.js';
import { lockFleet } from '../fleet/fleet-lock.js';
import { assertInitialized } from '../fleet/preflight.js';
import { providerFor } from '../fleet/provider-for.js';
import {
  adoptTagged,
  awaitAddresses,
  bootstrapCreated,
  createHosts,
  destroySurplus,
  missingIndices,
  retireDeadHosts,
  type SpawnContext,
} from '../fleet/spawn-flow.js';
import { finish, reportInterrupted } from '../fleet/spawn-report.js';
import { providerNames, systemClock } from '../providers/index.js';
import { assertFleetName, fleetSinceOf, FleetStore, readFleet, removeFleet, type FleetState } from '../state.js';

const usage = (m: string): GaxxError => usageError('spawn', m);

interface Plan {
  fleet: string;
  provider: string;
  count: number;
  minCount: number;
  settings: FleetState['settings'];
  existing: FleetState | undefined;
  /** TTL and budget of a new fleet (a --fill keeps the fleet's own). */
  limits: FleetState['limits'];
}

/** Providers that bill by the hour and report their prices: only there can a budget be reached. */
const PRICED_PROVIDERS = new Set(['linode', 'vultr']);
/** The longest TTL (a year): gaxx fleets are short-lived, and a longer one is most likely a typo. */
const MAX_TTL_MS = 8760 * 3_600_000;
/** The most hosts one fleet has: a larger --count is most likely a typo (and would exhaust memory before any API refused it). */
export const MAX_FLEET_HOSTS = 1000;

/** --ttl and --budget of a new fleet, checked before anything is rented. */
export function limitsFromFlags(flags: CommandContext['flags'], provider: string, now = Date.now()): FleetState['limits'] {
  const ttlRaw = stringFlag(flags, 'ttl');
  const budgetRaw = stringFlag(flags, 'budget');
  let ttlMs: number | undefined;
  if (ttlRaw !== undefined) {
    // A TTL is a point in time, not a timer: it may be longer than the timer-bound default.
    const d = checkDuration(ttlRaw, { minMs: 1000, maxMs: MAX_TTL_MS });
    if ('problem' in d) throw usage(`--ttl '${ttlRaw}' ${d.problem}`);
    ttlMs = d.ms;
  }
  let budget: number | undefined;
  if (budgetRaw !== undefined) {
    if (!/^(\d+(\.\d*)?|\.\d+)$/.test(budgetRaw) || !(Number(budgetRaw) > 0))
      throw usage(`--budget '${budgetRaw}' must be an amount above 0 in the provider's currency, like 5 or 5.00`);
    if (!PRICED_PROVIDERS.has(provider))
      throw usage(
        `--budget needs a provider that bills by the hour (${[...PRICED_PROVIDERS].join(', ')}): ${provider} hosts have no price, so no budget could ever be reached`,
      );
    budget = Number(budgetRaw);
  }
  if (ttlMs === undefined && budget === undefined) return undefined;
  return { since: now, currency: 'USD', ...(ttlMs !== undefined ? { expiresAt: now + ttlMs } : {}), ...(budget !== undefined ? { budget } : {}) };
}

/**
 * The host count and the min count a spawn records. A new fleet: --count N, and --min-count K or
 * all N. A --fill: the fleet's own, unless --count grows the fleet; then a fleet that needed all
 * its hosts needs all of the new count, and one with a lower minimum keeps it (--min-count sets
 * another). A --count below the fleet's is refused: spawn adds hosts, it never removes any, and
 * nothing removes part of a fleet (`gaxx delete F` removes all of it).
 */
export function fleetCounts(
  fleet: string,
  existing: Pick<FleetState, 'count' | 'minCount'> | undefined,
  countFlag: number | undefined,
  minCountFlag: number | undefined,
): { count: number; minCount: number } {
  if (existing && countFlag !== undefined && countFlag < existing.count)
    throw usage(
      `fleet ${fleet} has ${counted(existing.count, 'host')}: --count ${countFlag} would shrink it, which gaxx does not do (spawn only adds hosts; 'gaxx delete ${fleet}' removes the whole fleet). Leave out --count to fill it to ${existing.count}, or give more to grow it`,
    );
  const count = countFlag ?? existing?.count;
  if (count === undefined) throw usage(`--count N (a whole number from 1 to ${MAX_FLEET_HOSTS}) is required`);
  const kept = existing && (existing.minCount >= existing.count ? count : existing.minCount);
  const minCount = minCountFlag ?? kept ?? count;
  if (minCount > count) throw usage(`--min-count ${minCount} is more than the fleet's ${counted(count, 'host')}: give at most --count`);
  return { count, minCount };
}

function plan(flags: CommandContext['flags'], config: GaxxConfig): Plan {
  const fleet = stringFlag(flags, 'fleet');
  if (!fleet) throw usage('--fleet F is required');
  assertFleetName(fleet);
  const existing = readFleet(config.paths.fleetsDir, fleet);
  const fill = boolFlag(flags, 'fill');
  if (existing && !fill)
    throw new GaxxError(
      'ALREADY_EXISTS',
      `fleet ${fleet} exists: add its missing hosts with 'gaxx spawn --fleet ${fleet} --fill', or remove it with 'gaxx delete ${fleet}'`,
    );
  if (!existing && fill) throw new GaxxError('NOT_FOUND', `no fleet ${fleet} to fill (gaxx ls shows the fleets)`);
  const provider = stringFlag(flags, 'provider') ?? existing?.provider;
  if (!provider) throw usage(`--provider P is required (${providerNames().join(', ')})`);
  if (existing && provider !== existing.provider) throw usage(`fleet ${fleet} runs on ${existing.provider}, not ${provider}`);
  const { count, minCount } = fleetCounts(
    fleet,
    existing,
    intFlag(flags, 'count', 'spawn', 1, MAX_FLEET_HOSTS),
    intFlag(flags, 'min-count', 'spawn', 1, MAX_FLEET_HOSTS),
  );
  const pick = (k: 'region' | 'type' | 'image') => stringFlag(flags, k) ?? existing?.settings[k];
  const settings: FleetState['settings'] = Object.fromEntries(
    (['region', 'type', 'image'] as const).map((k) => [k, pick(k)]).filter(([, v]) => v !== undefined),
  );
  const inventory = stringFlag(flags, 'inventory');
  if (inventory && provider !== 'ssh') throw usage('--inventory FILE goes with --provider ssh');
  if (inventory || existing?.settings.inventory) settings.inventory = inventory ? resolve(inventory) : existing?.settings.inventory;
  if (existing && (stringFlag(flags, 'ttl') !== undefined || stringFlag(flags, 'budget') !== undefined))
    throw usage(`--ttl and --budget are set when a fleet is created; fleet ${fleet} keeps its own`);
  const limits = existing ? existing.limits : limitsFromFlags(flags, provider);
  return { fleet, provider, count, minCount, settings, existing, limits };
}

function register(config: GaxxConfig, state: FleetState, stop: AbortSignal): Promise<void> {
  return publishFleet(config, state.fleet, stateAgents(config, state), stop);
}

export const command: Command = {
  usage:
    'gaxx spawn --provider P --count N --fleet F [--ttl D] [--budget AMOUNT] [--region R] [--type T] [--image I] [--min-count K] [--inventory FILE] [--accept-new] [--fill] [--ready-timeout D] [--ssh-timeout D] [--json]',
  description: [
    'Creates N hosts for fleet F on provider P, each tagged gaxx-fleet:F and named gaxx-F-<i>, waits',
    'until each has an address, bootstraps it (hardening, agent install, Health over mTLS) and',
    "registers the fleet for `gaxx run --fleet F`. Requests are paced to the provider's documented",
    'limits and retried on 429/5xx. The fleet is usable when at least --min-count K hosts are ready',
    '(default: all N); hosts that failed are destroyed and reported, and `--fill` adds them later.',
    'When fewer than K are ready, every host this run created is destroyed. Each step is recorded',
    "in the fleet's state before it happens, so an interrupted spawn can be resumed with --fill or",
    'removed with `gaxx delete F`. Ctrl-C stops at once (SSH connections under way included), cleans',
    'nothing up, and names the instances left (`left` in --json) with the command to resume or remove',
    'them (exit 130). A delete of F is refused while a spawn of F runs. Tokens: LINODE_TOKEN / VULTR_API_KEY in the environment or in',
    '<config>/secrets.env (mode 0600); never on the command line. API base URLs: the config file',
    '(providers.<name>.url) or GAXX_LINODE_URL / GAXX_VULTR_URL.',
    '',
    "--ttl D (30m, 2h, ...; counted from this spawn) and --budget AMOUNT (in the provider's currency, USD",
    "for linode and vultr; cost so far = the fleet's hourly price times the hours since the spawn) are",
    "recorded in the fleet's state file and in Redis: a running `gaxx scheduler` with this state dir",
    'deletes the fleet, as `gaxx delete F --yes` does, once the TTL passes or the cost reaches the',
    'budget by that record (so keep one running; spawn warns on stderr when no scheduler heartbeat',
    'is in Redis). Each cloud',
    'VM also powers itself off at TTL plus 10 minutes (a systemd timer and cloud-init power_state set at',
    'its first boot), even if no scheduler or controller is left. A budget needs a provider with prices:',
    'with --provider local or ssh it is refused. On local the TTL stops the local agents; on ssh the',
    'hosts are yours: the TTL removes the fleet from gaxx (certificates revoked) but leaves them running.',
    "`gaxx ls` shows the TTL left and the cost so far. A --fill keeps the fleet's TTL and budget.",
    '',
    '--provider local starts each agent on a loopback address of its own (127.0.0.2, 127.0.0.3, ...),',
    'claimed for every installation (GAXX_HOME) of this user in <tmpdir>/gaxx-local-<uid>/slots, so',
    'local fleets spawned at once from several homes never share one; an address where something',
    'else listens on the agent port is skipped, also when it is bound while the agent starts.',
  ].join('\n'),
  flags: {
    provider: { type: 'string', valueName: 'P', values: providerNames(), help: `where the hosts come from (${providerNames().join(', ')})` },
    count: {
      type: 'string',
      valueName: 'N',
      help: `how many hosts the fleet has (1 to ${MAX_FLEET_HOSTS}); with --fill, a larger N grows the fleet, a smaller one is refused (a fleet is never shrunk)`,
    },
    fleet: { type: 'string', valueName: 'F', help: 'fleet name (1-39 characters of [a-z0-9-])' },
    ttl: {
      type: 'string',
      valueName: 'D',
      help: 'delete the fleet this long after the spawn (1s to 8760h; needs a running gaxx scheduler, warned about when none is)',
    },
    budget: { type: 'string', valueName: 'AMOUNT', help: "delete the fleet once its cost reaches AMOUNT (provider's currency; linode, vultr)" },
    region: { type: 'string', valueName: 'R', help: "provider region (default: the provider's default or the config file's)" },
    type: { type: 'string', valueName: 'T', help: 'instance type / plan' },
    image: { type: 'string', valueName: 'I', help: 'OS image' },
    'min-count': {
      type: 'string',
      valueName: 'K',
      help: `ready hosts that make the fleet usable, 1 to N (so at most ${MAX_FLEET_HOSTS}; default N; a --fill keeps the fleet's, all of a larger N when it was all)`,
    },
    inventory: {
      type: 'string',
      valueName: 'FILE',
      help: 'with --provider ssh: YAML file of hosts you have (hosts: [{host, port, user, key}]); a host another ssh fleet has is refused (ALREADY_EXISTS)',
    },
    'accept-new': { type: 'boolean', help: 'ssh inventory: trust a host missing from known_hosts on first use (and record its key)' },
    fill: { type: 'boolean', help: "create the fleet's missing or failed hosts (resumes an interrupted spawn)" },
    'ssh-timeout': { type: 'string', valueName: 'D', help: 'how long to keep retrying SSH to a new host, e.g. 90s, 5m (default 3m)' },
    'ready-timeout': { type: 'string', valueName: 'D', help: 'how long to wait for a new host to have an address, e.g. 5m (default 10m)' },
    json: JSON_FLAG,
  },
  handlesInterrupt: true,
  examples: [
    'gaxx spawn --provider linode --count 10 --fleet web',
    'gaxx spawn --provider vultr --count 100 --min-count 90 --fleet scan --region ams',
    'gaxx spawn --provider linode --count 20 --fleet crawl --ttl 2h --budget 5.00',
    'gaxx spawn --fleet web --fill',
  ],
  async run(c) {
    const fleet = stringFlag(c.flags, 'fleet');
    if (!fleet) throw usage('--fleet F is required');
    assertFleetName(fleet);
    // One command at a time on a fleet: a delete must not run while this spawn records hosts.
    const lock = lockFleet(c.config.paths.fleetsDir, fleet, 'spawn');
    try {
      return await spawn(c);
    } finally {
      lock.release();
    }
  },
};

async function spawn({ flags, config, out, signal }: CommandContext): Promise<number> {
  const p = plan(flags, config);
  // Every flag is checked before anything is recorded or rented.
  const connectDeadlineMs = durationFlag(flags, 'ssh-timeout', 'spawn') ?? 180_000;
  const readyTimeoutMs = durationFlag(flags, 'ready-timeout', 'spawn') ?? 600_000;
  // Before any provider call: a missing `gaxx init` must not surface after instances are rented.
  assertInitialized(config);
  // An inventory's entries (key files included) are checked here, before anything is recorded.
  const provider = await providerFor(config, p.provider, { inventory: p.settings.inventory, state: p.existing, checkKeys: true });
  const max = provider.capabilities.maxInstances;
  if (max !== undefined && p.count > max)
    throw usage(
      provider.capabilities.creates
        ? `--count ${p.count} is more than the ${provider.name} provider can give (at most ${max})`
        : `--count ${p.count} is more than the inventory's ${counted(max, 'host')} (${p.settings.inventory ?? 'the inventory'}): list more hosts there or ask for fewer`,
    );
  const store = p.existing
    ? new FleetStore(config.paths.fleetsDir, { ...p.existing, count: p.count, minCount: p.minCount, settings: p.settings })
    : FleetStore.create(config.paths.fleetsDir, {
        fleet: p.fleet,
        provider: p.provider,
        count: p.count,
        minCount: p.minCount,
        settings: p.settings,
        ...(p.limits ? { limits: p.limits } : {}),
      });
  // The agents refuse work signed before the fleet was created (the first spawn's, kept by --fill).
  const fleetSince = fleetSinceOf(store.state);
  const ctx: SpawnContext = {
    provider,
    store,
    step: await loadBootstrapStep(config, {
      startsAgent: provider.capabilities.startsAgent,
      acceptNew: boolFlag(flags, 'accept-new'),
      connectDeadlineMs,
      powerOffAt: p.limits?.expiresAt,
      fleetSince,
    }),
    fleetSince,
    agentPort: config.agent.port,
    clock: systemClock,
    signal,
    readyTimeoutMs,
    progress: (line) => out.note(`gaxx: ${p.fleet}: ${line}`),
  };
  const before = new Set(store.state.hosts.filter((h) => h.status === 'ready').map((h) => h.index));
  // A TTL shorter than this spawn must not have the reaper delete hosts under it.
  const release = p.limits ? await holdFleetWhileSpawning(config, p.fleet, signal) : undefined;
  const stopIfCancelled = (): void => {
    if (signal.aborted) throw new GaxxError('CANCELLED', 'cancelled');
  };
  try {
    // The limits reach the daemon before anything is rented, so a spawn that dies midway is still ended in time.
    if (p.limits && !p.existing) {
      await store.update(() => undefined);
      if (!(await publishFleetLimits(config, store.state, signal))) out.note(noScheduler(p.fleet, p.limits, provider.capabilities.userData));
    }
    const { tagged, surplus } = await adoptTagged(ctx);
    const duplicates = await destroySurplus(ctx, surplus);
    if (p.existing) await retireDeadHosts(ctx, tagged);
    const { region, type, image } = p.settings;
    const failed = await createHosts(ctx, missingIndices(store.state.hosts, p.count), { region, type, image });
    stopIfCancelled();
    // Now priced by the hosts the provider created.
    await publishFleetLimits(config, store.state, signal);
    for (const [i, e] of await awaitAddresses(ctx)) failed.set(i, e);
    stopIfCancelled();
    await bootstrapCreated(ctx, failed);
    stopIfCancelled();
    return await finish(ctx, config, out, { p, before, failed, duplicates, register: (state) => register(config, state, signal) });
  } catch (e) {
    // Ctrl-C: what is left is named, with the ways to go on.
    const code = signal.aborted ? reportInterrupted(out, p, store.state) : undefined;
    if (code !== undefined) return code;
    // Nothing recorded (e.g. the token was refused before any create): leave no empty fleet.
    if (store.state.hosts.length === 0) {
      removeFleet(config.paths.fleetsDir, p.fleet);
      if (p.limits && !p.existing) await unpublishFleet(config, p.fleet).catch(() => undefined);
    }
    throw e;
  } finally {
    await release?.();
  }
}

/** The warning for a TTL or budget that no running scheduler daemon (no heartbeat in Redis) would enforce. */
function noScheduler(fleet: string, limits: NonNullable<FleetState['limits']>, userData: boolean): string {
  const what = [limits.expiresAt !== undefined ? 'TTL' : '', limits.budget !== undefined ? 'budget' : ''].filter(Boolean).join(' and ');
  // A cloud VM's own timer powers it off (still billed, not deleted) at the TTL plus 10 minutes.
  const meanwhile = userData && limits.expiresAt !== undefined ? 'its VMs only power themselves off at the TTL plus 10 minutes' : 'nothing ends this fleet';
  return `gaxx: warning: no gaxx scheduler is running (no daemon heartbeat in Redis), and only a running one enforces the ${what} of ${fleet}: start \`gaxx scheduler\` on the same Redis (until then ${meanwhile})`;
}
