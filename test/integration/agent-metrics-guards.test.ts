// The metrics listener (:9091) behind the gRPC port's guards, on the built agent (run `npm run
// build` first): scrapes by role only (agents, revoked and unknown certificates refused with a
// gaxx code, audited, counted toward blocking the address until it is blocked), a handshake
// deadline and the per-address connection cap (its oldest unfinished connection makes room), each
// from its own loopback address; the agent
// keeps serving everyone else.
import { Agent } from 'node:https';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { rawAgentClient, unary } from '../helpers/grpc.js';
import { httpsGet, NoAnswerError } from '../helpers/metrics.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { eventually } from '../helpers/poll.js';
import type { InfoResponse__Output } from '../../proto/index.js';

const GUARDS = { handshakeTimeoutMs: 500, maxConnectionsPerAddress: 4, block: { threshold: 3, windowMs: 60_000, cooldownMs: 60_000, exempt: [] } };
let dir: string;
let pki: Pki;
let agent: AgentProcess;

/** GET /metrics from `localAddress` as `certDir`: the status and gaxx code, or 'reset' when the connection was cut (no answer in time fails). */
async function scrape(certDir: string, localAddress: string): Promise<{ status: number | 'reset'; code?: string }> {
  try {
    const res = await httpsGet({ port: agent.metricsPort as number, path: '/metrics', certDir, localAddress });
    return { status: res.status, code: res.headers['gaxx-error-code'] as string | undefined };
  } catch (e) {
    if (e instanceof NoAnswerError) throw e;
    return { status: 'reset' };
  }
}

function auditEvents(): Array<Record<string, unknown>> {
  return readFileSync(agent.auditLog, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The audit log gets an event: looked at every 25 ms, for up to 10 s. */
const until = (check: () => boolean): Promise<boolean> => eventually(check, 10_000, 25);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-metrics-guards-'));
  pki = await makePki(dir);
  agent = await startAgent({ certsDir: pki.agent.dir, args: ['--guards', JSON.stringify(GUARDS)] });
});
afterAll(async () => {
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('the metrics listener', () => {
  it('serves monitor, operator and scheduler; refuses other certificates by code and blocks the address after repeats', async () => {
    const a = '127.0.0.11';
    for (const c of [pki.clients.monitor, pki.clients.operator, pki.clients.scheduler]) expect((await scrape(c.dir, '127.0.0.10')).status).toBe(200);
    expect(await scrape(pki.clients.agentRole.dir, a)).toEqual({ status: 403, code: 'PERMISSION_DENIED' });
    expect(await scrape(pki.clients.revoked.dir, a)).toEqual({ status: 403, code: 'CERT_REVOKED' });
    expect((await scrape(pki.clients.monitor.dir, a)).status).toBe(200);
    expect(await scrape(pki.clients.unknownRole.dir, a)).toEqual({ status: 403, code: 'CERT_INVALID' });
    // The third failure blocked the address: even a good certificate is cut from it now.
    expect(await until(() => auditEvents().some((e) => e.event === 'peer_blocked' && e.peer === a))).toBe(true);
    expect((await scrape(pki.clients.monitor.dir, a)).status).toBe('reset');
    const denied = auditEvents().filter((e) => e.event === 'auth_denied' && e.method === 'GET /metrics' && e.peer === a);
    expect(denied.map((e) => e.code)).toEqual(['PERMISSION_DENIED', 'CERT_REVOKED', 'CERT_INVALID']);
    expect((await scrape(pki.clients.monitor.dir, '127.0.0.12')).status).toBe(200);
  });

  it("keeps an authorized scraper's connection between scrapes for longer than a collector interval; a refused one's is closed", async () => {
    const poolOf = (certDir: string) => {
      const read = (f: string) => readFileSync(join(certDir, f));
      return new Agent({ keepAlive: true, maxSockets: 1, ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') });
    };
    const pool = poolOf(pki.clients.monitor.dir);
    const get = async (via: Agent = pool) => {
      const res = await httpsGet({
        port: agent.metricsPort as number,
        path: '/metrics',
        certDir: pki.clients.monitor.dir,
        localAddress: '127.0.0.12',
        agent: via,
      });
      return { status: res.status, keepAlive: String(res.headers['keep-alive'] ?? ''), reused: res.reusedSocket };
    };
    try {
      const first = await get();
      expect(first.status).toBe(200);
      expect(first.reused).toBe(false);
      // The dashboard scrapes every 5 s, Prometheus usually every 15-60 s.
      const timeout = Number(/timeout=(\d+)/.exec(first.keepAlive)?.[1]);
      expect(timeout).toBeGreaterThanOrEqual(61);
      const second = await get();
      expect([second.status, second.reused]).toEqual([200, true]);
      // An agent certificate may not scrape: refused, and its connection is not kept for another try.
      const wrongRole = poolOf(pki.clients.agentRole.dir);
      try {
        const refused = await get(wrongRole);
        expect([refused.status, refused.keepAlive]).toEqual([403, '']);
        const again = await get(wrongRole);
        expect([again.status, again.reused]).toEqual([403, false]);
      } finally {
        wrongRole.destroy();
      }
    } finally {
      pool.destroy();
    }
  });

  it('cuts a connection that does not finish its handshake in time, and audits it', async () => {
    const b = '127.0.0.13';
    const sock = connect({ host: '127.0.0.1', port: agent.metricsPort as number, localAddress: b });
    sock.on('error', () => undefined);
    await new Promise<void>((r) => sock.once('close', () => r()));
    const found = await until(() => auditEvents().some((e) => e.event === 'connection_refused' && e.peer === b && e.reason === 'handshake_timeout'));
    expect(found, JSON.stringify(auditEvents().filter((e) => e.peer === b))).toBe(true);
    expect((await scrape(pki.clients.monitor.dir, '127.0.0.14')).status).toBe(200);
  });

  it('beyond the per-address cap before TLS, cuts the oldest connection still in its handshake, and audits it', async () => {
    const c = '127.0.0.15';
    const socks = Array.from({ length: GUARDS.maxConnectionsPerAddress + 1 }, () => {
      const s = connect({ host: '127.0.0.1', port: agent.metricsPort as number, localAddress: c });
      s.on('error', () => undefined);
      return s;
    });
    const evicted = (e: Record<string, unknown>) => e.event === 'connection_refused' && e.peer === c && e.detail === 'EVICTED_BEFORE_SECURE';
    expect(await until(() => auditEvents().some(evicted))).toBe(true);
    // None refused at the cap: an unfinished connection made room for the next one of its address.
    expect(auditEvents().some((e) => e.event === 'connection_refused' && e.peer === c && e.reason === 'too_many_connections')).toBe(false);
    for (const s of socks) s.destroy();
    expect((await scrape(pki.clients.monitor.dir, '127.0.0.16')).status).toBe(200);
    const op = rawAgentClient(agent.address, pki.clients.operator.dir);
    expect((await unary<object, InfoResponse__Output>(op.agent.Info.bind(op.agent), {})).ok).toBe(true);
    op.close();
  });
});
