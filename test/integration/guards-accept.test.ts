// The guarded accept path over real TLS on loopback, in front of a real grpc-js server fed
// through its connection injector: blocking after wrong-CA handshakes, handshake timeout,
// per-address connection cap, ping flood cut, and a good client served throughout.
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { connect as h2connect, constants as h2 } from 'node:http2';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createSecureContext, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptGuarded } from '../../agent/accept-guard.js';
import { PeerBlocker } from '../../agent/blocklist.js';
import { ConnectionTracker } from '../../agent/conn-limits.js';
import { GuardsSchema } from '../../agent/guard-config.js';
import { installPingPolicing } from '../../agent/ping-policer.js';
import { FleetCa, secureContextOptions } from '../../certs/index.js';
import { loadProtos } from '../../proto/index.js';

const guards = GuardsSchema.parse({
  handshakeTimeoutMs: 800,
  maxConnectionsPerAddress: 3,
  minPingIntervalMs: 1000,
  maxPingStrikes: 2,
  block: { threshold: 3, windowMs: 10_000, cooldownMs: 1500 },
});

let dir: string;
let listener: Server;
let grpcServer: grpc.Server;
let port: number;
let caPem: string;
let good: { certPem: string; keyPem: string };
let foreign: { certPem: string; keyPem: string };
const events: string[] = [];
let policing = false;
const rawSockets = new Set<Socket>();
const blocker = new PeerBlocker(guards.block, { onBlock: (e) => events.push(`block ${e.address}`), onUnblock: (a) => events.push(`unblock ${a}`) });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-accept-'));
  const ca = (await FleetCa.init(join(dir, 'ca'))).ca;
  const other = (await FleetCa.init(join(dir, 'other'))).ca;
  caPem = ca.certPem;
  const server = await ca.issue({ identity: { role: 'agent', fleet: 't', host: 'h1' }, hosts: ['127.0.0.1', 'localhost'] });
  good = await ca.issue({ identity: { role: 'operator', name: 'alice' } });
  foreign = await other.issue({ identity: { role: 'operator', name: 'eve' } });
  const ctx = createSecureContext(secureContextOptions({ certPem: server.certPem, keyPem: server.keyPem, caPem }));

  grpcServer = new grpc.Server();
  const { health } = loadProtos();
  grpcServer.addService(health.grpc.health.v1.Health.service, {
    Check: (_call: unknown, cb: grpc.sendUnaryData<{ status: string }>) => cb(null, { status: 'SERVING' }),
    Watch: () => undefined,
  });
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const connections = new ConnectionTracker(guards);
  listener = createServer((raw) => {
    rawSockets.add(raw);
    raw.once('close', () => rawSockets.delete(raw));
    acceptGuarded(raw, {
      guards,
      connections,
      blocker,
      tls: () => ({ context: ctx, cas: [new X509Certificate(caPem)] }),
      inject: (s) => injector.injectConnection(s),
      events: {
        refused: (a, r) => events.push(`refused ${a} ${r}`),
        handshakeFailed: (a, r, d) => events.push(`handshake ${a} ${r} ${d}`),
      },
    });
  });
  policing = await installPingPolicing(injector, guards, (a) => events.push(`ping ${a}`));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  port = (listener.address() as { port: number }).port;
});

afterAll(async () => {
  grpcServer?.forceShutdown();
  for (const s of rawSockets) s.destroy();
  await new Promise((r) => listener?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function healthCheck(): Promise<string> {
  const { health } = loadProtos();
  const creds = grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(good.keyPem), Buffer.from(good.certPem));
  const client = new health.grpc.health.v1.Health(`localhost:${port}`, creds);
  return new Promise((resolve, reject) => {
    client.Check({}, { deadline: Date.now() + 5000 }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res?.status ?? '');
    });
  });
}

