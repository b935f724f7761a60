/**
 * Provider name -> lazily loaded factory, so `gaxx ls` on a linode fleet never loads the vultr
 * module (and the CLI start stays fast). Other backends add one line here.
 */
import { GaxxError } from '../../proto/index.js';
import type { Provider, ProviderSettings } from './types.js';

type Loader = () => Promise<(settings: ProviderSettings) => Provider>;

// One line per backend, e.g. `linode: async () => (await import('./linode.js')).createLinodeProvider,`
const LOADERS: Record<string, Loader> = {
  linode: async () => (await import('./linode.js')).createLinodeProvider,
  vultr: async () => (await import('./vultr.js')).createVultrProvider,
  ssh: async () => (await import('./ssh.js')).createSshProvider,
  local: async () => (await import('./local.js')).createLocalProvider,
};

/**
 * Providers whose list() answers from this machine alone (no network, no token: the local
 * provider checks its agents' pids), so `gaxx ls` can show what became of each host.
 */
const REPORTS_LOCALLY = new Set(['local']);

/** Whether provider `name` reports its instances' states without the network (see REPORTS_LOCALLY). */
export function reportsLocally(name: string): boolean {
  return REPORTS_LOCALLY.has(name);
}

/** Names of every known provider, for help texts and validation. */
export function providerNames(): string[] {
  return Object.keys(LOADERS).sort();
}

/** Whether `name` is a known provider. */
export function isProviderName(name: string): boolean {
  return Object.hasOwn(LOADERS, name);
}

/** Loads provider `name` and builds it. USAGE for an unknown name. */
export async function loadProvider(name: string, settings: ProviderSettings): Promise<Provider> {
  const load = LOADERS[name];
  if (!load) throw new GaxxError('USAGE', `unknown provider '${name}' (known: ${providerNames().join(', ')})`);
  const factory = await load();
  return factory(settings);
}
