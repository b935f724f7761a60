/**
 * EC P-256 leaves end to end, on the built agent (run `npm run build` first) as nobody over real
 * mTLS: an EC-keyed agent and EC-keyed operator complete the handshake both ways; an EC
 * operator's signature on queued work is accepted and a tampered one refused by code; RSA
 * certificates issued before EC leaves (an RSA operator, an RSA-keyed agent) keep working with
 * the same CA; an agent renews onto an EC key with CreateCsr.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseCertificate, secureContextOptions } from '../../certs/index.js';
import type { CreateCsrResponse__Output, InfoResponse__Output, SignedTarget } from '../../proto/index.js';
import { auditEvents, markerDir, startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { execCollect, exitOf, putFile, rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { issueCertDir, makePki, type Pki, type PkiCertDir } from '../helpers/pki.js';
import { Markers, rawSigner, signedExec } from '../helpers/signed.js';

let dir: string;
let pki: Pki;
let agent: AgentProcess;
let rsaOperator: PkiCertDir;
let markers: Markers;
const opened: RawClients[] = [];
let n = 0;
const uniq = (p: string): string => `${p}${++n}`;

const keyTypeOf = (certDir: string) => parseCertificate(readFileSync(join(certDir, 'cert.pem'))).publicKey.asymmetricKeyType;
function client(certDir: string, address = agent.address): RawClients {
  const c = rawAgentClient(address, certDir);
  opened.push(c);
  return c;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-eckeys-'));
  pki = await makePki(dir);
  rsaOperator = await issueCertDir(pki.ca, join(dir, 'clients', 'rsa-operator'), { identity: { role: 'operator', name: 'legacy' }, keyType: 'rsa' });
  agent = await startAgent({ certsDir: pki.agent.dir, args: ['--cert-poll', '500ms'] });
  markers = new Markers(markerDir('ec-keys'));
});

afterAll(async () => {
  for (const c of opened) c.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A raw TLS handshake to the agent with `certDir`'s credentials: what the client saw, read at
 * secureConnect (the socket is closed right after).
 */
function handshake(certDir: string): Promise<{ authorized: boolean; peer: X509Certificate | undefined; alpn: string | false | null }> {
  const read = (f: string) => readFileSync(join(certDir, f));
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port: agent.port,
      servername: 'localhost',
      ALPNProtocols: ['h2'],
      ...secureContextOptions({ certPem: read('cert.pem'), keyPem: read('key.pem'), caPem: read('ca.pem') }),
    });
    s.once('secureConnect', () => {
      resolve({ authorized: s.authorized, peer: s.getPeerX509Certificate(), alpn: s.alpnProtocol ?? null });
      s.destroy();
    });
    s.once('error', reject);
  });
}

