/**
 * The operator's own certificate (`<config>/operator`): `gaxx exec` authenticates with it, and
 * `gaxx run` signs every queued task with its key, so an agent runs queued work only as an
 * operator signed it (the queue itself is not trusted).
 */
import { loadCertDir, withCaRevocations, type CertBundle } from '../certs/index.js';
import { createTaskSigner, isGaxxError, type TaskSigner } from '../proto/index.js';
import { noOperatorCertificate } from './paths.js';

/**
 * The operator's cert bundle; NOT_FOUND says to run `gaxx init` first. `caDir`: the CA whose
 * signed revoked.json agents are also refused by (certs withCaRevocations), so a `gaxx certs
 * revoke` holds for the next command; undefined when the bundle is not used to reach agents.
 */
export function operatorCredentials(dir: string, caDir: string | undefined): CertBundle {
  try {
    return withCaRevocations(loadCertDir(dir), caDir);
  } catch (e) {
    if (isGaxxError(e, 'NOT_FOUND')) throw noOperatorCertificate(dir, e);
    throw e;
  }
}

/** The signer of queued tasks: the operator certificate in `dir` and its key. */
export function operatorSigner(dir: string): TaskSigner {
  const b = operatorCredentials(dir, undefined);
  return createTaskSigner(b.certPem, b.keyPem);
}
