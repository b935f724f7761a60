/**
 * The operator's own certificate (`<config>/operator`): `gaxx exec` authenticates with it, and
 * `gaxx run` signs every queued task with its key, so an agent runs queued work only as an
 * operator signed it (the queue itself is not trusted).
 */
import { loadCertDir, type CertBundle } from '../certs/index.js';
import { createTaskSigner, isGaxxError, type TaskSigner } from '../proto/index.js';
import { noOperatorCertificate } from './paths.js';

/** The operator's cert bundle; NOT_FOUND says to run `gaxx init` first. */
export function operatorCredentials(dir: string): CertBundle {
  try {
    return loadCertDir(dir);
  } catch (e) {
    if (isGaxxError(e, 'NOT_FOUND')) throw noOperatorCertificate(dir, e);
    throw e;
  }
}

/** The signer of queued tasks: the operator certificate in `dir` and its key. */
export function operatorSigner(dir: string): TaskSigner {
  const b = operatorCredentials(dir);
  return createTaskSigner(b.certPem, b.keyPem);
}
