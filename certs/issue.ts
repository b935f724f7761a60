/**
 * Building X.509 certificates: node-forge lays out the TBSCertificate (names, validity,
 * extensions), the subject's SubjectPublicKeyInfo comes from Node's crypto (EC or RSA; forge
 * knows only RSA) and Node's crypto signs (forge's pure-JS RSA takes ~100 ms per signature).
 * Only issuing happens here; verification is Node's TLS and crypto.X509Certificate (verify.ts).
 */
import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { GaxxError } from '../proto/index.js';
import { identityUri, normalizeSerial, type Identity } from './identity.js';
import type forge from 'node-forge';
import { certifiableKey, derToPem, placeholderKey, signatureOid, signedDer, spkiAsn1, subjectKeyId, algorithmIdentifier, type Asn1 } from './der.js';
import { loadForge, type Forge } from './forge.js';
import { generateEcKeyPair, generateRsaKeyPair } from './keys.js';

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

/** The parts of forge's certificate API its typings leave out. */
type ForgeCertificate = forge.pki.Certificate & { siginfo: { algorithmOid: string | null } };

/**
 * The PEM of a certificate forge has laid out, for the key `subjectSpki` holds, signed by
 * `signerKey`. forge builds the TBSCertificate around a placeholder key; the real
 * SubjectPublicKeyInfo and the signature AlgorithmIdentifier are spliced in before Node signs.
 */
function finishCertificate(f: Forge, cert: ForgeCertificate, subjectSpki: Asn1, signerKey: KeyObject): string {
  const oid = signatureOid(signerKey);
  cert.siginfo.algorithmOid = oid;
  const getTbs = (f.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): Asn1 }).getTBSCertificate;
  const tbs = getTbs(cert);
  const parts = tbs.value as Asn1[];
  // TBSCertificate: version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, extensions.
  parts[2] = algorithmIdentifier(f, oid);
  parts[6] = subjectSpki;
  return derToPem('CERTIFICATE', signedDer(f, tbs, signerKey));
}

/** The SKI extension for `spki` (forge's own needs an RSA key). */
function skiExtension(f: Forge, spki: Asn1): { name: string; value: Asn1 } {
  return { name: 'subjectKeyIdentifier', value: f.asn1.create(f.asn1.Class.UNIVERSAL, f.asn1.Type.OCTETSTRING, false, subjectKeyId(spki)) };
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

/**
 * `d` without its milliseconds: a certificate's validity holds whole seconds, and the times
 * returned with it (and recorded in the CA's register) must be the certificate's own.
 */
function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** Creates a self-signed CA certificate and key (RSA; see keys.ts). */
export async function createCaCertificate(commonName: string, validityMs = DEFAULT_CA_VALIDITY_MS): Promise<IssuedCertificate> {
  const [{ privateKeyPem, publicKeyPem }, f] = await Promise.all([generateRsaKeyPair(), loadForge()]);
  const spki = spkiAsn1(f, certifiableKey(publicKeyPem));
  const cert = f.pki.createCertificate() as ForgeCertificate;
  cert.publicKey = placeholderKey(f);
  cert.serialNumber = newSerialHex();
  const notBefore = wholeSeconds(new Date(Date.now() - BACKDATE_MS));
  const notAfter = wholeSeconds(new Date(Date.now() + validityMs));
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
    skiExtension(f, spki),
  ]);
  const certPem = finishCertificate(f, cert, spki, createPrivateKey(privateKeyPem));
  return { certPem, keyPem: privateKeyPem, serial: normalizeSerial(cert.serialNumber), notBefore, notAfter };
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
   * The subject's public key (PEM SPKI, EC P-256/P-384 or RSA >= 2048) from a verified
   * certificate request or the host that made it: no key pair is made and the result's keyPem is
   * empty (the key stays with its holder).
   */
  publicKeyPem?: string;
  /** The kind of key made when no publicKeyPem is given: 'ec' (P-256, the default) or 'rsa' (2048). */
  keyType?: 'ec' | 'rsa';
  /** Marks the leaf CA:TRUE; only for tests of the refusal of CA certificates as clients. */
  testOnlyCaTrue?: boolean;
}

/** The leaf's key: the given public key, or a new pair of `opts.keyType`. */
async function leafKey(opts: LeafOptions): Promise<{ privateKeyPem: string; publicKey: KeyObject }> {
  if (opts.publicKeyPem !== undefined) return { privateKeyPem: '', publicKey: certifiableKey(opts.publicKeyPem) };
  const made = opts.keyType === 'rsa' ? await generateRsaKeyPair() : await generateEcKeyPair();
  return { privateKeyPem: made.privateKeyPem, publicKey: certifiableKey(made.publicKeyPem) };
}

/** The leaf's extensions: an EC key signs only (ECDH is ephemeral in TLS), an RSA key may also encipher. */
function leafExtensions(f: Forge, opts: LeafOptions, spki: Asn1, caSpki: Asn1, ec: boolean): object[] {
  const altNames: Array<{ type: number; value?: string; ip?: string }> = [{ type: 6, value: identityUri(opts.identity) }];
  for (const u of opts.extraUris ?? []) altNames.push({ type: 6, value: u });
  for (const h of opts.hosts ?? []) altNames.push(isIP(h) ? { type: 7, ip: h } : { type: 2, value: h });
  return [
    { name: 'basicConstraints', cA: opts.testOnlyCaTrue === true, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: !ec, critical: true },
    { name: 'extKeyUsage', serverAuth: opts.identity.role === 'agent', clientAuth: true },
    { name: 'subjectAltName', altNames },
    skiExtension(f, spki),
    { name: 'authorityKeyIdentifier', keyIdentifier: subjectKeyId(caSpki) },
  ];
}

/** Issues a leaf (cA=false, digitalSignature, no keyCertSign) signed by `ca`; its key is EC P-256 unless told otherwise. */
export async function issueLeafCertificate(ca: SignerKey, opts: LeafOptions): Promise<IssuedCertificate> {
  const [{ privateKeyPem, publicKey }, f] = await Promise.all([leafKey(opts), loadForge()]);
  const notBefore = wholeSeconds(opts.notBefore ?? new Date(Date.now() - BACKDATE_MS));
  const notAfter = wholeSeconds(opts.notAfter ?? new Date(Date.now() + (opts.validityMs ?? DEFAULT_LEAF_VALIDITY_MS)));
  if (notAfter <= notBefore) throw new GaxxError('INVALID_ARGUMENT', 'certificate validity must be positive');
  const spki = spkiAsn1(f, publicKey);
  const caSpki = spkiAsn1(f, new X509Certificate(ca.certPem).publicKey);
  const cert = f.pki.createCertificate() as ForgeCertificate;
  cert.publicKey = placeholderKey(f);
  cert.serialNumber = newSerialHex();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  const cn = opts.identity.role === 'agent' ? `${opts.identity.fleet}/${opts.identity.host}` : opts.identity.name;
  cert.setSubject([
    { name: 'commonName', value: `${opts.identity.role}:${cn}` },
    { name: 'organizationName', value: 'gaxx' },
  ]);
  cert.setIssuer(f.pki.certificateFromPem(ca.certPem).subject.attributes);
  cert.setExtensions(leafExtensions(f, opts, spki, caSpki, publicKey.asymmetricKeyType === 'ec'));
  const certPem = finishCertificate(f, cert, spki, createPrivateKey(ca.keyPem));
  return { certPem, keyPem: privateKeyPem, serial: normalizeSerial(cert.serialNumber), notBefore, notAfter };
}
