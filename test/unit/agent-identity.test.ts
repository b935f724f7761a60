// checkAgentCertificate with real certificates from a fleet CA (no network), and the revocation
// list clients hold (the cert dir's, plus the controller CA's).
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, parseCertificate, REVOCATION_FILE, revokedPeerSerials, withCaRevocations, type CertBundle, type Identity } from '../../certs/index.js';
import { checkAgentCertificate, splitAddress } from '../../scheduler/client/index.js';

let dir: string;
let ca: FleetCa;
const peers: Record<string, PeerCertificate> = {};
const serials: Record<string, string> = {};
const NONE: ReadonlySet<string> = new Set();

/** The fields of a PeerCertificate that the hostname and identity checks read. */
function peerOf(certPem: string): PeerCertificate {
  const x = parseCertificate(certPem);
  return {
    subject: { CN: x.subject.replace(/^.*CN=/s, '').split('\n')[0] },
    subjectaltname: x.subjectAltName,
    serialNumber: x.serialNumber,
  } as unknown as PeerCertificate;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-ident-'));
  ca = (await FleetCa.init(join(dir, 'ca'))).ca;
  const issue = async (key: string, identity: Identity, hosts: string[]) => {
    const made = await ca.issue({ identity, hosts });
    peers[key] = peerOf(made.certPem);
    serials[key] = made.serial;
  };
  await Promise.all([
    issue('h1', { role: 'agent', fleet: 'web', host: 'h1' }, ['127.0.0.1', 'h1.test', '::1']),
    issue('op', { role: 'operator', name: 'alice' }, []),
  ]);
  const two = await ca.issue({ identity: { role: 'agent', fleet: 'web', host: 'h1' }, hosts: ['127.0.0.1'], extraUris: ['spiffe://gaxx/agent/web/h2'] });
  peers.two = peerOf(two.certPem);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checkAgentCertificate', () => {
  it('accepts the agent cert for its IP, DNS name and expected fleet/host', () => {
    const h1 = peers.h1 as PeerCertificate;
    expect(checkAgentCertificate('127.0.0.1', h1, undefined, NONE)).toBeUndefined();
    expect(checkAgentCertificate('h1.test', h1, { fleet: 'web', host: 'h1' }, NONE)).toBeUndefined();
    expect(checkAgentCertificate('::1', h1, { host: 'h1' }, NONE)).toBeUndefined();
  });

  it('refuses another IP or name than the one dialled (IDENTITY_MISMATCH)', () => {
    expect(checkAgentCertificate('127.0.0.2', peers.h1 as PeerCertificate, undefined, NONE)?.code).toBe('IDENTITY_MISMATCH');
    expect(checkAgentCertificate('h2.test', peers.h1 as PeerCertificate, undefined, NONE)?.code).toBe('IDENTITY_MISMATCH');
  });

  it('refuses a cert naming another host or fleet than expected', () => {
    expect(checkAgentCertificate('127.0.0.1', peers.h1 as PeerCertificate, { host: 'h2' }, NONE)?.code).toBe('IDENTITY_MISMATCH');
    expect(checkAgentCertificate('127.0.0.1', peers.h1 as PeerCertificate, { fleet: 'db' }, NONE)?.code).toBe('IDENTITY_MISMATCH');
  });

  it('refuses a non-agent role and a cert with two URI SANs', () => {
    const op = { ...(peers.op as PeerCertificate), subjectaltname: `${(peers.op as PeerCertificate).subjectaltname}, IP Address:127.0.0.1` };
    expect(checkAgentCertificate('127.0.0.1', op as PeerCertificate, undefined, NONE)?.code).toBe('IDENTITY_MISMATCH');
    expect(checkAgentCertificate('127.0.0.1', peers.two as PeerCertificate, undefined, NONE)?.code).toBe('IDENTITY_MISMATCH');
  });
});

describe('checkAgentCertificate and revocation', () => {
  it('refuses a revoked agent certificate (CERT_REVOKED, naming the serial) even when it names the host and identity expected', () => {
    const h1 = peers.h1 as PeerCertificate;
    const serial = serials.h1 as string;
    const refused = checkAgentCertificate('127.0.0.1', h1, { fleet: 'web', host: 'h1' }, new Set([serial]));
    expect(refused?.code).toBe('CERT_REVOKED');
    expect(refused?.details).toEqual({ serial });
    // Node writes serials in upper-case hex, possibly with a leading zero: the list's form is normalized.
    expect(checkAgentCertificate('127.0.0.1', { ...h1, serialNumber: `0${serial.toLowerCase()}` }, undefined, new Set([serial]))?.code).toBe('CERT_REVOKED');
    expect(checkAgentCertificate('127.0.0.1', h1, undefined, new Set([serials.op as string]))).toBeUndefined();
  });

  it('refuses a revoked certificate before any identity check', () => {
    expect(checkAgentCertificate('127.0.0.2', peers.op as PeerCertificate, undefined, new Set([serials.op as string]))?.code).toBe('CERT_REVOKED');
  });
});

describe('revokedPeerSerials', () => {
  /** A client bundle of this CA whose own revoked.json holds `own` (only what the list reads). */
  const clientOf = (own: string[]): CertBundle => ({ cas: [parseCertificate(ca.certPem)], revoked: new Set(own) }) as unknown as CertBundle;

  it("adds the CA dir's signed list to the cert dir's, and sees a list re-signed since", () => {
    const bundle = clientOf(['AA']);
    expect([...revokedPeerSerials(bundle)]).toEqual(['AA']);
    expect(withCaRevocations(bundle, undefined)).toBe(bundle);
    const held = withCaRevocations(bundle, join(dir, 'ca'));
    expect([...revokedPeerSerials(held)]).toEqual(['AA']);
    ca.revoke(serials.h1 as string);
    expect(new Set(revokedPeerSerials(held))).toEqual(new Set(['AA', serials.h1]));
  });

  it("ignores a list in the CA dir that no CA of the bundle signed, keeping the bundle's own", async () => {
    const other = (await FleetCa.init(join(dir, 'other-ca'), 'other')).ca;
    other.revoke((await other.issue({ identity: { role: 'operator', name: 'x' } })).serial);
    const forged = join(dir, 'forged-ca');
    mkdirSync(forged);
    copyFileSync(join(dir, 'other-ca', REVOCATION_FILE), join(forged, REVOCATION_FILE));
    expect([...revokedPeerSerials(withCaRevocations(clientOf(['AA']), forged))]).toEqual(['AA']);
  });
});

describe('splitAddress', () => {
  it('parses host:port and [v6]:port, refuses the rest', () => {
    expect(splitAddress('10.0.0.1:8088')).toEqual({ host: '10.0.0.1', port: 8088 });
    expect(splitAddress('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(splitAddress('h1.test:1')).toEqual({ host: 'h1.test', port: 1 });
    for (const bad of ['h1', '::1:80', 'h1:0', 'h1:70000', ':80'])
      expect(() => splitAddress(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
