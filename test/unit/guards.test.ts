import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { normalizeAddress, PeerBlocker, type BlockedPeerEntry } from '../../agent/transport/blocklist.js';
import { ConnectionTracker, KeyedCounter, peerAddress, StreamLimiter } from '../../agent/transport/conn-limits.js';
import { BlockSchema, defaultGuards, grpcServerOptions, GuardsSchema } from '../../agent/transport/guard-config.js';
import { flattenLimits, GuardMetrics } from '../../agent/transport/guard-metrics.js';
import { PingStrikes } from '../../agent/transport/ping-policer.js';
import { RateLimiter } from '../../agent/transport/rate-limit.js';

describe('guard config', () => {
  it('has safe defaults and maps to grpc-js options', () => {
    const g = defaultGuards();
    expect(g.maxConnectionsPerAddress).toBeGreaterThan(0);
    expect(g.block.threshold).toBeGreaterThan(1);
    expect(grpcServerOptions(g)['grpc.max_connection_idle_ms']).toBe(g.idleTimeoutMs);
    expect(grpcServerOptions(g)['grpc.max_concurrent_streams']).toBe(g.maxStreamsPerConnection);
  });

  it('refuses unknown keys and nonsense values with their path', () => {
    const bad = GuardsSchema.safeParse({ rateLimit: { burst: 0 }, typo: 1 });
    expect(bad.success).toBe(false);
    const paths = bad.error?.issues.map((i) => i.path.join('.')) ?? [];
    expect(paths).toContain('rateLimit.burst');
    expect(bad.error?.issues.some((i) => i.code === 'unrecognized_keys')).toBe(true);
  });
});

describe('rate limiter', () => {
  it('allows a burst, then refuses with a retry hint, then refills', () => {
    const rl = new RateLimiter({ burst: 3, perSecond: 10, maxTracked: 100 });
    const t = 1_000_000;
    expect([1, 2, 3].map(() => rl.take('op', t).ok)).toEqual([true, true, true]);
    const refused = rl.take('op', t);
    expect(refused).toEqual({ ok: false, retryAfterMs: 100 });
    expect(rl.take('op', t + 100).ok).toBe(true);
    expect(rl.refusedTotal()).toBe(1);
  });

  it('keeps identities apart', () => {
    const rl = new RateLimiter({ burst: 1, perSecond: 1, maxTracked: 100 });
    expect(rl.take('noisy', 0).ok).toBe(true);
    expect(rl.take('noisy', 0).ok).toBe(false);
    expect(rl.take('quiet', 0).ok).toBe(true);
  });

  it('stays bounded in identities', () => {
    const rl = new RateLimiter({ burst: 2, perSecond: 1, maxTracked: 16 });
    for (let i = 0; i < 100; i++) rl.take(`id${i}`, 0);
    expect(rl.size()).toBeLessThanOrEqual(16);
  });
});

