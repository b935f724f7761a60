// checkAgentCertificate with real certificates from a fleet CA (no network).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, parseCertificate, type Identity } from '../../certs/index.js';
import { checkAgentCertificate, splitAddress } from '../../scheduler/client/index.js';

let dir: string;
let ca: FleetCa;
const peers: Record<string, PeerCertificate> = {};

/** The fields of a PeerCertificate that the hostname and identity checks read. */
function peerOf(certPem: string): PeerCertificate {
  const x = parseCertificate(certPem);
  return { subject: { CN: x.subject.replace(/^.*CN=/s, '').split('\n')[0] }, subjectaltname: x.subjectAltName } as unknown as PeerCertificate;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-ident-'));
  ca = (await FleetCa.init(join(dir, 'ca'))).ca;
  const issue = async (key: string, identity: Identity, hosts: string[]) => {
    peers[key] = peerOf((await ca.issue({ identity, hosts })).certPem);
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
    expect(checkAgentCertificate('127.0.0.1', h1, undefined)).toBeUndefined();
    expect(checkAgentCertificate('h1.test', h1, { fleet: 'web', host: 'h1' })).toBeUndefined();
    expect(checkAgentCertificate('::1', h1, { host: 'h1' })).toBeUndefined();
  });

  it('refuses another IP or name than the one dialled (IDENTITY_MISMATCH)', () => {
    expect(checkAgentCertificate('127.0.0.2', peers.h1 as PeerCertificate, undefined)?.code).toBe('IDENTITY_MISMATCH');
    expect(checkAgentCertificate('h2.test', peers.h1 as PeerCertificate, undefined)?.code).toBe('IDENTITY_MISMATCH');
  });

  it('refuses a cert naming another host or fleet than expected', () => {
    expect(checkAgentCertificate('127.0.0.1', peers.h1 as PeerCertificate, { host: 'h2' })?.code).toBe('IDENTITY_MISMATCH');
    expect(checkAgentCertificate('127.0.0.1', peers.h1 as PeerCertificate, { fleet: 'db' })?.code).toBe('IDENTITY_MISMATCH');
  });

  it('refuses a non-agent role and a cert with two URI SANs', () => {
    const op = { ...(peers.op as PeerCertificate), subjectaltname: `${(peers.op as PeerCertificate).subjectaltname}, IP Address:127.0.0.1` };
    expect(checkAgentCertificate('127.0.0.1', op as PeerCertificate, undefined)?.code).toBe('IDENTITY_MISMATCH');
    expect(checkAgentCertificate('127.0.0.1', peers.two as PeerCertificate, undefined)?.code).toBe('IDENTITY_MISMATCH');
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
