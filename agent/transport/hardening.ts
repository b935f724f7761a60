/**
 * The agent's guards assembled from one config: block list, connection and call caps, rate
 * limit, ping policing, bearer token. Their events go to the metrics, the audit log and (once
 * per block) the log. The server plugs in `transportHooks`, `interceptor` and `grpcOptions`.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { BlockedPeer } from '../../proto/index.js';
import type { AuditLog } from '../audit/audit.js';
import { PeerBlocker } from './blocklist.js';
import { callGuardInterceptor, type Caller } from './call-guard.js';
import { ConnectionTracker, StreamLimiter } from './conn-limits.js';
import { grpcServerOptions, type GuardsConfig } from './guard-config.js';
import { GuardMetrics } from './guard-metrics.js';
import { installPingPolicing, type Injector } from './ping-policer.js';
import { RateLimiter } from './rate-limit.js';
import type { BearerToken } from '../auth/secrets.js';
import { transportGuards, type TransportGuardHooks } from './transport-guards.js';

export interface HardeningDeps {
  guards: GuardsConfig;
  registry: Registry;
  log: Logger;
  audit?: AuditLog | undefined;
  token?: BearerToken | undefined;
  /** The RPC policy, applied by the call guard to every call. */
  authorize(call: grpc.ServerInterceptingCallInterface, method: string): unknown;
  /** Also told about failed handshakes and refused calls (the agent's own counters). */
  onHandshakeFailure?(address: string, code: string): void;
  onDenied?(caller: Caller, code: string): void;
}

export interface Hardening {
  blocker: PeerBlocker;
  connections: ConnectionTracker;
  metrics: GuardMetrics;
  transportHooks: TransportGuardHooks;
  interceptor: grpc.ServerInterceptor;
  /** grpc-js server options the guards imply (streams per connection, idle close). */
  grpcOptions: Record<string, number>;
  /** Polices client PINGs on every connection behind `injector`. */
  policePings(injector: Injector): Promise<void>;
  /** Blocked addresses for Info. */
  blockedPeers(): BlockedPeer[];
}

/** Builds the guards and wires their events. */
export function createHardening(d: HardeningDeps): Hardening {
  const { guards, log, audit } = d;
  const blocker = new PeerBlocker(guards.block, {
    onBlock: (e) => {
      metrics.blocks.inc();
      const cut = transportHooks.disconnect(e.address);
      log.warn({ peer: e.address, untilMs: e.untilMs, failures: e.failures, reason: e.reason, connectionsCut: cut }, 'peer address blocked');
      audit?.write({ event: 'peer_blocked', peer: e.address, untilMs: e.untilMs, failures: e.failures, reason: e.reason });
    },
    onUnblock: (address) => {
      log.info({ peer: address }, 'peer address unblocked');
      audit?.write({ event: 'peer_unblocked', peer: address });
    },
  });
  const connections = new ConnectionTracker(guards);
  const streams = new StreamLimiter(guards.maxStreamsPerPeer);
  const limiter = new RateLimiter(guards.rateLimit);
  const metrics = new GuardMetrics(d.registry, guards, { connections, blocker, streams });
  const transportHooks = transportGuards({
    blocker,
    connections,
    events: {
      refused: (address, reason) => {
        metrics.refused.inc({ reason });
        audit?.write({ event: 'connection_refused', peer: address, reason });
      },
      handshakeFailed: (address, code) => {
        d.onHandshakeFailure?.(address, code);
        const reason = code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'handshake_timeout' : 'handshake_failed';
        audit?.write({ event: 'connection_refused', peer: address, reason, detail: code });
      },
      secured: () => metrics.secured.inc(),
    },
  });
  const interceptor = callGuardInterceptor({
    blocker,
    streams,
    limiter,
    token: d.token,
    authorize: d.authorize,
    events: {
      rateLimited: () => metrics.rateLimited.inc(),
      streamRefused: () => metrics.streamsRefused.inc(),
      denied: (caller, code) => {
        d.onDenied?.(caller, code);
        audit?.write({ event: 'auth_denied', peer: caller.peer, identity: caller.identity, serial: caller.serial, method: caller.method, code });
      },
    },
  });
  return {
    blocker,
    connections,
    metrics,
    transportHooks,
    interceptor,
    grpcOptions: grpcServerOptions(guards),
    async policePings(injector) {
      const active = await installPingPolicing(injector, guards, (address) => {
        metrics.pingViolations.inc();
        log.warn({ peer: address }, 'connection cut: too many pings');
        audit?.write({ event: 'connection_refused', peer: address, reason: 'too_many_pings' });
      });
      if (!active) log.warn('ping policing inactive: HTTP/2 sessions cannot be observed on this Node version');
    },
    blockedPeers: () => blocker.blocked().map((e) => ({ address: e.address, untilUnixMs: e.untilMs, reason: e.reason })),
  };
}
