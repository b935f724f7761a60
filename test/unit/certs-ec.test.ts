/**
 * Leaves for EC P-256 keys (the default) and RSA keys, signed by the RSA fleet CA, checked with
 * Node's X509Certificate and with the openssl CLI; the extensions are read from the DER with
 * forge's ASN.1 parser, independently of how they were written. Certificate requests: EC and RSA
 * ones (gaxx's and openssl's) are accepted, tampered or weak ones refused by code.
 */
import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCsr,
  FleetCa,
  type LeafOptions,
  generateEcKeyPair,
  generateRsaKeyPair,
  parseCertificate,
  summarizeCertificate,
  verifyLeaf,
} from '../../certs/index.js';
import { isGaxxError, type ErrorCode } from '../../proto/index.js';

async function codeOf(fn: () => Promise<unknown>): Promise<ErrorCode | 'none'> {
  try {
    await fn();
    return 'none';
  } catch (e) {
    if (isGaxxError(e)) return e.code;
    throw e;
  }
}

/** The certificate's extensions by OID: critical flag and the extnValue bytes. */
function extensions(certPem: string): Map<string, { critical: boolean; value: Buffer }> {
  const der = forge.util.decode64(certPem.replace(/-----[^-]+-----|\s/g, ''));
  const asn1 = forge.asn1 as unknown as { fromDer(b: string, o: { decodeBitStrings: boolean }): forge.asn1.Asn1 };
  const cert = asn1.fromDer(der, { decodeBitStrings: false });
  const tbs = (cert.value as forge.asn1.Asn1[])[0] as forge.asn1.Asn1;
  const wrapper = (tbs.value as forge.asn1.Asn1[]).find((n) => n.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && n.type === 3);
  const out = new Map<string, { critical: boolean; value: Buffer }>();
  for (const ext of ((wrapper?.value as forge.asn1.Asn1[])[0]?.value as forge.asn1.Asn1[]) ?? []) {
    const parts = ext.value as forge.asn1.Asn1[];
    const oid = forge.asn1.derToOid(parts[0]?.value as string);
    const critical = parts.length === 3;
    out.set(oid, { critical, value: Buffer.from(parts[parts.length - 1]?.value as string, 'binary') });
  }
  return out;
}

/** RFC 5280 4.2.1.2 method 1, computed from the key itself: SHA-1 of the subjectPublicKey bits. */
function expectedKeyId(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'ec') {
    // A P-256 SubjectPublicKeyInfo ends with the uncompressed point: 0x04, x, y (32 bytes each).
    const spki = key.export({ type: 'spki', format: 'der' });
    const point = spki.subarray(spki.length - 65);
    expect(point[0]).toBe(4);
    return createHash('sha1').update(point).digest();
  }
  return createHash('sha1')
    .update(key.export({ type: 'pkcs1', format: 'der' }))
    .digest();
}

const KEY_USAGE = '2.5.29.15';
const SKI = '2.5.29.14';
const AKI = '2.5.29.35';

let dir: string;
let ca: FleetCa;
let caCert: X509Certificate;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-certs-ec-'));
  ca = (await FleetCa.init(join(dir, 'ca'))).ca;
  caCert = parseCertificate(ca.certPem);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** openssl's own verdict on `certPem` against the fleet CA (a second, independent verifier). */
function opensslVerify(certPem: string, purpose: 'sslserver' | 'sslclient'): string {
  const leaf = join(dir, `leaf-${Date.now()}-${Math.random()}.pem`);
  writeFileSync(leaf, certPem);
  return execFileSync('openssl', ['verify', '-purpose', purpose, '-CAfile', join(dir, 'ca', 'ca.pem'), leaf], { encoding: 'utf8' }).trim();
}

