/** Certificate checks with Node's crypto.X509Certificate (never forge). */
import { X509Certificate } from 'node:crypto';
import { GaxxError } from '../proto/index.js';
import { claimsCa } from './ca-flag.js';
import { identityFromSan, normalizeSerial, type Identity } from './identity.js';

export interface CertSummary {
  serial: string;
  identity: Identity;
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
  dns: string[];
  ips: string[];
}

/** Parses a PEM certificate; CERT_INVALID when it is not one. */
export function parseCertificate(pem: string | Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new GaxxError('CERT_INVALID', 'not a PEM certificate', { cause: e });
  }
}

/** Certificates parsed lately, by PEM text: signed work carries its signer's on every task. */
const parsed = new Map<string, X509Certificate>();
const PARSED_MAX = 64;

/**
 * parseCertificate for a PEM that comes again and again (a signer's certificate on every task
 * of a run): parsed once. A certificate is immutable; every check (chain, validity, revocation,
 * role) is still made by the caller on each use.
 */
export function parseCertificateCached(pem: string): X509Certificate {
  const known = parsed.get(pem);
  if (known) return known;
  const cert = parseCertificate(pem);
  if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value as string);
  parsed.set(pem, cert);
  return cert;
}

/** Splits a PEM bundle into its certificates. */
export function splitPemBundle(pem: string | Buffer): string[] {
  return pem.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** Serial, identity, validity and names of a leaf. */
export function summarizeCertificate(cert: X509Certificate): CertSummary {
  const san = cert.subjectAltName ?? '';
  return {
    serial: normalizeSerial(cert.serialNumber),
    identity: identityFromSan(san),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    fingerprint256: cert.fingerprint256,
    dns: [...san.matchAll(/DNS:([^,\s]+)/g)].map((m) => m[1] as string),
    ips: [...san.matchAll(/IP Address:([^,\s]+)/g)].map((m) => m[1] as string),
  };
}

/**
 * Checks that `leaf` was signed by one of `cas` and is valid at `now`: CERT_EXPIRED outside its
 * validity window, CERT_INVALID when no CA signed it or it is itself a CA.
 */
export function verifyLeaf(leaf: X509Certificate, cas: X509Certificate[], now = new Date()): void {
  // OpenSSL's `ca` is true only with keyCertSign in keyUsage: CA:TRUE alone is read from the DER.
  if (leaf.ca || claimsCa(leaf.raw)) throw new GaxxError('CERT_INVALID', 'a CA certificate cannot be used as a leaf');
  if (now < new Date(leaf.validFrom)) throw new GaxxError('CERT_EXPIRED', `certificate is not valid before ${leaf.validFrom}`);
  if (now > new Date(leaf.validTo)) throw new GaxxError('CERT_EXPIRED', `certificate expired at ${leaf.validTo}`);
  const signer = cas.find((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  if (!signer) throw new GaxxError('CERT_INVALID', 'certificate is not signed by the fleet CA');
  if (now > new Date(signer.validTo)) throw new GaxxError('CERT_EXPIRED', `the CA expired at ${signer.validTo}`);
}

/** True when a certificate has lived past `fraction` of its lifetime (renewal is due). */
export function renewalDue(cert: X509Certificate, now = Date.now(), fraction = 2 / 3): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return now >= from + (to - from) * fraction;
}
