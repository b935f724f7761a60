// Issue 3 guards on the built agent (run `npm run build` first), over real mTLS on loopback: a
// flood from one identity and address is throttled while a well-behaved client on another
// identity and address keeps getting answers; repeated wrong-CA handshakes get an address
// blocked (visible in Info and the audit log) and the block lifts after its cool-down.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants as h2 } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { floodInChild, pingFlood } from '../helpers/flood.js';
import { rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { scrapeMetrics } from '../helpers/metrics.js';
import { issueCertDir, makePki, type Pki } from '../helpers/pki.js';
import type { InfoResponse__Output } from '../../proto/index.js';

const GUARDS = {
  maxConnectionsPerAddress: 6,
  handshakeTimeoutMs: 1000,
  rateLimit: { burst: 20, perSecond: 20 },
  block: { threshold: 4, windowMs: 10_000, cooldownMs: 2500 },
};

let dir: string;
let pki: Pki;
let agent: AgentProcess;
let good: RawClients;
let auditPath: string;
let flooder: { dir: string };

const read = (d: string, f: string) => readFileSync(join(d, f));
const pace = (ms: number) => new Promise((r) => setTimeout(r, ms));

function info(c: RawClients, timeoutMs?: number) {
  return unary<object, InfoResponse__Output>((req, md, opts, cb) => c.agent.Info(req, md, opts, cb), {}, timeoutMs);
}

/**
 * A TLS handshake from `localAddress` with a cert dir: 'secure' when the agent kept it. TLS 1.3:
 * the agent checks the client certificate after the client's 'secureConnect', so only its first
 * HTTP/2 frame (SETTINGS) shows it kept the connection; a refusal is an alert or a close.
 */
function handshake(localAddress: string, certDir: string): Promise<string> {
  return new Promise((resolve) => {
    const opts = {
      host: '127.0.0.1',
      port: agent.port,
      localAddress,
      ca: read(pki.agent.dir, 'ca.pem'),
      cert: read(certDir, 'cert.pem'),
      key: read(certDir, 'key.pem'),
      servername: 'localhost',
      ALPNProtocols: ['h2'],
    };
    const s = tlsConnect(opts as ConnectionOptions);
    const done = (r: string): void => {
      resolve(r);
      s.destroy();
    };
    s.once('data', () => done('secure'));
    s.once('error', () => done('error'));
    s.once('close', () => done('closed'));
    // A deadline: every outcome above comes long before it.
    setTimeout(() => done('no answer'), 10_000).unref();
  });
}

function auditEvents(): Array<Record<string, unknown>> {
  return readFileSync(auditPath, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-harden-'));
  pki = await makePki(dir);
  flooder = await issueCertDir(pki.ca, join(dir, 'clients', 'flooder'), { identity: { role: 'scheduler', name: 'flooder' } });
  agent = await startAgent({ certsDir: pki.agent.dir, env: { GAXX_AGENT_GUARDS: JSON.stringify(GUARDS) } });
  auditPath = agent.auditLog;
  good = rawAgentClient(agent.address, pki.clients.operator.dir);
});

afterAll(async () => {
  good?.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('agent under a flood', () => {
  it('throttles the flooding identity and address; a well-behaved client keeps being answered', async () => {
    const latencies: number[] = [];
    const outcomes: boolean[] = [];
    // The good client's channel is open before the flood starts, as a scheduler's would be.
    expect((await info(good)).ok).toBe(true);
    // The flood runs until this test has seen what it came for (60 s at most).
    const stop = new AbortController();
    const flooding = floodInChild({
      port: agent.port,
      localAddress: '127.0.0.2',
      certPem: read(flooder.dir, 'cert.pem'),
      keyPem: read(flooder.dir, 'key.pem'),
      caPem: read(pki.agent.dir, 'ca.pem'),
      connections: 10,
      concurrency: 32,
      durationMs: 60_000,
      signal: stop.signal,
    });
    // The waits below share one budget inside the test's own 60 s, so a slow one fails as
    // itself (what it waited for) instead of as the test's timeout.
    const budgetEnd = Date.now() + 45_000;
    const left = () => Math.max(1, budgetEnd - Date.now());
    try {
      // The flood is under way once the agent rate-limits it.
      await vi.waitFor(async () => expect(await scrape()).toMatch(/gaxx_agent_rate_limited_total [1-9]/), { timeout: left(), interval: 100 });
      // Well-behaved: 20 calls, 10 per second at most, inside the rate limit.
      for (let i = 0; i < 20; i++) {
        const s = performance.now();
        const r = await info(good, Math.min(10_000, left()));
        latencies.push(performance.now() - s);
        outcomes.push(r.ok);
        await pace(100);
      }
      // Far beyond its limits for long, the flooding address gets blocked and its connections cut.
      await vi.waitFor(
        () => {
          const events = auditEvents();
          expect(events.some((e) => e.event === 'peer_blocked' && e.peer === '127.0.0.2' && e.reason === 'over_limit_failures')).toBe(true);
          expect(events.some((e) => e.event === 'connection_refused' && e.peer === '127.0.0.2')).toBe(true);
        },
        { timeout: left(), interval: 100 },
      );
    } finally {
      stop.abort();
    }
    const f = await flooding;
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? NaN;
    console.log(
      `good client under flood: ${outcomes.length} calls, p99 ${p99.toFixed(1)} ms; flood: ${f.calls} calls, outcomes ${JSON.stringify(f.outcomes)}, sessions ${f.sessionsOpened}`,
    );
    expect(outcomes.every(Boolean)).toBe(true);
    // The flood was refused: rate-limited calls (RESOURCE_EXHAUSTED = 8) and refused connections.
    expect(f.outcomes['8'] ?? 0).toBeGreaterThan(0);
    expect((await info(good)).ok).toBe(true);
  });
});

/** GET /metrics over mTLS with the monitor's certificate. */
function scrape(): Promise<string> {
  return scrapeMetrics(agent.metricsPort as number, pki.clients.monitor.dir);
}

describe('connection guards', () => {
  it('cuts a connection that never finishes its TLS handshake, and audits it', async () => {
    const closedAfter = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      const s = netConnect({ host: '127.0.0.1', port: agent.port, localAddress: '127.0.0.4' });
      s.on('error', () => undefined);
      s.on('close', () => resolve(Date.now() - t0));
    });
    expect(closedAfter).toBeGreaterThanOrEqual(GUARDS.handshakeTimeoutMs - 100);
    expect(auditEvents().some((e) => e.event === 'connection_refused' && e.peer === '127.0.0.4' && e.reason === 'handshake_timeout')).toBe(true);
    expect((await info(good)).ok).toBe(true);
  });

  it('cuts a client that pings too often (GOAWAY ENHANCE_YOUR_CALM), and audits it', async () => {
    const d = pki.clients.operator.dir;
    const code = await pingFlood(agent.port, { ca: read(d, 'ca.pem'), cert: read(d, 'cert.pem'), key: read(d, 'key.pem') }, '127.0.0.5');
    expect(code).toBe(h2.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(auditEvents().some((e) => e.event === 'connection_refused' && e.peer === '127.0.0.5' && e.reason === 'too_many_pings')).toBe(true);
    expect((await info(good)).ok).toBe(true);
  });

  it('exports the limits in force and what the guards refused as metrics', async () => {
    const body = await scrape();
    expect(body).toContain(`gaxx_agent_guard_limit{limit="rate_limit_burst"} ${GUARDS.rateLimit.burst}`);
    expect(body).toMatch(/gaxx_agent_rate_limited_total [1-9]/);
    expect(body).toMatch(/gaxx_agent_peer_blocks_total [1-9]/);
    expect(body).toMatch(/gaxx_agent_ping_violations_total [1-9]/);
    expect(body).toMatch(/gaxx_agent_connections_refused_total\{reason="blocked"\} [1-9]/);
    expect(body).toContain('gaxx_agent_connections_open');
  });
});

describe('automatic blocking', () => {
  it('blocks an address after repeated wrong-CA handshakes, shows it in Info, and lifts it after the cool-down', async () => {
    for (let i = 0; i < GUARDS.block.threshold; i++) expect(await handshake('127.0.0.3', pki.clients.foreign.dir)).not.toBe('secure');
    // A valid certificate from the blocked address is refused too; the good client is not.
    expect(await handshake('127.0.0.3', pki.clients.operator.dir)).not.toBe('secure');
    const r = await info(good);
    expect(r.ok && r.value.blockedPeers.map((p) => p.address)).toContain('127.0.0.3');
    const events = auditEvents();
    expect(events.filter((e) => e.event === 'peer_blocked' && e.peer === '127.0.0.3')).toHaveLength(1);
    expect(events.some((e) => e.event === 'connection_refused' && e.peer === '127.0.0.3' && e.reason === 'blocked')).toBe(true);
    // The block ends when the agent's clock passes its end, which Info reported.
    const until = r.ok ? Number(r.value.blockedPeers.find((p) => p.address === '127.0.0.3')?.untilUnixMs ?? 0) : 0;
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(until), { timeout: 60_000, interval: 25 });
    expect(await handshake('127.0.0.3', pki.clients.operator.dir)).toBe('secure');
    expect(auditEvents().some((e) => e.event === 'peer_unblocked' && e.peer === '127.0.0.3')).toBe(true);
    expect((await info(good)).ok).toBe(true);
  });
});
