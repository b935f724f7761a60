/**
 * The certificate queued work reaches agents with. `gaxx run` and `gaxx scheduler` use a
 * scheduler-role client certificate (`spiffe://gaxx/scheduler/local`) kept in
 * `<state>/scheduler/certs`, issued from this installation's CA on first use and re-issued when
 * it is past 2/3 of its lifetime. The operator certificate is kept for direct `gaxx exec`, so an
 * agent's audit log tells queued work from interactive commands. A scheduler on a machine
 * without the CA is given a cert dir instead (`gaxx scheduler --certs DIR`). The dashboard's
 * monitor certificate (`monitor/local`, in `<state>/monitor/certs`) is handled the same way.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CERT_FILE, FleetCa, loadCertDir, renewalDue, withCaRevocations, writeCertDir, type CertBundle } from '../certs/index.js';
import { GaxxError, isGaxxError } from '../proto/index.js';
import type { GaxxPaths } from './paths.js';

/** Where the local scheduler certificate lives. */
export function schedulerCertDir(paths: GaxxPaths): string {
  return join(paths.stateDir, 'scheduler', 'certs');
}

/** Where the local monitor certificate (`gaxx ui`, the daemon's dashboard) lives. */
export function monitorCertDir(paths: GaxxPaths): string {
  return join(paths.stateDir, 'monitor', 'certs');
}

/**
 * The scheduler certificate: `dir` when given, else the local one (issued when missing or due).
 * Agents whose serial the CA in `caDir` (default: this installation's) revoked are refused too.
 */
export async function schedulerCredentials(paths: GaxxPaths, dir?: string, caDir = paths.caDir): Promise<CertBundle> {
  return withCaRevocations(dir ? loadCertDir(dir) : await localCredentials(paths, 'scheduler', schedulerCertDir(paths)), caDir);
}

/**
 * The monitor certificate (`spiffe://gaxx/monitor/local`) the dashboard asks agents with: it may
 * read Info, Health and metrics, and run nothing. `dir` when given, else the local one.
 */
export async function monitorCredentials(paths: GaxxPaths, dir?: string, caDir = paths.caDir): Promise<CertBundle> {
  return withCaRevocations(dir ? loadCertDir(dir) : await localCredentials(paths, 'monitor', monitorCertDir(paths)), caDir);
}

/** A local `<role>/local` certificate in `local`, issued from the CA when missing or due. */
async function localCredentials(paths: GaxxPaths, role: 'scheduler' | 'monitor', local: string): Promise<CertBundle> {
  if (existsSync(join(local, CERT_FILE))) {
    try {
      const b = loadCertDir(local);
      if (!renewalDue(b.cert)) return b;
    } catch (e) {
      if (!isGaxxError(e, 'CERT_EXPIRED') && !isGaxxError(e, 'CERT_REVOKED')) throw e;
    }
  }
  let ca: FleetCa;
  try {
    ca = FleetCa.open(paths.caDir);
  } catch (e) {
    if (isGaxxError(e, 'NOT_FOUND'))
      throw new GaxxError('NOT_FOUND', `no CA in ${paths.caDir} to issue the ${role} certificate: run 'gaxx init' first`, { cause: e });
    throw e;
  }
  const made = await ca.issue({ identity: { role, name: 'local' } });
  writeCertDir(local, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem, revokedText: ca.revocationListText() });
  return loadCertDir(local);
}
