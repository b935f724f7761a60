// Issue 3 rotation without downtime on the built agent (run `npm run build` first): a new agent
// certificate, for a key the agent made (CreateCsr), pushed over PutFile during a long Exec does
// not disturb the Exec, and new
// connections see the new serial; a revocation list pushed the same way refuses the revoked
// client on its next call on its already open channel. Audit lines exist for both.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents as readAudit, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { execStarted, exitOf, putFile, rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { taskGate } from '../helpers/gate.js';
import { issueCertDir, makePki, type Pki, type PkiCertDir } from '../helpers/pki.js';
import type { CreateCsrResponse__Output, InfoResponse__Output } from '../../proto/index.js';

let dir: string;
let pki: Pki;
let agent: AgentProcess;
let operator: RawClients;
let auditPath: string;
let bob: PkiCertDir;

const info = (c: RawClients) => unary<object, InfoResponse__Output>((req, md, opts, cb) => c.agent.Info(req, md, opts, cb), {});
const auditEvents = () => readAudit(auditPath);

function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => (cond() ? resolve() : Date.now() - t0 > ms ? reject(new Error('condition not met in time')) : setTimeout(tick, 50));
    tick();
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-rotate-'));
  pki = await makePki(dir);
  bob = await issueCertDir(pki.ca, join(dir, 'clients', 'bob'), { identity: { role: 'operator', name: 'bob' } });
  agent = await startAgent({ certsDir: pki.agent.dir, args: ['--cert-poll', '500ms'] });
  auditPath = agent.auditLog;
  operator = rawAgentClient(agent.address, pki.clients.operator.dir);
});

afterAll(async () => {
  operator?.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('rotation without downtime', () => {
  it('rotates the agent certificate during a long Exec; new connections see the new serial', async () => {
    const before = await info(operator);
    expect(before.ok && before.value.certSerial).toBe(pki.agent.serial);
    // The long task ends only once the rotation is done.
    const gate = taskGate();
    const long = (await execStarted(operator.agent, { taskId: 'long-1', argv: ['/bin/sh', '-c', `${gate.wait}; echo done`], timeoutMs: 150_000 })).result;
    // The agent makes the key; only the request and the signed certificate travel.
    const csr = await unary<object, CreateCsrResponse__Output>((req, md, opts, cb) => operator.agent.CreateCsr(req, md, opts, cb), {});
    expect(csr.ok).toBe(true);
    const fresh = await pki.ca.issueForCsr(csr.ok ? csr.value.csrPem : '', {
      identity: { role: 'agent', fleet: pki.agent.fleet, host: pki.agent.host },
      hosts: ['127.0.0.1', 'localhost'],
    });
    expect(fresh.keyPem).toBe('');
    expect((await putFile(operator.agent, { path: 'cert.pem', area: 'FILE_AREA_CERTS' }, Buffer.from(fresh.certPem))).ok).toBe(true);
    try {
      await until(() => auditEvents().some((e) => e.event === 'cert_reload' && e.ok === true && e.serial === fresh.serial));
    } finally {
      gate.open();
    }
    const pushed = auditEvents().filter((e) => e.event === 'file_put' && e.identity === 'operator alice');
    expect(pushed.map((e) => e.path)).toEqual(['cert.pem']);
    expect(JSON.stringify(pushed)).not.toContain('PRIVATE KEY');
    const r = await long;
    gate.remove();
    expect(exitOf(r)?.code).toBe(0);
    expect(r.stdout.trim()).toBe('done');
    const next = rawAgentClient(agent.address, pki.clients.operator.dir);
    try {
      const after = await info(next);
      expect(after.ok && after.value.certSerial).toBe(fresh.serial);
    } finally {
      next.close();
    }
  });

  it('refuses a revoked client on its next call on the same open channel', async () => {
    const victim = rawAgentClient(agent.address, bob.dir);
    try {
      expect((await info(victim)).ok).toBe(true);
      const list = pki.ca.revoke(bob.serial);
      expect((await putFile(operator.agent, { path: 'revoked.json', area: 'FILE_AREA_CERTS' }, Buffer.from(list))).ok).toBe(true);
      await until(() => auditEvents().some((e) => e.event === 'cert_reload' && e.ok === true && Number(e.revoked) >= 2));
      const refused = await info(victim);
      expect(refused.ok).toBe(false);
      expect(!refused.ok && refused.gaxxCode).toBe('CERT_REVOKED');
      expect(auditEvents().some((e) => e.event === 'auth_denied' && e.code === 'CERT_REVOKED' && e.identity === 'operator bob')).toBe(true);
      expect((await info(operator)).ok).toBe(true);
    } finally {
      victim.close();
    }
  });

  it('refuses a pushed private key, and a cert that does not verify, leaving the agent as it was, also after a restart', async () => {
    const serial = async (c: RawClients) => {
      const r = await info(c);
      return r.ok ? r.value.certSerial : '';
    };
    const current = await serial(operator);
    const someKey = readFileSync(join(pki.clients.monitor.dir, 'key.pem'));
    const key = await putFile(operator.agent, { path: 'key.pem', area: 'FILE_AREA_CERTS' }, someKey);
    expect(!key.ok && key.gaxxCode).toBe('PERMISSION_DENIED');
    const certsBefore = ['cert.pem', 'key.pem', 'ca.pem'].map((f) => readFileSync(join(pki.agent.dir, f), 'utf8'));
    // Another CA's certificate, and a valid one of ours for another key: neither verifies as a cert dir.
    for (const bad of [readFileSync(join(pki.clients.foreign.dir, 'cert.pem')), readFileSync(join(pki.clients.monitor.dir, 'cert.pem'))]) {
      const r = await putFile(operator.agent, { path: 'cert.pem', area: 'FILE_AREA_CERTS' }, bad);
      expect(!r.ok && r.gaxxCode).toBe('CERT_INVALID');
    }
    const badCa = await putFile(operator.agent, { path: 'ca.pem', area: 'FILE_AREA_CERTS' }, readFileSync(join(dir, 'other-ca', 'ca.pem')));
    expect(!badCa.ok && badCa.gaxxCode).toBe('CERT_INVALID');
    expect(['cert.pem', 'key.pem', 'ca.pem'].map((f) => readFileSync(join(pki.agent.dir, f), 'utf8'))).toEqual(certsBefore);
    expect(await serial(operator)).toBe(current);
    await agent.stop();
    agent = await startAgent({ certsDir: pki.agent.dir, dataDir: agent.dataDir });
    operator.close();
    operator = rawAgentClient(agent.address, pki.clients.operator.dir);
    expect(await serial(operator)).toBe(current);
  });
});