describe('EC leaves', () => {
  it('the CA stays RSA; a leaf gets an EC P-256 key (PKCS#8) signed by it', async () => {
    expect(caCert.publicKey.asymmetricKeyType).toBe('rsa');
    const made = await ca.issue({ identity: { role: 'agent', fleet: 'web', host: 'h1' }, hosts: ['127.0.0.1', '::1', 'h1.example'] });
    expect(made.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const cert = parseCertificate(made.certPem);
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkPrivateKey(createPrivateKey(made.keyPem))).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    verifyLeaf(cert, [caCert]);
    expect(cert.ca).toBe(false);
    expect(cert.subjectAltName).toContain('URI:spiffe://gaxx/agent/web/h1');
    const s = summarizeCertificate(cert);
    expect(s.identity).toEqual({ role: 'agent', fleet: 'web', host: 'h1' });
    expect(s.ips.sort()).toEqual(['0:0:0:0:0:0:0:1', '127.0.0.1']);
    expect(s.dns).toEqual(['h1.example']);
    expect(cert.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(opensslVerify(made.certPem, 'sslserver')).toMatch(/: OK$/);
  });

  it('has keyUsage digitalSignature only, critical, and SKI/AKI by RFC 5280 method 1', async () => {
    const made = await ca.issue({ identity: { role: 'operator', name: 'alice' } });
    const cert = parseCertificate(made.certPem);
    const ext = extensions(made.certPem);
    // BIT STRING with 7 unused bits and only bit 0 (digitalSignature) set.
    expect(ext.get(KEY_USAGE)).toEqual({ critical: true, value: Buffer.from('03020780', 'hex') });
    expect(ext.get(SKI)?.value).toEqual(Buffer.concat([Buffer.from('0414', 'hex'), expectedKeyId(cert.publicKey)]));
    // AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier }: the CA's own key id.
    expect(ext.get(AKI)?.value).toEqual(Buffer.concat([Buffer.from('30168014', 'hex'), expectedKeyId(caCert.publicKey)]));
    expect(extensions(ca.certPem).get(SKI)?.value).toEqual(Buffer.concat([Buffer.from('0414', 'hex'), expectedKeyId(caCert.publicKey)]));
    expect(opensslVerify(made.certPem, 'sslclient')).toMatch(/: OK$/);
  });

  it('certifies a given EC public key without making or returning a private key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const made = await ca.issue({
      identity: { role: 'agent', fleet: 'web', host: 'h2' },
      hosts: ['10.0.0.2'],
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    });
    expect(made.keyPem).toBe('');
    const cert = parseCertificate(made.certPem);
    expect(cert.checkPrivateKey(privateKey)).toBe(true);
    verifyLeaf(cert, [caCert]);
  });
});

describe('RSA leaves keep working', () => {
  it('issues for a made RSA key and for a given one, with keyEncipherment', async () => {
    const made = await ca.issue({ identity: { role: 'operator', name: 'old' }, keyType: 'rsa' });
    const cert = parseCertificate(made.certPem);
    expect(cert.publicKey.asymmetricKeyType).toBe('rsa');
    expect(cert.checkPrivateKey(createPrivateKey(made.keyPem))).toBe(true);
    verifyLeaf(cert, [caCert]);
    // 5 unused bits; digitalSignature (bit 0) and keyEncipherment (bit 2).
    expect(extensions(made.certPem).get(KEY_USAGE)).toEqual({ critical: true, value: Buffer.from('030205a0', 'hex') });
    expect(extensions(made.certPem).get(SKI)?.value).toEqual(Buffer.concat([Buffer.from('0414', 'hex'), expectedKeyId(cert.publicKey)]));
    const given = await generateRsaKeyPair();
    const forKey = await ca.issue({ identity: { role: 'agent', fleet: 'web', host: 'h3' }, hosts: ['h3'], publicKeyPem: given.publicKeyPem });
    expect(parseCertificate(forKey.certPem).checkPrivateKey(createPrivateKey(given.privateKeyPem))).toBe(true);
    expect(opensslVerify(forKey.certPem, 'sslserver')).toMatch(/: OK$/);
  });

  it('refuses keys too weak or of a kind gaxx does not certify, then certifies a good one', async () => {
    const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }) as string;
    const weak = [
      generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
      generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey,
      generateKeyPairSync('ed25519').publicKey,
    ];
    const id = { role: 'agent', fleet: 'web', host: 'weak' } as const;
    for (const k of weak) expect(await codeOf(() => ca.issue({ identity: id, publicKeyPem: pem(k) }))).toBe('CERT_INVALID');
    expect(await codeOf(() => ca.issue({ identity: id, publicKeyPem: 'not a key' }))).toBe('CERT_INVALID');
    const good = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(await codeOf(() => ca.issue({ identity: id, publicKeyPem: pem(good) }))).toBe('none');
  });
});

