/**
 * What `gaxx spawn` checks before it rents anything: that `gaxx init` was done and its
 * credentials are usable. Without the CA no agent can be certified, without a valid operator
 * certificate no host can be checked for readiness, without gaxx's SSH key no host can be
 * reached: each would surface only after instances were paid for.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { FleetCa, verifyLeaf } from '../../certs/index.js';
import { GaxxError, isGaxxError } from '../../proto/index.js';
import type { GaxxConfig } from '../config.js';
import { operatorCredentials } from '../operator-credentials.js';

/**
 * Throws NOT_FOUND (naming `gaxx init`) when the CA, the operator certificate or the SSH key is
 * missing, and CERT_EXPIRED / CERT_INVALID when the operator certificate is not valid now under
 * the CA. Reads local files only.
 */
export function assertInitialized(config: GaxxConfig, now = new Date()): void {
  const ca = FleetCa.open(config.paths.caDir);
  const operator = operatorCredentials(config.paths.operatorCertDir, config.paths.caDir);
  try {
    verifyLeaf(new X509Certificate(operator.certPem), [new X509Certificate(ca.certPem)], now);
  } catch (e) {
    if (!isGaxxError(e)) throw e;
    throw new GaxxError(e.code, `the operator certificate in ${config.paths.operatorCertDir} is not usable: ${e.message} (run 'gaxx init' again)`, {
      cause: e,
    });
  }
  if (!existsSync(config.paths.sshPrivateKey) || !existsSync(config.paths.sshPublicKey)) {
    throw new GaxxError('NOT_FOUND', `no SSH key at ${config.paths.sshPrivateKey}: run 'gaxx init' first`);
  }
}
