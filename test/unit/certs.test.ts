import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FleetCa,
  identityFromSan,
  loadCertDir,
  parseCertificate,
  readPrivateFile,
  signRevocationList,
  summarizeCertificate,
  verifyLeaf,
  verifyRevocationList,
  writeCertDir,
} from '../../certs/index.js';
import { isGaxxError, type ErrorCode } from '../../proto/index.js';

function codeOf(fn: () => unknown): ErrorCode | 'none' {
  try {
    fn();
    return 'none';
  } catch (e) {
    if (isGaxxError(e)) return e.code;
    throw e;
  }
}

let dir: string;
let ca: FleetCa;
let other: FleetCa;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-certs-'));
  ca = (await FleetCa.init(join(dir, 'ca'))).ca;
  other = (await FleetCa.init(join(dir, 'other'))).ca;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fleet CA', () => {
  it('init is idempotent and keeps the CA key 0600', async () => {
    const again = await FleetCa.init(join(dir, 'ca'));
    expect(again.created).toBe(false);
    expect(again.ca.certPem).toBe(ca.certPem);
    expect(statSync(join(dir, 'ca', 'ca-key.pem')).mode & 0o777).toBe(0o600);
    const caCert = parseCertificate(ca.certPem);
    expect(caCert.ca).toBe(true);
  });

  it('issues an agent leaf with one URI SAN, host SANs, cA=false', async () => {
    const made = await ca.issue({ identity: { role: 'agent', fleet: 'web', host: 'h1' }, hosts: ['127.0.0.1', 'h1.example'] });
    const cert = parseCertificate(made.certPem);
    expect(cert.ca).toBe(false);
    const s = summarizeCertificate(cert);
    expect(s.identity).toEqual({ role: 'agent', fleet: 'web', host: 'h1' });
    expect(s.ips).toEqual(['127.0.0.1']);
    expect(s.dns).toEqual(['h1.example']);
    expect(s.serial).toBe(made.serial);
    expect(cert.keyUsage ?? []).not.toContain('keyCertSign');
    verifyLeaf(cert, [parseCertificate(ca.certPem)]);
    expect(ca.list().map((r) => r.serial)).toContain(made.serial);
    // The validity returned and recorded is the certificate's own (whole seconds), as `certs list` shows it.
    expect(made.notAfter.getTime()).toBe(Date.parse(cert.validTo));
    expect(made.notBefore.getTime()).toBe(Date.parse(cert.validFrom));
    expect(ca.list().find((r) => r.serial === made.serial)?.notAfter).toBe(new Date(cert.validTo).toISOString());
  });

  it('refuses leaves from another CA, expired leaves and several URI SANs', async () => {
    const foreign = await other.issue({ identity: { role: 'operator', name: 'eve' } });
    const cas = [parseCertificate(ca.certPem)];
    expect(codeOf(() => verifyLeaf(parseCertificate(foreign.certPem), cas))).toBe('CERT_INVALID');
    const old = await ca.issue({
      identity: { role: 'operator', name: 'old' },
      notBefore: new Date(Date.now() - 7200_000),
      notAfter: new Date(Date.now() - 3600_000),
    });
    expect(codeOf(() => verifyLeaf(parseCertificate(old.certPem), cas))).toBe('CERT_EXPIRED');
    const two = await ca.issue({ identity: { role: 'operator', name: 'two' }, extraUris: ['spiffe://gaxx/monitor/x'] });
    expect(codeOf(() => identityFromSan(parseCertificate(two.certPem).subjectAltName))).toBe('CERT_INVALID');
    expect(codeOf(() => identityFromSan('URI:spiffe://gaxx/janitor/x'))).toBe('CERT_INVALID');
    expect(codeOf(() => identityFromSan('DNS:x'))).toBe('CERT_INVALID');
  });

  it('refuses a leaf that says CA:TRUE, even when its keyUsage lacks keyCertSign (where OpenSSL does not call it a CA)', async () => {
    const caTrue = await ca.issue({ identity: { role: 'operator', name: 'mallory' }, testOnlyCaTrue: true });
    const cert = parseCertificate(caTrue.certPem);
    expect(cert.keyUsage ?? []).not.toContain('keyCertSign');
    expect(cert.ca).toBe(false);
    expect(codeOf(() => verifyLeaf(cert, [parseCertificate(ca.certPem)]))).toBe('CERT_INVALID');
  });

  it('signs a revocation list that only its own CA verifies', async () => {
    const made = await ca.issue({ identity: { role: 'operator', name: 'bob' } });
    const text = ca.revoke(made.serial);
    expect(verifyRevocationList(text, [parseCertificate(ca.certPem)]).serials.has(made.serial)).toBe(true);
    expect(codeOf(() => verifyRevocationList(text, [parseCertificate(other.certPem)]))).toBe('CERT_INVALID');
    const tampered = text.replace(made.serial, 'ABCDEF');
    expect(codeOf(() => verifyRevocationList(tampered, [parseCertificate(ca.certPem)]))).toBe('CERT_INVALID');
    expect(codeOf(() => ca.revoke('DEADBEEF'))).toBe('NOT_FOUND');
    expect(signRevocationList).toBeTypeOf('function');
  });

  it('refuses a revocation list of the wrong shape, naming what is wrong, and ignores keys it does not know', async () => {
    const cas = [parseCertificate(ca.certPem)];
    const made = await ca.issue({ identity: { role: 'operator', name: 'shape' } });
    const good = JSON.parse(ca.revoke(made.serial)) as Record<string, unknown>;
    const problem = (value: unknown): string => {
      try {
        verifyRevocationList(typeof value === 'string' ? value : JSON.stringify(value), cas);
      } catch (e) {
        expect(isGaxxError(e) && e.code).toBe('CERT_INVALID');
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(problem('{')).toBe('revocation list is malformed: not valid JSON');
    expect(problem([good])).toBe('revocation list is malformed: not a JSON object');
    expect(problem(null)).toBe('revocation list is malformed: not a JSON object');
    expect(problem({ ...good, version: 2 })).toBe('revocation list is malformed: version must be 1');
    expect(problem({ ...good, version: '1' })).toBe('revocation list is malformed: version must be 1');
    for (const issuedAtMs of [-1, 1.5, '1000', undefined]) {
      expect(problem({ ...good, issuedAtMs })).toBe('revocation list is malformed: issuedAtMs must be a whole number >= 0');
    }
    for (const serials of ['0A', [10], undefined])
      expect(problem({ ...good, serials })).toBe('revocation list is malformed: serials must be a list of strings');
    expect(problem({ ...good, signature: 7 })).toBe('revocation list is malformed: signature must be a string');
    // A key of a later version is not a reason to refuse a list the CA signed.
    expect(problem({ ...good, note: 'x' })).toBe('accepted');
    expect(verifyRevocationList(JSON.stringify(good), cas).serials.has(made.serial)).toBe(true);
  });

  it('loads a cert dir and refuses a key readable by others, or a revoked cert', async () => {
    const made = await ca.issue({ identity: { role: 'scheduler', name: 's1' } });
    const d = join(dir, 'sched');
    writeCertDir(d, { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem });
    expect(loadCertDir(d).summary.identity).toEqual({ role: 'scheduler', name: 's1' });
    chmodSync(join(d, 'key.pem'), 0o644);
    expect(codeOf(() => loadCertDir(d))).toBe('INSECURE_FILE_MODE');
    chmodSync(join(d, 'key.pem'), 0o600);
    writeFileSync(join(d, 'revoked.json'), ca.revoke(made.serial));
    expect(codeOf(() => loadCertDir(d))).toBe('CERT_REVOKED');
    expect(codeOf(() => readPrivateFile(join(d, 'missing.pem')))).toBe('NOT_FOUND');
  });
});
