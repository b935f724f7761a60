/**
 * DER pieces for certificates and requests whose subject key node-forge cannot represent: forge
 * knows only RSA keys, so it builds the to-be-signed structure around a placeholder key, and the
 * real SubjectPublicKeyInfo (from Node's crypto, any key type) is spliced in. Signatures are
 * Node's: RSASSA-PKCS1-v1_5 or ECDSA (DER), both over SHA-256.
 */
import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import type forge from 'node-forge';
import { GaxxError } from '../proto/index.js';
import type { Forge } from './forge.js';

/** forge's ASN.1 node. */
export type Asn1 = forge.asn1.Asn1;

/** sha256WithRSAEncryption (RFC 4055). */
export const SHA256_WITH_RSA_OID = '1.2.840.113549.1.1.11';
/** ecdsa-with-SHA256 (RFC 5758). */
export const ECDSA_WITH_SHA256_OID = '1.2.840.10045.4.3.2';

/** EC curves gaxx certifies (Node's names). */
const CURVES = new Set(['prime256v1', 'secp384r1']);

/**
 * A public key gaxx is willing to certify: EC on P-256 or P-384, or RSA of at least 2048 bits.
 * CERT_INVALID otherwise (a host or a request could offer a weak key).
 */
export function certifiableKey(pem: string | Buffer | KeyObject): KeyObject {
  let key: KeyObject;
  try {
    key = typeof pem === 'string' || Buffer.isBuffer(pem) ? createPublicKey(pem) : pem;
  } catch (e) {
    throw new GaxxError('CERT_INVALID', 'not a PEM public key', { cause: e });
  }
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' && (d.modulusLength ?? 0) >= 2048) return key;
  if (key.asymmetricKeyType === 'ec' && CURVES.has(d.namedCurve ?? '')) return key;
  const what = key.asymmetricKeyType === 'ec' ? `EC ${d.namedCurve ?? '?'}` : `${key.asymmetricKeyType ?? '?'} ${d.modulusLength ?? ''}`.trim();
  throw new GaxxError('CERT_INVALID', `a ${what} key cannot be certified: gaxx certifies EC P-256 or P-384 and RSA >= 2048 keys`);
}

/** The DER bytes of a forge ASN.1 node. */
export function toDer(f: Forge, node: Asn1): Buffer {
  return Buffer.from(f.asn1.toDer(node).getBytes(), 'binary');
}

/** `key`'s SubjectPublicKeyInfo as forge ASN.1, its BIT STRING kept as raw bytes. */
export function spkiAsn1(f: Forge, key: KeyObject): Asn1 {
  const der = key.export({ type: 'spki', format: 'der' });
  // forge's typings omit the options; without decodeBitStrings: false it would try to parse the key bits as ASN.1.
  const asn1 = f.asn1 as unknown as { fromDer(b: forge.util.ByteStringBuffer, o: { decodeBitStrings: boolean }): Asn1 };
  return asn1.fromDer(f.util.createBuffer(der.toString('binary')), { decodeBitStrings: false });
}

/**
 * The key identifier of a SubjectPublicKeyInfo, RFC 5280 4.2.1.2 method 1: SHA-1 of the
 * subjectPublicKey BIT STRING's bits (without its unused-bits octet), as a binary string.
 */
export function subjectKeyId(spki: Asn1): string {
  const bits = (spki.value as Asn1[])[1]?.value;
  if (typeof bits !== 'string') throw new GaxxError('INTERNAL', 'SubjectPublicKeyInfo without a subjectPublicKey');
  return createHash('sha1')
    .update(Buffer.from(bits.slice(1), 'binary'))
    .digest()
    .toString('binary');
}

/** A stand-in RSA key for forge to build around; spliceSpki replaces it before signing. */
export function placeholderKey(f: Forge): forge.pki.rsa.PublicKey {
  return f.pki.setRsaPublicKey(f.jsbn.BigInteger.ONE, f.jsbn.BigInteger.ONE);
}

/** The signature algorithm OID for a SHA-256 signature by `key`. */
export function signatureOid(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return SHA256_WITH_RSA_OID;
  if (key.asymmetricKeyType === 'ec') return ECDSA_WITH_SHA256_OID;
  throw new GaxxError('INTERNAL', `cannot sign certificates with a ${key.asymmetricKeyType ?? '?'} key`);
}

/** AlgorithmIdentifier for `oid`: NULL parameters for RSA (RFC 4055), none for ECDSA (RFC 5758). */
export function algorithmIdentifier(f: Forge, oid: string): Asn1 {
  const { asn1 } = f;
  const parts = [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes())];
  if (oid === SHA256_WITH_RSA_OID) parts.push(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''));
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, parts);
}

/**
 * SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING signature } as DER: the shape of both an X.509
 * Certificate and a PKCS#10 CertificationRequest. `privateKey` signs the DER of `tbs` with SHA-256.
 */
export function signedDer(f: Forge, tbs: Asn1, privateKey: KeyObject): Buffer {
  const { asn1 } = f;
  const signature = sign('sha256', toDer(f, tbs), privateKey);
  const outer = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    algorithmIdentifier(f, signatureOid(privateKey)),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\u0000${signature.toString('binary')}`),
  ]);
  return toDer(f, outer);
}

/** PEM armour for DER bytes. */
export function derToPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The elements of a DER SEQUENCE, each as its complete encoding (tag, length, contents): exact
 * bytes, where re-encoding a parsed structure could differ from what was signed.
 */
export function derElements(der: Buffer): Buffer[] {
  const outer = readTlv(der, 0);
  if (der[0] !== 0x30 || outer.end !== der.length) throw new GaxxError('CERT_INVALID', 'not a DER SEQUENCE');
  const out: Buffer[] = [];
  for (let at = outer.contentStart; at < outer.end;) {
    const el = readTlv(der, at);
    if (el.end > outer.end) throw new GaxxError('CERT_INVALID', 'DER element overruns its SEQUENCE');
    out.push(der.subarray(at, el.end));
    at = el.end;
  }
  return out;
}

/** The contents of one DER element (after its tag and length). */
export function derContents(el: Buffer): Buffer {
  const t = readTlv(el, 0);
  return el.subarray(t.contentStart, t.end);
}

/** Tag-length-value at `at` (single-byte tags, definite lengths up to 4 bytes: all gaxx reads). */
function readTlv(der: Buffer, at: number): { contentStart: number; end: number } {
  if (at + 2 > der.length || ((der[at] as number) & 0x1f) === 0x1f) throw new GaxxError('CERT_INVALID', 'malformed DER');
  const first = der[at + 1] as number;
  let len = first;
  let contentStart = at + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4 || contentStart + n > der.length) throw new GaxxError('CERT_INVALID', 'malformed DER length');
    len = der.readUIntBE(contentStart, n);
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > der.length) throw new GaxxError('CERT_INVALID', 'DER element overruns its input');
  return { contentStart, end };
}
