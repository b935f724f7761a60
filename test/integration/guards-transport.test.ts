// Transport and call guards over real mTLS on loopback in front of a real grpc-js server fed
// through its connection injector (the agent's transport shape): blocking after wrong-CA
// handshakes, handshake timeout, per-address connection cap, ping flood cut, per-identity rate
// limit, per-peer call cap, bearer token, and a good client served throughout.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { constants as h2 } from 'node:http2';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pingFlood } from '../helpers/flood.js';
import { PeerBlocker } from '../../agent/transport/blocklist.js';
import { callGuardInterceptor, RETRY_AFTER_METADATA_KEY } from '../../agent/transport/call-guard.js';
import { ConnectionTracker, StreamLimiter } from '../../agent/transport/conn-limits.js';
import { GuardsSchema, type GuardsConfig } from '../../agent/transport/guard-config.js';
import { installPingPolicing } from '../../agent/transport/ping-policer.js';
import { RateLimiter } from '../../agent/transport/rate-limit.js';
import { createAuthorizer, RPC_POLICY } from '../../agent/auth/auth.js';
import { BearerToken } from '../../agent/auth/secrets.js';
import { transportGuards } from '../../agent/transport/transport-guards.js';
import { FleetCa, secureContextOptions } from '../../certs/index.js';
import { ERROR_CODE_METADATA_KEY, loadProtos } from '../../proto/index.js';

type Id = { certPem: string; keyPem: string };
let dir: string;
let caPem: string;
let serverId: Id;
let alice: Id;
let bob: Id;
let mon: Id;
let foreign: Id;
const token = randomBytes(32).toString('hex');

interface Harness {
  port: number;
  events: string[];
  blocker: PeerBlocker;
  policing: boolean;
  /** TCP connections the listener holds open. */
  rawOpen(): number;
  /** Resolves once `n` Check calls for service 'hold' are in their handler (admitted by the guards). */
  held(n: number): Promise<void>;
  /** Answers every held Check call. */
  release(): void;
  close(): Promise<void>;
}

/** Calls held until released; waiters learn when `n` are held. */
class Gate {
  private readonly answers: Array<() => void> = [];
  private readonly waiters: Array<{ n: number; done: () => void }> = [];

  hold(answer: () => void): void {
    this.answers.push(answer);
    for (const w of this.waiters.filter((x) => this.answers.length >= x.n)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.done();
    }
  }

  reached(n: number): Promise<void> {
    if (this.answers.length >= n) return Promise.resolve();
    return new Promise((done) => this.waiters.push({ n, done }));
  }

  release(): void {
    for (const a of this.answers.splice(0)) a();
  }
}

/** The agent transport's shape: TCP hooks, a never-listening tls.Server, grpc-js injector. */
async function startHarness(guards: GuardsConfig, bearer?: BearerToken): Promise<Harness> {
  const events: string[] = [];
  const blocker = new PeerBlocker(guards.block, { onBlock: (e) => events.push(`block ${e.address}`), onUnblock: (a) => events.push(`unblock ${a}`) });
  const hooks = transportGuards({
    blocker,
    connections: new ConnectionTracker(guards),
    events: { refused: (a, r) => events.push(`refused ${a} ${r}`), handshakeFailed: (a, c) => events.push(`handshake ${a} ${c}`) },
  });
  const harnessAuth = createAuthorizer(
    () => new Set(),
    () => undefined,
    { ...RPC_POLICY, '/grpc.health.v1.Health/Check': ['operator', 'scheduler'] },
  );
  const server = new grpc.Server({
    'grpc.max_concurrent_streams': guards.maxStreamsPerConnection,
    interceptors: [
      callGuardInterceptor({
        blocker,
        token: bearer,
        // The agent's own policy table, except that a monitor may not call Check here.
        authorize: (call, method) => harnessAuth.authorize(call, method),
        limiter: new RateLimiter(guards.rateLimit),
        streams: new StreamLimiter(guards.maxStreamsPerPeer),
        events: {
          rateLimited: (c) => events.push(`rate ${c.identity}`),
          streamRefused: (c) => events.push(`streams ${c.peer}`),
          denied: (c, code) => events.push(`denied ${c.peer} ${code}`),
        },
      }),
    ],
  });
  const { health } = loadProtos();
  const holding = new Gate();
  server.addService(health.grpc.health.v1.Health.service, {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<{ status: string }>) => {
      if (call.request.service === 'hold') holding.hold(() => cb(null, { status: 'SERVING' }));
      else cb(null, { status: 'SERVING' });
    },
    Watch: () => undefined,
  });
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const policing = await installPingPolicing(injector, guards, (a) => events.push(`ping ${a}`));
  const tlsServer = createTlsServer({
    ...secureContextOptions({ ...serverId, caPem }),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2'],
    handshakeTimeout: guards.handshakeTimeoutMs,
  });
  tlsServer.on('secureConnection', (s: TLSSocket) => {
    if (!hooks.onSecure(s)) return void s.destroy();
    injector.injectConnection(s);
  });
  tlsServer.on('tlsClientError', (err: Error & { code?: string }, s: TLSSocket) => hooks.onHandshakeError(err, s));
  const raw = new Set<Socket>();
  const listener: Server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    raw.add(socket);
    socket.once('close', () => raw.delete(socket));
    if (!hooks.onConnection(socket)) return void socket.destroy();
    tlsServer.emit('connection', socket);
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return {
    port: (listener.address() as { port: number }).port,
    events,
    blocker,
    policing,
    rawOpen: () => raw.size,
    held: (n) => holding.reached(n),
    release: () => holding.release(),
    async close() {
      holding.release();
      server.forceShutdown();
      for (const s of raw) s.destroy();
      await new Promise((r) => listener.close(r));
    },
  };
}

