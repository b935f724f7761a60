/** certs: the fleet CA (issue with node-forge), identities, cert dirs, revocation, TLS policy. */
export { FleetCa, CA_CERT_FILE, CA_KEY_FILE, type IssuedRecord } from './ca.js';
export { certBundle, loadCertDir, writeCertDir, CERT_FILE, KEY_FILE, CA_FILE, type CertBundle } from './certdir.js';
export {
  ROLES,
  SPIFFE_PREFIX,
  assertName,
  describeIdentity,
  identityFromSan,
  identityUri,
  normalizeSerial,
  parseIdentityUri,
  subjectAltNames,
  type Identity,
  type Role,
} from './identity.js';
export {
  createCaCertificate,
  issueLeafCertificate,
  DEFAULT_CA_VALIDITY_MS,
  DEFAULT_LEAF_VALIDITY_MS,
  type IssuedCertificate,
  type LeafOptions,
  type SignerKey,
} from './issue.js';
export { generateEcKeyPair, generateRsaKeyPair, type PemKeyPair } from './keys.js';
export { ownCertificateRevoked, revokedPeerSerials, withCaRevocations } from './peer-revocation.js';
export { currentCredentials, type CredentialSource, type Credentials } from './credential-source.js';
export { REVOCATION_FILE, signRevocationList, verifyRevocationList } from './revocation.js';
export { isAtomicTemp, readPrivateFile, readRequiredFile, writeFileAtomic, writeStreamAtomic, type WriteOptions } from './store.js';
export { TLS_CIPHERS, TLS_MIN_VERSION, secureContextOptions, sharedSecureContext } from './tls.js';
export { parseCertificate, parseCertificateCached, renewalDue, splitPemBundle, summarizeCertificate, verifyLeaf, type CertSummary } from './verify.js';
export { createCsr, publicKeyOfCsr } from './csr.js';
export { claimsCa } from './ca-flag.js';
