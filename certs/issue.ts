/**
 * Building X.509 certificates with node-forge and signing them with Node's native RSA. Only
 * issuing happens here; verification is Node's TLS and crypto.X509Certificate (see verify.ts).
 */
import { constants, createPrivateKey, privateEncrypt, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { GaxxError } from '../proto/index.js';
import { identityUri, normalizeSerial, type Identity } from './identity.js';
import type forge from 'node-forge';
import { loadForge } from './forge.js';
import { generateRsaKeyPair } from './keys.js';

/** Default leaf lifetime: short, since rotation is cheap. */
export const DEFAULT_LEAF_VALIDITY_MS = 30 * 24 * 3600 * 1000;
/** Default CA lifetime. */
export const DEFAULT_CA_VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;
/** Leaves start this long before now, to tolerate clock skew between hosts. */
const BACKDATE_MS = 5 * 60 * 1000;

/** A new positive 128-bit serial as hex. */
function newSerialHex(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x10; // positive, and no leading zero byte
  return b.toString('hex');
}

/** DER prefix of a DigestInfo for SHA-256 (RFC 8017, 9.2 note 1): the hash follows it. */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * The key forge's cert.sign() calls: RSASSA-PKCS1-v1_5 over forge's SHA-256 of the
 * TBSCertificate, computed by Node's native RSA. forge's own (pure JS) RSA takes ~100 ms per
 * signature on the main thread, which serialised the certificates of a whole fleet's bootstrap.
 */
function nativeSigner(keyPem: string): { sign(md: forge.md.MessageDigest): string } {
  const key = createPrivateKey(keyPem);
  return {
    sign(md) {
      if (md.algorithm !== 'sha256') throw new GaxxError('INTERNAL', `certificates are signed with sha256, not ${md.algorithm}`);
      const digestInfo = Buffer.concat([SHA256_DIGEST_INFO, Buffer.from(md.digest().getBytes(), 'binary')]);
      return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, digestInfo).toString('binary');
    },
  };
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  /** Upper-case hex, as crypto.X509Certificate#serialNumber reports it. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export interface SignerKey {
  certPem: string;
  keyPem: string;
}

/** Creates a self-signed CA certificate and key. */
export async function createCaCertificate(commonName: string, validityMs = DEFAULT_CA_VALIDITY_MS): Promise<IssuedCertificate> {
  const [{ privateKeyPem, publicKeyPem }, forge] = await Promise.all([generateRsaKeyPair(), loadForge()]);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = newSerialHex();
  const notBefore = new Date(Date.now() - BACKDATE_MS);
  const notAfter = new Date(Date.now() + validityMs);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  const subject = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'gaxx' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(nativeSigner(privateKeyPem) as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privateKeyPem, serial: normalizeSerial(cert.serialNumber), notBefore, notAfter };
}

export interface LeafOptions {
  identity: Identity;
  /** DNS names and IP addresses the certificate is valid for (agent certs: the host's). */
  hosts?: string[];
  validityMs?: number;
  /** Overrides for tests of expiry handling. */
  notBefore?: Date;
  notAfter?: Date;
  /** Extra URI SANs; only for tests of the one-URI rule. */
  extraUris?: string[];
  /**
   * The subject's public key (PEM) from a verified certificate request: no key pair is made and
   * the result's keyPem is empty (the key stays with its holder).
   */
  publicKeyPem?: string;
  /** Marks the leaf CA:TRUE; only for tests of the refusal of CA certificates as clients. */
  testOnlyCaTrue?: boolean;
}

/** Issues a leaf (cA=false, digitalSignature, no keyCertSign) signed by `ca`. */
export async function issueLeafCertificate(ca: SignerKey, opts: LeafOptions): Promise<IssuedCertificate> {
  const uri = identityUri(opts.identity);
  const { privateKeyPem, publicKeyPem } = opts.publicKeyPem ? { privateKeyPem: '', publicKeyPem: opts.publicKeyPem } : await generateRsaKeyPair();
  const forge = await loadForge();
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = newSerialHex();
  const notBefore = opts.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  const notAfter = opts.notAfter ?? new Date(Date.now() + (opts.validityMs ?? DEFAULT_LEAF_VALIDITY_MS));
  if (notAfter <= notBefore) throw new GaxxError('INVALID_ARGUMENT', 'certificate validity must be positive');
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  const cn = opts.identity.role === 'agent' ? `${opts.identity.fleet}/${opts.identity.host}` : opts.identity.name;
  cert.setSubject([
    { name: 'commonName', value: `${opts.identity.role}:${cn}` },
    { name: 'organizationName', value: 'gaxx' },
  ]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames: Array<{ type: number; value?: string; ip?: string }> = [{ type: 6, value: uri }];
  for (const u of opts.extraUris ?? []) altNames.push({ type: 6, value: u });
  for (const h of opts.hosts ?? []) altNames.push(isIP(h) ? { type: 7, ip: h } : { type: 2, value: h });
  const isAgent = opts.identity.role === 'agent';
  cert.setExtensions([
    { name: 'basicConstraints', cA: opts.testOnlyCaTrue === true, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: isAgent, clientAuth: true },
    { name: 'subjectAltName', altNames },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(nativeSigner(ca.keyPem) as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privateKeyPem, serial: normalizeSerial(cert.serialNumber), notBefore, notAfter };
}