/** One Health.Check over a fresh channel; the status name, or the error's gaxx code. */
function check(
  port: number,
  id: Id,
  opts: { service?: string; token?: string; clients?: number } = {},
): Promise<{ ok: boolean; code?: string; retry?: string }> {
  const { health } = loadProtos();
  const creds = grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(id.keyPem), Buffer.from(id.certPem));
  const client = new health.grpc.health.v1.Health(`localhost:${port}`, creds);
  const md = new grpc.Metadata();
  if (opts.token) md.set('authorization', `Bearer ${opts.token}`);
  return new Promise((resolve) => {
    client.Check({ service: opts.service ?? '' }, md, { deadline: Date.now() + 5000 }, (err) => {
      client.close();
      if (!err) return resolve({ ok: true });
      const code = err.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
      resolve({
        ok: false,
        code: typeof code === 'string' ? code : grpc.status[err.code],
        retry: err.metadata?.get(RETRY_AFTER_METADATA_KEY)[0] as string | undefined,
      });
    });
  });
}

/**
 * A TLS connection from `localAddress`: 'secure' (the socket left open) once the server speaks
 * HTTP/2 over it, else how it failed. TLS 1.3: the server checks the client certificate after
 * the client's 'secureConnect', so only its first frame (SETTINGS) shows it kept the connection;
 * a refusal is an alert or a close.
 */
function connectTls(port: number, localAddress: string, id: Id): Promise<{ outcome: string; socket: TLSSocket }> {
  return new Promise((resolve) => {
    const opts = { host: '127.0.0.1', port, localAddress, ca: caPem, cert: id.certPem, key: id.keyPem, servername: 'localhost', ALPNProtocols: ['h2'] };
    const socket = tlsConnect(opts as ConnectionOptions);
    const done = (outcome: string): void => {
      if (outcome !== 'secure') socket.destroy();
      resolve({ outcome, socket });
    };
    socket.once('data', () => done('secure'));
    socket.once('error', (e: NodeJS.ErrnoException) => done(`error ${e.code ?? e.message}`));
    socket.once('close', () => done('closed'));
    // A deadline: every outcome above comes long before it.
    setTimeout(() => done('no answer'), 10_000).unref();
  });
}

/** A TLS handshake from `localAddress`: 'secure' when the server kept it, else how it failed. */
async function handshake(port: number, localAddress: string, id: Id): Promise<string> {
  const { outcome, socket } = await connectTls(port, localAddress, id);
  socket.destroy();
  return outcome;
}