describe('mTLS with EC keys', () => {
  it('the test PKI is EC by default: agent and operator keys are P-256', () => {
    expect(keyTypeOf(pki.agent.dir)).toBe('ec');
    expect(keyTypeOf(pki.clients.operator.dir)).toBe('ec');
    expect(keyTypeOf(rsaOperator.dir)).toBe('rsa');
  });

  it('an EC operator and the EC agent complete the handshake and the operator runs a task', async () => {
    const hs = await handshake(pki.clients.operator.dir);
    expect(hs.authorized).toBe(true);
    expect(hs.peer?.publicKey.asymmetricKeyType).toBe('ec');
    expect(hs.peer?.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(hs.alpn).toBe('h2');
    const r = await execCollect(client(pki.clients.operator.dir).agent, { taskId: uniq('ec-op-'), argv: ['echo', 'ec'] });
    expect(r.error).toBeUndefined();
    expect(exitOf(r)).toMatchObject({ code: 0 });
    expect(r.stdout).toBe('ec\n');
  });

  it('an EC client from a foreign CA is refused at the handshake; the EC operator still gets through', async () => {
    expect(keyTypeOf(pki.clients.foreign.dir)).toBe('ec');
    const eve = client(pki.clients.foreign.dir);
    const foreign = await unary(eve.agent.Info.bind(eve.agent), {}, 5000);
    expect(foreign).toMatchObject({ ok: false, status: grpc.status.UNAVAILABLE });
    const op = client(pki.clients.operator.dir);
    expect(await unary(op.agent.Info.bind(op.agent), {})).toMatchObject({ ok: true });
  });

  it('an RSA operator certificate from the same CA still works with the EC agent', async () => {
    const r = await execCollect(client(rsaOperator.dir).agent, { taskId: uniq('rsa-op-'), argv: ['true'] });
    expect(r.error).toBeUndefined();
    expect(exitOf(r)).toMatchObject({ code: 0 });
  });
});

describe('signed work with EC operator keys', () => {
  const target = (): SignedTarget => ({ fleet: '', host: agent.address, agents: [agent.address] });

  it('a task signed with the EC operator key runs; the same task altered after signing is refused', async () => {
    const sched = client(pki.clients.scheduler.dir);
    const alice = rawSigner(pki.clients.operator.dir);
    const bad = uniq('tampered');
    const tampered = { ...signedExec(alice, { runId: uniq('r'), taskId: 't', argv: ['true'], target: target() }), argv: markers.argv(bad) };
    const refused = await execCollect(sched.agent, tampered);
    expect(refused.error).toMatchObject({ status: grpc.status.PERMISSION_DENIED, gaxxCode: 'SIGNATURE_INVALID' });
    expect(markers.ran(bad)).toBe(false);
    const good = uniq('ec-signed');
    const ok = await execCollect(sched.agent, signedExec(alice, { runId: uniq('r'), taskId: 't', argv: markers.argv(good), target: target() }));
    expect(ok.error).toBeUndefined();
    expect(exitOf(ok)).toMatchObject({ code: 0 });
    expect(markers.ran(good)).toBe(true);
  });

  it('a task signed by an RSA operator certificate made before EC leaves still runs', async () => {
    const sched = client(pki.clients.scheduler.dir);
    const name = uniq('rsa-signed');
    const ok = await execCollect(
      sched.agent,
      signedExec(rawSigner(rsaOperator.dir), { runId: uniq('r'), taskId: 't', argv: markers.argv(name), target: target() }),
    );
    expect(ok.error).toBeUndefined();
    expect(markers.ran(name)).toBe(true);
  });
});

describe('an RSA-keyed agent (bootstrapped before EC leaves)', () => {
  it('serves EC clients and renews onto an EC key with CreateCsr', async () => {
    const old = await issueCertDir(pki.ca, join(dir, 'rsa-agent'), {
      identity: { role: 'agent', fleet: 'test', host: 'h9' },
      hosts: ['127.0.0.1', 'localhost'],
      keyType: 'rsa',
    });
    expect(keyTypeOf(old.dir)).toBe('rsa');
    const rsaAgent = await startAgent({ certsDir: old.dir, args: ['--cert-poll', '500ms'] });
    const op = client(pki.clients.operator.dir, rsaAgent.address);
    const info = () => unary<object, InfoResponse__Output>((req, md, opts, cb) => op.agent.Info(req, md, opts, cb), {});
    expect(await info()).toMatchObject({ ok: true, value: { certSerial: old.serial } });
    const csr = await unary<object, CreateCsrResponse__Output>((req, md, opts, cb) => op.agent.CreateCsr(req, md, opts, cb), {});
    if (!csr.ok) throw new Error(`CreateCsr failed: ${csr.details}`);
    const fresh = await pki.ca.issueForCsr(csr.value.csrPem, { identity: { role: 'agent', fleet: 'test', host: 'h9' }, hosts: ['127.0.0.1', 'localhost'] });
    expect(parseCertificate(fresh.certPem).publicKey.asymmetricKeyType).toBe('ec');
    expect((await putFile(op.agent, { path: 'cert.pem', area: 'FILE_AREA_CERTS' }, Buffer.from(fresh.certPem))).ok).toBe(true);
    await vi.waitFor(
      () => expect(auditEvents(rsaAgent.auditLog).some((e) => e.event === 'cert_reload' && e.ok === true && e.serial === fresh.serial)).toBe(true),
      {
        timeout: 20_000,
        interval: 50,
      },
    );
    // A new connection gets the renewed certificate, whose key the agent made and kept.
    const next = rawAgentClient(rsaAgent.address, pki.clients.operator.dir);
    try {
      const after = await unary<object, InfoResponse__Output>((req, md, opts, cb) => next.agent.Info(req, md, opts, cb), {});
      expect(after).toMatchObject({ ok: true, value: { certSerial: fresh.serial } });
    } finally {
      next.close();
    }
    await rsaAgent.stop();
  });
});