describe('peer blocker', () => {
  const cfg = BlockSchema.parse({ threshold: 3, windowMs: 1000, cooldownMs: 5000 });

  it('blocks an address after N failures in the window, once, and lifts it after the cool-down', () => {
    const blocks: BlockedPeerEntry[] = [];
    const unblocks: string[] = [];
    const b = new PeerBlocker(cfg, { onBlock: (e) => blocks.push(e), onUnblock: (a) => unblocks.push(a) });
    expect(b.recordFailure('::ffff:10.0.0.9', 'handshake', 0)).toBeUndefined();
    expect(b.recordFailure('10.0.0.9', 'handshake', 10)).toBeUndefined();
    const entry = b.recordFailure('10.0.0.9', 'auth', 20);
    expect(entry).toMatchObject({ address: '10.0.0.9', untilMs: 5020, failures: 3 });
    expect(b.isBlocked('::ffff:10.0.0.9', 21)).toBe(true);
    // Further failures while blocked do not re-announce it.
    expect(b.recordFailure('10.0.0.9', 'auth', 30)).toBeUndefined();
    expect(blocks).toHaveLength(1);
    expect(b.blocked(100).map((e) => e.address)).toEqual(['10.0.0.9']);
    expect(b.isBlocked('10.0.0.9', 5021)).toBe(false);
    expect(unblocks).toEqual(['10.0.0.9']);
    expect(b.blocked(5021)).toEqual([]);
  });

  it('forgets failures outside the window', () => {
    const b = new PeerBlocker(cfg);
    b.recordFailure('10.0.0.1', 'handshake', 0);
    b.recordFailure('10.0.0.1', 'handshake', 500);
    expect(b.recordFailure('10.0.0.1', 'handshake', 1600)).toBeUndefined();
    expect(b.isBlocked('10.0.0.1', 1601)).toBe(false);
  });

  it('never blocks another address or an exempt one', () => {
    const b = new PeerBlocker(BlockSchema.parse({ ...cfg, exempt: ['127.0.0.1'] }));
    for (let i = 0; i < 10; i++) {
      b.recordFailure('10.0.0.2', 'auth', i);
      b.recordFailure('127.0.0.1', 'auth', i);
    }
    expect(b.isBlocked('10.0.0.2', 20)).toBe(true);
    expect(b.isBlocked('10.0.0.3', 20)).toBe(false);
    expect(b.isBlocked('127.0.0.1', 20)).toBe(false);
    expect(b.totalBlocks()).toBe(1);
  });

  it('counts over-limit refusals apart, against their own threshold', () => {
    const b = new PeerBlocker(BlockSchema.parse({ threshold: 2, overLimitThreshold: 5, windowMs: 1000 }));
    for (let i = 0; i < 4; i++) expect(b.recordFailure('10.0.0.5', 'over_limit', i)).toBeUndefined();
    expect(b.recordFailure('10.0.0.5', 'auth', 10)).toBeUndefined();
    expect(b.recordFailure('10.0.0.5', 'over_limit', 11)?.reason).toBe('over_limit_failures');
    const never = new PeerBlocker(BlockSchema.parse({ overLimitThreshold: 0 }));
    for (let i = 0; i < 1000; i++) never.recordFailure('10.0.0.6', 'over_limit', i);
    expect(never.isBlocked('10.0.0.6', 1000)).toBe(false);
  });

  it('normalizes addresses', () => {
    expect(normalizeAddress('::FFFF:127.0.0.2')).toBe('127.0.0.2');
    expect(normalizeAddress(undefined)).toBe('unknown');
    expect(peerAddress('ipv4:127.0.0.2:4000')).toBe('127.0.0.2');
    expect(peerAddress('ipv6:[::1]:4000')).toBe('::1');
    expect(peerAddress('[::ffff:10.1.2.3]:1')).toBe('10.1.2.3');
  });
});