/** Resolves once the clock has passed the end of `address`'s block (the blocker compares the clock to it). */
async function blockEnds(blocker: PeerBlocker, address: string): Promise<void> {
  const until = blocker.blocked().find((e) => e.address === address)?.untilMs ?? 0;
  await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(until), { timeout: 60_000, interval: 25 });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-guards-'));
  const ca = (await FleetCa.init(join(dir, 'ca'))).ca;
  const other = (await FleetCa.init(join(dir, 'other'))).ca;
  caPem = ca.certPem;
  serverId = await ca.issue({ identity: { role: 'agent', fleet: 't', host: 'h1' }, hosts: ['127.0.0.1', 'localhost'] });
  alice = await ca.issue({ identity: { role: 'operator', name: 'alice' } });
  bob = await ca.issue({ identity: { role: 'scheduler', name: 'bob' } });
  mon = await ca.issue({ identity: { role: 'monitor', name: 'mon' } });
  foreign = await other.issue({ identity: { role: 'operator', name: 'eve' } });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('transport guards', () => {
  const guards = GuardsSchema.parse({
    handshakeTimeoutMs: 800,
    maxConnectionsPerAddress: 3,
    minPingIntervalMs: 1000,
    maxPingStrikes: 2,
    block: { threshold: 3, windowMs: 10_000, cooldownMs: 1500 },
  });
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(guards);
  });
  afterAll(() => h.close());

  it('serves a good client, with ping policing active', async () => {
    expect(await check(h.port, alice)).toEqual({ ok: true });
    expect(h.policing).toBe(true);
  });

  it('blocks an address after repeated wrong-CA handshakes, never the good client, and lifts the block', async () => {
    for (let i = 0; i < guards.block.threshold; i++) expect(await handshake(h.port, '127.0.0.2', foreign)).not.toBe('secure');
    expect(h.events).toContain('block 127.0.0.2');
    // Even a valid certificate is refused from the blocked address...
    expect(await handshake(h.port, '127.0.0.2', alice)).not.toBe('secure');
    expect(h.events).toContain('refused 127.0.0.2 blocked');
    // ...while the good client on another address keeps being served.
    expect(await check(h.port, alice)).toEqual({ ok: true });
    expect(h.blocker.isBlocked('127.0.0.1')).toBe(false);
    await blockEnds(h.blocker, '127.0.0.2');
    expect(await handshake(h.port, '127.0.0.2', alice)).toBe('secure');
    expect(h.events).toContain('unblock 127.0.0.2');
  });

  it('cuts a connection that never finishes its handshake', async () => {
    const closedAfter = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      const s = netConnect({ host: '127.0.0.1', port: h.port, localAddress: '127.0.0.3' });
      s.on('error', () => undefined);
      s.on('close', () => resolve(Date.now() - t0));
    });
    expect(closedAfter).toBeGreaterThanOrEqual(guards.handshakeTimeoutMs - 50);
    expect(h.events).toContain('handshake 127.0.0.3 ERR_TLS_HANDSHAKE_TIMEOUT');
    expect(await check(h.port, alice)).toEqual({ ok: true });
  });

  it('caps concurrent connections per address', async () => {
    // Connections that finished their handshake (raw ones would be cut by the handshake timeout).
    const open: TLSSocket[] = [];
    for (let i = 0; i < guards.maxConnectionsPerAddress; i++) {
      const c = await connectTls(h.port, '127.0.0.4', alice);
      open.push(c.socket);
      expect(c.outcome).toBe('secure');
    }
    const extra = await new Promise<string>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port: h.port, localAddress: '127.0.0.4' });
      s.on('error', () => undefined);
      s.on('close', () => resolve('closed'));
      // A deadline: a refused connection is closed at once.
      setTimeout(() => (resolve('open'), s.destroy()), 10_000).unref();
    });
    expect(extra).toBe('closed');
    expect(h.events).toContain('refused 127.0.0.4 too_many_connections');
    expect(await check(h.port, alice)).toEqual({ ok: true });
    for (const s of open) s.destroy();
  });

  it('cuts a peer that pings too often with ENHANCE_YOUR_CALM', async () => {
    const code = await pingFlood(h.port, { ca: caPem, cert: alice.certPem, key: alice.keyPem }, '127.0.0.5', { timeoutMs: 4000 });
    expect(code).toBe(h2.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(h.events).toContain('ping 127.0.0.5');
    expect(await check(h.port, alice)).toEqual({ ok: true });
  });
});

