/** The provider of a command: its settings from the CLI config, its token from env or secrets.env. */
import type { GaxxConfig } from '../config.js';
import { PROVIDER_TOKEN_ENV } from '../config.js';
import { isProviderName, loadProvider, providerNames, type InventoryClaims, type Provider } from '../providers/index.js';
import { providerToken } from '../secrets.js';
import { GaxxError, makeDirs, releaseClaim, takeClaim } from '../../proto/index.js';
import { join } from 'node:path';
import { listFleets, readFleet, type FleetState } from '../state.js';

/** Options only some providers take: the ssh inventory file and the fleet state it was claimed in. */
function providerOptions(
  config: GaxxConfig,
  name: string,
  o: { inventory?: string | undefined; state?: FleetState | undefined; checkKeys?: boolean },
): Record<string, unknown> | undefined {
  if (name === 'local')
    return {
      caDir: config.paths.caDir,
      stateDir: join(config.paths.stateDir, 'local'),
      port: config.agent.port,
      // Local agents run as the operator when gaxx is not root: their tasks must not see its keys.
      hideFromTasks: [config.paths.configDir, config.paths.stateDir],
    };
  if (name !== 'ssh') return undefined;
  const inventory = o.inventory ?? o.state?.settings.inventory;
  const claimed = Object.fromEntries((o.state?.hosts ?? []).flatMap((h) => (h.id ? [[h.id, o.state?.fleet as string]] : [])));
  return { ...(inventory ? { inventory } : {}), claimed, hostClaims: inventoryClaims(config), ...(o.checkKeys ? { checkKeys: true } : {}) };
}

/**
 * Which fleet of this home has an inventory host: a host is one fleet's (a second fleet's
 * bootstrap of it would replace the first one's agent, whose fleet then finds it gone). An ssh
 * fleet whose state names the host has it (one spawned before claims were kept too; the states
 * are read at the first take, a spawn's); else the claim in `<state>/inventory-hosts/` (a claim
 * file per host naming its fleet, claim-file.ts), which holds while its fleet's state exists (a
 * spawn records the fleet before it takes a host), for two spawns at once; `gaxx delete`
 * releases it.
 */
function inventoryClaims(config: GaxxConfig): InventoryClaims {
  let named: Map<string, string> | undefined;
  const namedBy = (id: string): string | undefined => {
    named ??= new Map(
      listFleets(config.paths.fleetsDir)
        .filter((f) => f.provider === 'ssh')
        .flatMap((f) => f.hosts.flatMap((h) => (h.id ? [[h.id, f.fleet] as const] : []))),
    );
    return named.get(id);
  };
  const dir = join(config.paths.stateDir, 'inventory-hosts');
  const pathOf = (id: string): string => join(dir, `${id.replace(/[^A-Za-z0-9.:_-]/g, '_')}.claim`);
  const fleetOf = (text: string): string => text.trim();
  const exists = (fleet: string): boolean => {
    try {
      return readFleet(config.paths.fleetsDir, fleet) !== undefined;
    } catch {
      return true; // a damaged state is still a fleet's
    }
  };
  return {
    take(id, fleet) {
      const other = namedBy(id);
      if (other !== undefined && other !== fleet) return other;
      makeDirs(dir, { mode: 0o700 });
      const got = takeClaim(pathOf(id), `${fleet}\n`, (held) => fleetOf(held) !== fleet && exists(fleetOf(held)));
      return got.taken ? undefined : got.held === undefined ? 'another fleet' : fleetOf(got.held);
    },
    release(id, fleet) {
      releaseClaim(pathOf(id), (held) => fleetOf(held) === fleet);
    },
  };
}

/**
 * Loads provider `name` configured from `config` (and, for ssh, its inventory; with `checkKeys`,
 * every inventory entry's key file is checked as it is read). USAGE for an unknown name.
 */
export async function providerFor(
  config: GaxxConfig,
  name: string,
  extra: { inventory?: string | undefined; state?: FleetState | undefined; checkKeys?: boolean } = {},
): Promise<Provider> {
  if (!isProviderName(name)) throw new GaxxError('USAGE', `unknown provider '${name}' (known: ${providerNames().join(', ')})`);
  const p = config.providers[name];
  const envName = PROVIDER_TOKEN_ENV[name];
  const token = envName ? providerToken(config.paths.configDir, envName, p?.envToken) : undefined;
  if (envName && !token) {
    throw new GaxxError('UNAUTHENTICATED', `no ${name} API token: set ${envName} in the environment or in ${config.paths.configDir}/secrets.env (mode 0600)`);
  }
  const defaults = Object.fromEntries(Object.entries({ region: p?.region, type: p?.type, image: p?.image }).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
  const options = providerOptions(config, name, extra);
  return loadProvider(name, { token: token?.reveal(), baseUrl: p?.url, defaults, ...(options ? { options } : {}) });
}
