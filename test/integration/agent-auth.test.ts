// Who may talk to the agent: the role x RPC matrix, refused connections (no cert, foreign CA,
// expired, revoked, plaintext), no TLS session to resume, the message size limit, and the mTLS
// metrics endpoint. Each refusal is followed by a good call, to show the agent keeps serving.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as h2Connect, createSecureServer, type Http2SecureServer } from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { execCollect, exitOf, getFile, putFile, rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { httpsGet } from '../helpers/metrics.js';
import { makePki, type Pki, type PkiClients } from '../helpers/pki.js';

let dir: string;
let pki: Pki;
let agent: AgentProcess;
let op: RawClients;
const opened: RawClients[] = [];

function client(certDir: string, opts: Parameters<typeof rawAgentClient>[2] = {}): RawClients {
  const c = rawAgentClient(agent.address, certDir, opts);
  opened.push(c);
  return c;
}

/** A good call after a refusal: the agent still serves. */
async function stillServing(): Promise<void> {
  const r = await unary(op.agent.Info.bind(op.agent), {});
  expect(r.ok).toBe(true);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-agent-auth-'));
  pki = await makePki(dir);
  agent = await startAgent({ certsDir: pki.agent.dir });
  op = client(pki.clients.operator.dir);
});
afterAll(async () => {
  for (const c of opened) c.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

const RPCS = ['Exec', 'Cancel', 'PutFile', 'GetFile', 'Info', 'Health'] as const;

/** The gRPC status of each RPC for one client (0 = OK) and the gaxx codes of refusals. */
async function probe(c: RawClients, tag: string): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  const code = (r: { ok: boolean; status?: number; gaxxCode?: string }) => (r.ok ? 0 : `${r.status}:${r.gaxxCode}`);
  const ex = await execCollect(c.agent, { taskId: `matrix-${tag}`, argv: ['true'] });
  out.Exec = ex.error ? `${ex.error.status}:${ex.error.gaxxCode}` : exitOf(ex)?.code === 0 ? 0 : 'exit?';
  out.Cancel = code(await unary(c.agent.Cancel.bind(c.agent), { taskId: 'nothing' }));
  out.PutFile = code(await putFile(c.agent, { path: `matrix/${tag}.txt` }, Buffer.from(tag)));
  out.GetFile = code(await getFile(c.agent, 'matrix/operator.txt'));
  out.Info = code(await unary(c.agent.Info.bind(c.agent), {}));
  out.Health = code(await unary(c.health.Check.bind(c.health), { service: '' }));
  return out;
}

describe('role x RPC matrix', () => {
  it('lets only the allowed pairs through, with exact codes', async () => {
    const all = (v: number | string) => Object.fromEntries(RPCS.map((r) => [r, v]));
    const denied = '7:PERMISSION_DENIED';
    const expected: Record<keyof PkiClients & string, Record<string, number | string>> = {
      operator: all(0),
      // A scheduler's Exec must carry an operator's signature (signed-work.test.ts runs signed
      // ones); files are the operator's (agent-files.test.ts).
      scheduler: { ...all(0), Exec: '7:UNSIGNED_TASK', PutFile: denied, GetFile: denied },
      monitor: { ...all(denied), Info: 0, Health: 0 },
      agentRole: all(denied),
      twoUri: all('16:CERT_INVALID'),
      unknownRole: all('16:CERT_INVALID'),
    } as never;
    const got: Record<string, Record<string, number | string>> = {};
    for (const name of Object.keys(expected) as Array<keyof PkiClients>) got[name] = await probe(client(pki.clients[name].dir), name);
    expect(got).toEqual(expected);
    await stillServing();
  });
});

describe('refused connections and calls', () => {
  const unavailable = async (c: RawClients) => {
    const r = await unary(c.agent.Info.bind(c.agent), {}, 5000);
    expect(r).toMatchObject({ ok: false, status: grpc.status.UNAVAILABLE });
  };

  it('no client certificate: handshake refused', async () => {
    await unavailable(client(pki.clients.operator.dir, { noCert: true }));
    await stillServing();
  });

  it('certificate from another CA: handshake refused', async () => {
    await unavailable(client(pki.clients.foreign.dir));
    await stillServing();
  });

  it('expired certificate: handshake refused', async () => {
    await unavailable(client(pki.clients.expired.dir));
    await stillServing();
  });

  it('revoked certificate: every call refused with CERT_REVOKED', async () => {
    const c = client(pki.clients.revoked.dir);
    expect(await unary(c.agent.Info.bind(c.agent), {})).toMatchObject({ ok: false, status: 16, gaxxCode: 'CERT_REVOKED' });
    const ex = await execCollect(c.agent, { taskId: 'revoked-1', argv: ['true'] });
    expect(ex.error).toEqual({ status: 16, gaxxCode: 'CERT_REVOKED' });
    await stillServing();
  });

  it('monitor calling Exec: PERMISSION_DENIED', async () => {
    const ex = await execCollect(client(pki.clients.monitor.dir).agent, { taskId: 'mon-1', argv: ['true'] });
    expect(ex.error).toEqual({ status: 7, gaxxCode: 'PERMISSION_DENIED' });
    await stillServing();
  });

  it('plaintext: an insecure gRPC client and a raw HTTP/2 preface are refused', async () => {
    await unavailable(client(pki.clients.operator.dir, { credentials: grpc.credentials.createInsecure() }));
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const s = connect(agent.port, '127.0.0.1', () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00'));
      const parts: Buffer[] = [];
      s.on('data', (b: Buffer) => parts.push(b));
      s.on('close', () => resolve(Buffer.concat(parts)));
      s.on('error', () => resolve(Buffer.concat(parts)));
      s.setTimeout(5000, () => reject(new Error('plaintext connection was not closed')));
    });
    // Whatever came back is a TLS record (an alert, type 0x15) or nothing: never an HTTP/2 frame.
    expect(reply.length === 0 || reply[0] === 0x15).toBe(true);
    await stillServing();
  });

  it('TLS policy: a TLS 1.2 CBC-only client is refused, an AEAD one is served', async () => {
    const attempt = (ciphers: string) =>
      new Promise<string>((resolve) => {
        const s = tlsConnect({ ...mtlsOptions(agent.port, pki.clients.operator.dir), maxVersion: 'TLSv1.2', ciphers }, () => {
          s.destroy();
          resolve('connected');
        });
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
    // TLS 1.2 suites name the server key's kind: the agent's key is EC, so ECDSA suites.
    expect(await attempt('ECDHE-ECDSA-AES128-SHA')).toBe('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
    expect(await attempt('ECDHE-ECDSA-AES128-GCM-SHA256')).toBe('connected');
    await stillServing();
  });

  it('no TLS session tickets: no connection can skip the certificate check by resuming one', async () => {
    // The same client against a TLS server with OpenSSL's defaults gets tickets: the count works.
    const files = (f: string) => readFileSync(join(pki.agent.dir, f));
    const plain: Http2SecureServer = createSecureServer({ key: files('key.pem'), cert: files('cert.pem'), ca: files('ca.pem'), requestCert: true });
    plain.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end();
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      expect(await ticketsBeforeAnswer((plain.address() as AddressInfo).port, pki.clients.operator.dir)).toBeGreaterThan(0);
    } finally {
      plain.close();
    }
    expect(await ticketsBeforeAnswer(agent.port, pki.clients.operator.dir)).toBe(0);
    await stillServing();
  });

  it('a message over the size limit: RESOURCE_EXHAUSTED', async () => {
    const ex = await execCollect(op.agent, { taskId: 'big-1', argv: ['true'], stdin: Buffer.alloc(5 * 1024 * 1024) });
    expect(ex.error?.status).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await stillServing();
  });
});

/** A TLS connection's options to the HTTP/2 server on loopback `port`, with `certDir`'s certificate. */
function mtlsOptions(port: number, certDir: string): ConnectionOptions {
  const read = (f: string) => readFileSync(join(certDir, f));
  return { host: '127.0.0.1', port, servername: 'localhost', ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem'), ALPNProtocols: ['h2'] };
}

/**
 * The TLS session tickets a client with `certDir`'s certificate gets from the server on `port`
 * by the time one HTTP/2 request (a gRPC Health check) is answered: a TLS 1.3 server sends its
 * tickets right after the handshake, so before any answer.
 */
function ticketsBeforeAnswer(port: number, certDir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let tickets = 0;
    const socket = tlsConnect(mtlsOptions(port, certDir));
    socket.on('session', () => tickets++);
    const session = h2Connect(`https://localhost:${port}`, { createConnection: () => socket });
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': '/grpc.health.v1.Health/Check', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', reject);
    req.resume();
    req.on('close', () => {
      session.close();
      resolve(tickets);
    });
    // One empty message: not compressed, length 0.
    req.end(Buffer.alloc(5));
  });
}

/** GET /metrics over mTLS with `certDir`'s cert (none when `noCert`). */
function scrape(certDir: string, noCert = false): Promise<{ status: number; body: string }> {
  return httpsGet({ port: agent.metricsPort as number, path: '/metrics', certDir, noCert });
}

describe('metrics endpoint', () => {
  it('serves Prometheus text over mTLS to a role certificate; the counters moved', async () => {
    const { status, body } = await scrape(pki.clients.monitor.dir);
    expect(status).toBe(200);
    expect(body).toContain('gaxx_agent_build_info');
    expect(body).toMatch(/gaxx_agent_auth_failures_total\{reason="role"\} [1-9]/);
    expect(body).toMatch(/gaxx_agent_exec_total\{outcome="success"\} [1-9]/);
    expect(body).toMatch(/gaxx_agent_tls_handshake_failures_total [1-9]/);
    expect(body).toContain('process_cpu_user_seconds_total');
  });

  it('refuses a scrape without a client certificate, and an unknown role', async () => {
    await expect(scrape(pki.clients.operator.dir, true)).rejects.toThrow();
    expect((await scrape(pki.clients.unknownRole.dir)).status).toBe(403);
    expect((await scrape(pki.clients.operator.dir)).status).toBe(200);
  });
});