describe('a flood of connections that never finish a handshake', () => {
  const guards = GuardsSchema.parse({
    handshakeTimeoutMs: 60_000,
    maxConnections: 12,
    maxConnectionsPerAddress: 2,
    block: { threshold: 1000, windowMs: 10_000, cooldownMs: 1500 },
  });
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(guards);
  });
  afterAll(() => h.close());

  it('cannot take every slot from a client with a certificate: the oldest unfinished one makes room', async () => {
    // From six addresses, two each (as a task on the host can, from all of 127.0.0.0/8): the agent is full.
    const flood: Socket[] = [];
    const closed = new Set<number>();
    for (let i = 0; i < guards.maxConnections; i++) {
      const s = netConnect({ host: '127.0.0.1', port: h.port, localAddress: `127.0.20.${1 + (i >> 1)}` });
      s.on('error', () => undefined);
      s.on('close', () => closed.add(i));
      flood.push(s);
      // In order: the first is the oldest on the agent's side too.
      await vi.waitFor(() => expect(h.rawOpen()).toBe(i + 1), { timeout: 10_000, interval: 5 });
    }
    expect(closed.size).toBe(0);
    // A good client still gets in; the flood's oldest connection made room for it.
    expect(await check(h.port, alice)).toEqual({ ok: true });
    await vi.waitFor(() => expect(closed.has(0)).toBe(true), { timeout: 10_000, interval: 10 });
    expect(h.events).toContain('handshake 127.0.20.1 EVICTED_BEFORE_SECURE');
    expect(h.events.filter((e) => e.includes('agent_at_capacity'))).toEqual([]);
    for (const s of flood) s.destroy();
  });

  it("cannot take an address's slots from a client with a certificate calling from it: its own oldest unfinished one makes room", async () => {
    // As a task on the host can, from the one address a controller there calls from.
    const from = '127.0.21.1';
    const flood: Socket[] = [];
    const closed = new Set<number>();
    // The last test's connections are gone first, so that the count below is of this flood.
    await vi.waitFor(() => expect(h.rawOpen()).toBe(0), { timeout: 10_000, interval: 10 });
    for (let i = 0; i < guards.maxConnectionsPerAddress; i++) {
      const s = netConnect({ host: '127.0.0.1', port: h.port, localAddress: from });
      s.on('error', () => undefined);
      s.on('close', () => closed.add(i));
      flood.push(s);
      await vi.waitFor(() => expect(h.rawOpen()).toBe(i + 1), { timeout: 10_000, interval: 5 });
    }
    const c = await connectTls(h.port, from, alice);
    expect(c.outcome).toBe('secure');
    await vi.waitFor(() => expect(closed.has(0)).toBe(true), { timeout: 10_000, interval: 10 });
    expect(closed.has(1)).toBe(false);
    expect(h.events).toContain(`handshake ${from} EVICTED_BEFORE_SECURE`);
    expect(h.events).not.toContain(`refused ${from} too_many_connections`);
    // Once every connection of the address holds a verified session, the next one is refused.
    const second = await connectTls(h.port, from, alice);
    expect(second.outcome).toBe('secure');
    const third = await connectTls(h.port, from, alice);
    expect(third.outcome).not.toBe('secure');
    expect(h.events).toContain(`refused ${from} too_many_connections`);
    for (const s of [...flood, c.socket, second.socket]) s.destroy();
  });
});

describe('call guards', () => {
  const guards = GuardsSchema.parse({
    maxStreamsPerPeer: 2,
    rateLimit: { burst: 4, perSecond: 0.5 },
    // Nothing exempt: the test clients all call from 127.0.0.1.
    block: { threshold: 3, windowMs: 10_000, cooldownMs: 60_000, exempt: [] },
  });
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(guards);
  });
  afterAll(() => h.close());

  it('rate-limits an identity with a retry hint, while another identity is served', async () => {
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await check(h.port, alice));
    expect(results.slice(0, 4).every((r) => r.ok)).toBe(true);
    expect(results[4]).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED' });
    expect(Number(results[4]?.retry)).toBeGreaterThan(0);
    expect(h.events).toContain('rate operator alice');
    expect(await check(h.port, bob)).toEqual({ ok: true });
  });

  it('caps concurrent calls per peer address', async () => {
    // bob has tokens left (burst 4, one spent); two slow calls fill the cap, a third is refused.
    const held = [check(h.port, bob, { service: 'hold' }), check(h.port, bob, { service: 'hold' })];
    await h.held(2);
    const third = await check(h.port, bob);
    expect(third).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED' });
    expect(h.events).toContain('streams 127.0.0.1');
    h.release();
    expect((await Promise.all(held)).every((r) => r.ok)).toBe(true);
  });

  it('counts authorization failures towards blocking the address', async () => {
    for (let i = 0; i < guards.block.threshold; i++) expect(await check(h.port, mon)).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    expect(h.events.filter((e) => e.startsWith('denied 127.0.0.1 PERMISSION_DENIED'))).toHaveLength(3);
    expect(h.events).toContain('block 127.0.0.1');
    // Blocked: new connections are refused; open ones get UNAVAILABLE.
    expect((await check(h.port, bob)).ok).toBe(false);
  });
});

describe('bearer token', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(GuardsSchema.parse({}), BearerToken.fromValue(token));
  });
  afterAll(() => h.close());

  it('refuses a call without the token or with a wrong one, serves the right one', async () => {
    expect(await check(h.port, alice)).toMatchObject({ ok: false, code: 'UNAUTHENTICATED' });
    expect(await check(h.port, alice, { token: `${token.slice(0, -1)}0` === token ? `${token.slice(0, -1)}1` : `${token.slice(0, -1)}0` })).toMatchObject({
      ok: false,
      code: 'UNAUTHENTICATED',
    });
    expect(await check(h.port, alice, { token })).toEqual({ ok: true });
    expect(h.events.filter((e) => e.includes('UNAUTHENTICATED'))).toHaveLength(2);
  });
});
