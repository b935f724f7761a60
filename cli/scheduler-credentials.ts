/**
 * The certificate queued work reaches agents with. `gaxx run` and `gaxx scheduler` use a
 * scheduler-role client certificate (`spiffe://gaxx/scheduler/local`) kept in
 * `<state>/scheduler/certs`, issued from this installation's CA on first use and re-issued when
 * it is past 2/3 of its lifetime. The operator certificate is kept for direct `gaxx exec`, so an
 * agent's audit log tells queued work from interactive commands. A scheduler on a machine
 * without the CA is given a cert dir instead (`gaxx scheduler --certs DIR`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CERT_FILE, FleetCa, loadCertDir, renewalDue, writeCertDir, type CertBundle } from '../certs/index.js';
import { GaxxError, isGaxxError } from '../proto/index.js';
import type { GaxxPaths } from './paths.js';

/** Where the local scheduler certificate lives. */
export function schedulerCertDir(paths: GaxxPaths): string {
  return join(paths.stateDir, 'scheduler', 'certs');
}

/** The scheduler certificate: `dir` when given, else the local one (issued when missing or due). */
export async function schedulerCredentials(paths: GaxxPaths, dir?: string): Promise<CertBundle> {
  if (dir) return loadCertDir(dir);
  const local = schedulerCertDir(paths);
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
    if (isGaxxError(e, 'NOT_FOUND')) throw new GaxxError('NOT_FOUND', `no CA in ${paths.caDir} to issue the scheduler certificate: run 'gaxx init' first`, { cause: e });
    throw e;
  }
  const made = await ca.issue({ identity: { role: 'scheduler', name: 'local' } });
  writeCertDir(local, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem, revokedText: ca.revocationListText() });
  return loadCertDir(local);
}
