/**
 * Test PKI: one fleet CA, an agent cert dir and a client cert dir for every role and every bad
 * certificate the security tests need. Leaves get EC P-256 keys (~1 ms each); the two CAs are
 * RSA (~140 ms each, made in parallel). One call per test file.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FleetCa, REVOCATION_FILE, writeCertDir, writeFileAtomic, type Identity, type LeafOptions } from '../../certs/index.js';

/** A cert dir (cert.pem, key.pem 0600, ca.pem) and the serial of its certificate. */
export interface PkiCertDir {
  dir: string;
  serial: string;
}

/** The client cert dirs makePki creates, by what they stand for. */
export interface PkiClients {
  operator: PkiCertDir;
  scheduler: PkiCertDir;
  monitor: PkiCertDir;
  /** An agent-role certificate used as a client (agents never call agents). */
  agentRole: PkiCertDir;
  /** operator URI plus a second (monitor) URI SAN. */
  twoUri: PkiCertDir;
  /** spiffe://gaxx/janitor/x: a role gaxx does not know. */
  unknownRole: PkiCertDir;
  /** An operator certificate that expired an hour ago. */
  expired: PkiCertDir;
  /** An operator certificate whose serial is in the agent dir's revoked.json. */
  revoked: PkiCertDir;
  /** An operator certificate from another CA; its ca.pem trusts the fleet CA, so only the agent refuses. */
  foreign: PkiCertDir;
}

export interface Pki {
  /** The fleet CA's dir (ca.pem, ca-key.pem) and the opened CA, to issue more. */
  caDir: string;
  ca: FleetCa;
  /** The agent's cert dir: identity agent/<fleet>/<host>, hosts 127.0.0.1 and localhost, plus revoked.json. */
  agent: PkiCertDir & { fleet: string; host: string };
  clients: PkiClients;
}

export interface MakePkiOptions {
  fleet?: string;
  host?: string;
  /** Write revoked.json (revoking clients.revoked) into the agent dir; default true. */
  revokeInAgentDir?: boolean;
}

/** Issues `opts` with `ca` and writes it as a cert dir under `dir` (ca.pem = `trustPem` or that CA). */
export async function issueCertDir(ca: FleetCa, dir: string, opts: LeafOptions, trustPem = ca.certPem): Promise<PkiCertDir> {
  const made = await ca.issue(opts);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeCertDir(dir, { certPem: made.certPem, keyPem: made.keyPem, caPem: trustPem });
  return { dir, serial: made.serial };
}

/** Creates the whole test PKI under `dir` (which should be empty or absent). */
export async function makePki(dir: string, opts: MakePkiOptions = {}): Promise<Pki> {
  const fleet = opts.fleet ?? 'test';
  const host = opts.host ?? 'h1';
  const caDir = join(dir, 'ca');
  const [{ ca }, { ca: other }] = await Promise.all([FleetCa.init(caDir), FleetCa.init(join(dir, 'other-ca'), 'foreign CA')]);
  const op = (name: string): Identity => ({ role: 'operator', name });
  const at = (name: string) => join(dir, 'clients', name);
  const hourAgo = Date.now() - 3600_000;
  const [agent, operator, scheduler, monitor, agentRole, twoUri, unknownRole, expired, revoked, foreign] = await Promise.all([
    issueCertDir(ca, join(dir, 'agent'), { identity: { role: 'agent', fleet, host }, hosts: ['127.0.0.1', 'localhost'] }),
    issueCertDir(ca, at('operator'), { identity: op('alice') }),
    issueCertDir(ca, at('scheduler'), { identity: { role: 'scheduler', name: 'sched' } }),
    issueCertDir(ca, at('monitor'), { identity: { role: 'monitor', name: 'prom' } }),
    issueCertDir(ca, at('agent-role'), { identity: { role: 'agent', fleet, host: 'other' }, hosts: ['127.0.0.1'] }),
    issueCertDir(ca, at('two-uri'), { identity: op('two'), extraUris: ['spiffe://gaxx/monitor/two'] }),
    // identityUri only checks the name segment, so a forged role yields spiffe://gaxx/janitor/x.
    issueCertDir(ca, at('unknown-role'), { identity: { role: 'janitor', name: 'x' } as unknown as Identity }),
    issueCertDir(ca, at('expired'), { identity: op('old'), notBefore: new Date(hourAgo - 3600_000), notAfter: new Date(hourAgo) }),
    issueCertDir(ca, at('revoked'), { identity: op('gone') }),
    issueCertDir(other, at('foreign'), { identity: op('eve') }, ca.certPem),
  ]);
  if (opts.revokeInAgentDir ?? true) {
    writeFileAtomic(join(agent.dir, REVOCATION_FILE), ca.revoke(revoked.serial), 0o644);
  }
  return {
    caDir,
    ca,
    agent: { ...agent, fleet, host },
    clients: { operator, scheduler, monitor, agentRole, twoUri, unknownRole, expired, revoked, foreign },
  };
}
