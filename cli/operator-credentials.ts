/**
 * The operator's own certificate (`<config>/operator`): `gaxx exec` authenticates with it, and
 * `gaxx run` signs every queued task with its key, so an agent runs queued work only as an
 * operator signed it (the queue itself is not trusted).
 */
import { join } from 'node:path';
import { REVOCATION_FILE, loadCertDir, ownCertificateRevoked, withCaRevocations, type CertBundle } from '../certs/index.js';
import { GaxxError, createTaskSigner, isGaxxError, type TaskSigner } from '../proto/index.js';
import { noOperatorCertificate } from './paths.js';

/** What to do about a revoked or expired operator certificate (gaxx issues it only in `gaxx init`). */
const RENEW = "run 'gaxx init': it issues a new operator certificate under the same name";

/**
 * The operator's cert bundle; NOT_FOUND says to run `gaxx init` first. `caDir`: the CA whose
 * signed revoked.json agents are also refused by (certs withCaRevocations), so a `gaxx certs
 * revoke` holds for the next command; undefined when the bundle is not used to reach agents.
 * The operator certificate itself is judged by that list too (its dir's revoked.json is a copy
 * from `gaxx init` that never learns of a revocation): a revoked one is refused here, saying
 * what to do, instead of by every agent afterwards.
 */
export function operatorCredentials(dir: string, caDir: string | undefined): CertBundle {
  let b: CertBundle;
  try {
    b = withCaRevocations(loadCertDir(dir), caDir);
  } catch (e) {
    if (isGaxxError(e, 'NOT_FOUND')) throw noOperatorCertificate(dir, e);
    if (isGaxxError(e, 'CERT_REVOKED') || isGaxxError(e, 'CERT_EXPIRED'))
      throw new GaxxError(e.code, `the operator certificate in ${dir} is not usable: ${e.message}: ${RENEW}`, { cause: e });
    throw e;
  }
  if (caDir !== undefined && ownCertificateRevoked(b))
    throw new GaxxError('CERT_REVOKED', `the operator certificate ${b.summary.serial} in ${dir} is revoked (${join(caDir, REVOCATION_FILE)}): ${RENEW}`);
  return { ...b, revokedHint: RENEW };
}

/** The signer of queued tasks: the operator certificate in `dir` and its key (refused when the CA in `caDir` revoked it). */
export function operatorSigner(dir: string, caDir: string | undefined): TaskSigner {
  const b = operatorCredentials(dir, caDir);
  return createTaskSigner(b.certPem, b.keyPem);
}
