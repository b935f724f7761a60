/**
 * Certificate requests for renewal without moving private keys: the agent makes a key and a
 * PKCS#10 request for it; the CA takes only the public key out of a request whose signature
 * verifies (identity and hosts come from the CA's register, never from the request).
 */
import type { pki } from 'node-forge';
import { loadForge, type Forge } from './forge.js';
import { GaxxError } from '../proto/index.js';

/** A PEM certificate request for `privateKeyPem` (subject CN `cn`, informational only). */
export async function createCsr(privateKeyPem: string, publicKeyPem: string, cn: string): Promise<string> {
  const forge = await loadForge();
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  csr.setSubject([{ name: 'commonName', value: cn.slice(0, 64) }]);
  csr.sign(forge.pki.privateKeyFromPem(privateKeyPem), forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/** The public key (PEM) of a request whose self-signature verifies; CERT_INVALID otherwise. */
export async function publicKeyOfCsr(csrPem: string): Promise<string> {
  const forge = await loadForge();
  let csr: ReturnType<Forge['pki']['certificationRequestFromPem']>;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (e) {
    throw new GaxxError('CERT_INVALID', 'certificate request is malformed', { cause: e });
  }
  if (!csr.verify() || !csr.publicKey) throw new GaxxError('CERT_INVALID', 'certificate request signature does not verify');
  return forge.pki.publicKeyToPem(csr.publicKey as pki.rsa.PublicKey);
}