describe('certificate requests', () => {
  const opts: Omit<LeafOptions, 'publicKeyPem'> = { identity: { role: 'agent', fleet: 'web', host: 'r1' }, hosts: ['127.0.0.1'] };

  it('accepts an EC request (what agents now make) and an RSA one (agents made before)', async () => {
    for (const pair of [await generateEcKeyPair(), await generateRsaKeyPair()]) {
      const csr = await createCsr(pair.privateKeyPem, pair.publicKeyPem, 'gaxx-agent r1');
      const made = await ca.issueForCsr(csr, opts);
      expect(made.keyPem).toBe('');
      const cert = parseCertificate(made.certPem);
      expect(cert.checkPrivateKey(createPrivateKey(pair.privateKeyPem))).toBe(true);
      expect(summarizeCertificate(cert).identity).toEqual(opts.identity);
      verifyLeaf(cert, [caCert]);
    }
  });

  it('reads requests made by openssl, and gaxx requests pass openssl req -verify', async () => {
    const pair = await generateEcKeyPair();
    const keyFile = join(dir, 'req-key.pem');
    writeFileSync(keyFile, pair.privateKeyPem, { mode: 0o600 });
    const fromOpenssl = execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', '/CN=x', '-sha256'], { encoding: 'utf8' });
    const made = await ca.issueForCsr(fromOpenssl, opts);
    expect(parseCertificate(made.certPem).checkPrivateKey(createPrivateKey(pair.privateKeyPem))).toBe(true);
    const ours = await createCsr(pair.privateKeyPem, pair.publicKeyPem, 'gaxx-agent r1');
    const check = spawnSync('openssl', ['req', '-verify', '-noout'], { input: ours, encoding: 'utf8' });
    expect(check.status).toBe(0);
    expect(check.stderr + check.stdout).toMatch(/verify OK/i);
  });

  it('refuses a tampered request, one for another key, garbage and a weak key; then a good one works', async () => {
    const pair = await generateEcKeyPair();
    const csr = await createCsr(pair.privateKeyPem, pair.publicKeyPem, 'gaxx-agent r1');
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const asPem = (d: Buffer) => `-----BEGIN CERTIFICATE REQUEST-----\n${d.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    // The subject CN's last byte ('1'), inside the signed CertificationRequestInfo.
    const tampered = Buffer.from(der);
    const at = tampered.indexOf(Buffer.from('gaxx-agent r1'));
    tampered[at + 12] = 0x32;
    expect(await codeOf(() => ca.issueForCsr(asPem(tampered), opts))).toBe('CERT_INVALID');
    // Signed by a different key than the one it names.
    const other = await generateEcKeyPair();
    expect(await codeOf(async () => ca.issueForCsr(await createCsr(other.privateKeyPem, pair.publicKeyPem, 'x'), opts))).toBe('CERT_INVALID');
    expect(await codeOf(() => ca.issueForCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', opts))).toBe('CERT_INVALID');
    expect(await codeOf(() => ca.issueForCsr('nothing here', opts))).toBe('CERT_INVALID');
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const weakPem = (k: KeyObject, t: 'pkcs8' | 'spki') => k.export({ type: t, format: 'pem' }) as string;
    const weakKeyFile = join(dir, 'weak-key.pem');
    writeFileSync(weakKeyFile, weakPem(weak.privateKey, 'pkcs8'), { mode: 0o600 });
    const weakCsr = execFileSync('openssl', ['req', '-new', '-key', weakKeyFile, '-subj', '/CN=x', '-sha256'], { encoding: 'utf8' });
    expect(await codeOf(() => ca.issueForCsr(weakCsr, opts))).toBe('CERT_INVALID');
    const good = await ca.issueForCsr(csr, opts);
    expect(parseCertificate(good.certPem).publicKey.export({ type: 'spki', format: 'pem' })).toBe(pair.publicKeyPem);
  });
});