describe('connection and stream caps', () => {
  it('caps connections per address and in total, releasing once', () => {
    const t = new ConnectionTracker({ maxConnections: 3, maxConnectionsPerAddress: 2 });
    const a1 = t.tryAcquire('10.0.0.1');
    const a2 = t.tryAcquire('::ffff:10.0.0.1');
    expect(t.tryAcquire('10.0.0.1')).toEqual({ refused: 'too_many_connections' });
    const b1 = t.tryAcquire('10.0.0.2');
    expect(t.tryAcquire('10.0.0.3')).toEqual({ refused: 'agent_at_capacity' });
    if (!('release' in a1) || !('release' in a2) || !('release' in b1)) throw new Error('expected slots');
    a1.release();
    a1.release();
    expect(t.count('10.0.0.1')).toBe(1);
    expect(t.open()).toBe(2);
    expect('release' in t.tryAcquire('10.0.0.1')).toBe(true);
  });

  it("keeps an address's verified sessions in a room of their own", () => {
    const t = new ConnectionTracker({ maxConnections: 10, maxConnectionsPerAddress: 2 });
    const slot = () => {
      const s = t.tryAcquire('10.0.0.1', { beyondAddressCap: true });
      if (!('secure' in s)) throw new Error(`expected a slot: ${s.refused}`);
      return s;
    };
    // Twice the cap in their handshake when asked, no more.
    const [h1, h2, h3, h4] = [slot(), slot(), slot(), slot()];
    expect(t.tryAcquire('10.0.0.1', { beyondAddressCap: true })).toEqual({ refused: 'too_many_connections' });
    expect(t.handshaking('10.0.0.1')).toBe(4);
    // Secured, a slot leaves the handshakes' room for the sessions'.
    expect(h1.secure()).toBe(true);
    expect(h1.secure()).toBe(true);
    expect(h2.secure()).toBe(true);
    expect(t.handshaking('10.0.0.1')).toBe(2);
    expect(t.count('10.0.0.1')).toBe(4);
    // The sessions' room is full: no third, and no new connection (it could not be kept).
    expect(h3.secure()).toBe(false);
    expect(t.hasSessionRoom('10.0.0.1')).toBe(false);
    expect(t.tryAcquire('10.0.0.1', { beyondAddressCap: true })).toEqual({ refused: 'too_many_connections' });
    h1.release();
    expect(h3.secure()).toBe(true);
    h3.release();
    h4.release();
    h2.release();
    expect([t.count('10.0.0.1'), t.open()]).toEqual([0, 0]);
    // Released, a slot is not secured any more.
    expect(h4.secure()).toBe(false);
  });

  it('caps concurrent calls per peer', () => {
    const s = new StreamLimiter(2);
    const r1 = s.tryOpen('10.0.0.1');
    const r2 = s.tryOpen('10.0.0.1');
    expect(s.tryOpen('10.0.0.1')).toBeUndefined();
    expect(s.tryOpen('10.0.0.2')).toBeDefined();
    r1?.();
    expect(s.tryOpen('10.0.0.1')).toBeDefined();
    r2?.();
    expect(s.refusedTotal()).toBe(1);
    const k = new KeyedCounter(1);
    expect('release' in k.tryAcquire('x')).toBe(true);
    expect(k.tryAcquire('x')).toEqual({ refused: 'per_key' });
  });
});

describe('ping strikes', () => {
  it('cuts a peer that pings too often, forgives well-spaced pings', () => {
    const p = new PingStrikes({ minPingIntervalMs: 1000, maxPingStrikes: 2 });
    expect(p.onPing(0)).toBe(false);
    expect(p.onPing(10)).toBe(false);
    expect(p.onPing(20)).toBe(false);
    expect(p.onPing(2000)).toBe(false);
    expect(p.onPing(2010)).toBe(false);
    expect(p.onPing(2020)).toBe(false);
    expect(p.onPing(2030)).toBe(true);
  });
});

describe('guard metrics', () => {
  it('exports the limits and the live state', async () => {
    const g = defaultGuards();
    const registry = new Registry();
    const connections = new ConnectionTracker(g);
    const blocker = new PeerBlocker(BlockSchema.parse({ threshold: 1 }));
    const streams = new StreamLimiter(g.maxStreamsPerPeer);
    const m = new GuardMetrics(registry, g, { connections, blocker, streams });
    connections.tryAcquire('10.0.0.1');
    blocker.recordFailure('10.0.0.9', 'handshake');
    m.refused.inc({ reason: 'blocked' });
    const text = await registry.metrics();
    expect(text).toContain(`gaxx_agent_guard_limit{limit="rate_limit_burst"} ${g.rateLimit.burst}`);
    expect(text).toContain('gaxx_agent_connections_open 1');
    expect(text).toContain('gaxx_agent_blocked_peers 1');
    expect(text).toContain('gaxx_agent_connections_refused_total{reason="blocked"} 1');
    expect(flattenLimits(g)).toHaveProperty('block_cooldown_ms', g.block.cooldownMs);
  });
});