/** A TLS handshake from `localAddress`: 'secure' or the way it failed. */
function handshake(localAddress: string, id: { certPem: string; keyPem: string }): Promise<string> {
  return new Promise((resolve) => {
    const opts = { host: '127.0.0.1', port, localAddress, ca: caPem, cert: id.certPem, key: id.keyPem, servername: 'localhost', ALPNProtocols: ['h2'] };
    const s = tlsConnect(opts as ConnectionOptions);
    s.on('close', () => undefined);
    setTimeout(() => s.destroy(), 300).unref();
    // TLS 1.3: a refused client cert shows up after 'secureConnect', as an alert or a close.
    s.once('secureConnect', () => setTimeout(() => (s.destroyed ? undefined : resolve('secure')), 150));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    s.once('close', () => resolve('closed'));
    setTimeout(() => resolve('timeout'), 4000).unref();
  }).finally(() => undefined) as Promise<string>;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('guarded accept path', () => {
  it('serves a good client', async () => {
    expect(await healthCheck()).toBe('SERVING');
    expect(policing).toBe(true);
  });

  it('blocks an address after repeated wrong-CA handshakes, never the good client, and lifts the block', async () => {
    for (let i = 0; i < guards.block.threshold; i++) expect(await handshake('127.0.0.2', foreign)).not.toBe('secure');
    expect(events).toContain('block 127.0.0.2');
    expect(blocker.isBlocked('127.0.0.2')).toBe(true);
    // Even a valid certificate is refused from the blocked address...
    expect(await handshake('127.0.0.2', good)).not.toBe('secure');
    expect(events).toContain('refused 127.0.0.2 blocked');
    // ...while the good client on another address keeps being served.
    expect(await healthCheck()).toBe('SERVING');
    expect(blocker.isBlocked('127.0.0.1')).toBe(false);
    await wait(guards.block.cooldownMs + 100);
    expect(await handshake('127.0.0.2', good)).toBe('secure');
    expect(events).toContain('unblock 127.0.0.2');
  });

  it('cuts a connection that never finishes its handshake', async () => {
    const closedAfter = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      const s = netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' });
      s.on('error', () => undefined);
      s.on('close', () => resolve(Date.now() - t0));
    });
    expect(closedAfter).toBeGreaterThanOrEqual(guards.handshakeTimeoutMs - 50);
    expect(events.some((e) => e.startsWith('handshake 127.0.0.3 timeout'))).toBe(true);
    expect(await healthCheck()).toBe('SERVING');
  });

  it('caps concurrent connections per address', async () => {
    const open: Socket[] = [];
    for (let i = 0; i < guards.maxConnectionsPerAddress; i++) {
      const s = netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.4' });
      s.on('error', () => undefined);
      open.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    await wait(50);
    const extra = await new Promise<string>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.4' });
      s.on('error', () => undefined);
      s.on('close', () => resolve('closed'));
      setTimeout(() => resolve('open'), 500).unref();
    });
    expect(extra).toBe('closed');
    expect(events).toContain('refused 127.0.0.4 too_many_connections');
    expect(await healthCheck()).toBe('SERVING');
    for (const s of open) s.destroy();
  });

  it('cuts a peer that pings too often with ENHANCE_YOUR_CALM', async () => {
    const code = await new Promise<number | string>((resolve) => {
      const session = h2connect(`https://localhost:${port}`, {
        ca: caPem,
        cert: good.certPem,
        key: good.keyPem,
        localAddress: '127.0.0.5',
      } as Parameters<typeof h2connect>[1]);
      session.on('error', () => undefined);
      session.on('goaway', (errorCode) => resolve(errorCode));
      session.on('close', () => resolve('closed'));
      session.on('connect', () => {
        for (let i = 0; i < 10; i++) session.ping(() => undefined);
      });
      setTimeout(() => resolve('timeout'), 4000).unref();
    });
    expect(code).toBe(h2.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(events).toContain('ping 127.0.0.5');
    expect(await healthCheck()).toBe('SERVING');
  });
});
