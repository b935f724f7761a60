/**
 * Forgetting a fleet on this controller once its machines are gone (destroyed, or released for an
 * inventory): its agents' certificates revoked, its entries in gaxx's known_hosts and its state
 * removed, and its registration (agents, TTL, budget) taken out of the scheduler's directory.
 * The one clean-up of `gaxx delete` and of a spawn that ends without any host.
 */
import { FleetCa } from '../../certs/index.js';
import { GaxxError, isGaxxError } from '../../proto/index.js';
import type { GaxxConfig } from '../config.js';
import { removeFleet } from '../state.js';
import { fleetKnownHosts } from './bootstrap-step.js';
import { unpublishFleet } from './fleet-directory.js';

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

/** What forgetting a fleet did. */
export interface ForgetReport {
  revokedCerts: string[];
  knownHostsRemoved: number;
  /** Why the fleet could not be unregistered from Redis (everything else was done). */
  unregisterError?: GaxxError | undefined;
}

/**
 * Revokes the fleet's certificates, removes its known_hosts entries and its state, then, when
 * it may be `registered`, unregisters it. Redis comes last and its failure is returned, not
 * thrown: what is local is done whether or not Redis answers.
 */
export async function forgetFleet(config: GaxxConfig, fleet: string, o: { registered: boolean }): Promise<ForgetReport> {
  const revokedCerts = revokeFleetCerts(config.paths.caDir, fleet);
  const knownHostsRemoved = fleetKnownHosts(config).removeFleet(fleet);
  removeFleet(config.paths.fleetsDir, fleet);
  let unregisterError: GaxxError | undefined;
  if (o.registered) {
    unregisterError = await unpublishFleet(config, fleet).then(
      () => undefined,
      (e: unknown) => (isGaxxError(e) ? e : new GaxxError('REDIS_UNAVAILABLE', `unregistering fleet ${fleet} failed: ${String(e)}`, { cause: e })),
    );
  }
  return { revokedCerts, knownHostsRemoved, unregisterError };
}

/** The line that says what to run once Redis is back. */
export function unregisterHint(fleet: string, provider: string, e: GaxxError): string {
  return `fleet ${fleet} is not unregistered from Redis (${e.message} [${e.code}]): once Redis answers, run 'gaxx delete ${fleet} --provider ${provider} --yes'`;
}
