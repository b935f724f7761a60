/**
 * Certificate requests for renewal without moving private keys: the agent makes a key and a
 * PKCS#10 request for it; the CA takes only the public key out of a request whose signature
 * verifies (identity and hosts come from the CA's register, never from the request).
 *
 * Requests are built like certificates (der.ts): forge lays out the CertificationRequestInfo,
 * Node's key and signature go in, so EC keys work. They are checked with Node's crypto, which
 * accepts both the EC requests of current agents and the RSA requests of agents made before.
 */
import { createPrivateKey, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type forge from 'node-forge';
import { GaxxError, isGaxxError } from '../proto/index.js';
import { certifiableKey, derContents, derElements, derToPem, placeholderKey, signedDer, spkiAsn1, type Asn1 } from './der.js';
import { loadForge } from './forge.js';

/** DER of the signature algorithm OIDs a request may use, by key type. */
const SIGNATURE_OID_DER: Record<string, string> = {
  rsa: '06092a864886f70d01010b', // sha256WithRSAEncryption
  ec: '06082a8648ce3d040302', // ecdsa-with-SHA256
};

/** A PEM certificate request for `privateKeyPem` (subject CN `cn`, informational only). */
export async function createCsr(privateKeyPem: string, publicKeyPem: string, cn: string): Promise<string> {
  const f = await loadForge();
  const csr = f.pki.createCertificationRequest();
  csr.publicKey = placeholderKey(f);
  csr.setSubject([{ name: 'commonName', value: cn.slice(0, 64) }]);
  const getCri = (f.pki as unknown as { getCertificationRequestInfo(c: forge.pki.CertificateSigningRequest): Asn1 }).getCertificationRequestInfo;
  const cri = getCri(csr);
  // CertificationRequestInfo: version, subject, subjectPKInfo, attributes.
  (cri.value as Asn1[])[2] = spkiAsn1(f, certifiableKey(publicKeyPem));
  return derToPem('CERTIFICATE REQUEST', signedDer(f, cri, createPrivateKey(privateKeyPem)));
}

/** The DER inside a PEM certificate request; CERT_INVALID when there is none. */
function csrDer(csrPem: string): Buffer {
  const m = /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (?:NEW )?CERTIFICATE REQUEST-----/.exec(csrPem);
  if (!m) throw new GaxxError('CERT_INVALID', 'certificate request is malformed: no PEM CERTIFICATE REQUEST block');
  return Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64');
}

/** The request's parts: the signed bytes, the subject key, the algorithm OID (DER) and the signature. */
function csrParts(der: Buffer): { cri: Buffer; key: KeyObject; algOid: Buffer; signature: Buffer } {
  const [cri, alg, sig, ...rest] = derElements(der);
  if (!cri || !alg || !sig || rest.length > 0 || sig[0] !== 0x03) throw new GaxxError('CERT_INVALID', 'certificate request is malformed');
  const spki = derElements(cri)[2];
  const algOid = derElements(alg)[0];
  const bits = derContents(sig);
  if (!spki || !algOid || bits[0] !== 0) throw new GaxxError('CERT_INVALID', 'certificate request is malformed');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (e) {
    throw new GaxxError('CERT_INVALID', 'certificate request holds no usable public key', { cause: e });
  }
  return { cri, key, algOid, signature: bits.subarray(1) };
}

/** The public key (PEM) of a request whose self-signature verifies; CERT_INVALID otherwise. */
export async function publicKeyOfCsr(csrPem: string): Promise<string> {
  let parts: ReturnType<typeof csrParts>;
  try {
    parts = csrParts(csrDer(csrPem));
  } catch (e) {
    if (isGaxxError(e)) throw e;
    throw new GaxxError('CERT_INVALID', 'certificate request is malformed', { cause: e });
  }
  const key = certifiableKey(parts.key);
  const expected = SIGNATURE_OID_DER[key.asymmetricKeyType ?? ''];
  if (expected === undefined || parts.algOid.toString('hex') !== expected) {
    throw new GaxxError('CERT_INVALID', 'certificate request is not signed with SHA-256 by its own key type');
  }
  let ok = false;
  try {
    ok = verify('sha256', parts.cri, key, parts.signature);
  } catch {
    // A malformed signature (bad DER for ECDSA, wrong length for RSA) is simply not valid.
  }
  if (!ok) throw new GaxxError('CERT_INVALID', 'certificate request signature does not verify');
  return key.export({ type: 'spki', format: 'pem' }) as string;
}
