/**
 * Connection-level guards for the agent's own listener (grpc-js has none): before any TLS work a
 * TCP connection from a blocked address, or beyond the per-address or total connection cap, is
 * dropped, and the connections an address has open when it gets blocked are cut; every connection that does not reach a verified TLS session counts once towards
 * blocking its address: a handshake error or timeout (reported by tls.Server as
 * 'tlsClientError'), and a connection that closes before 'secureConnection' (how Node ends a
 * client certificate from another CA: it destroys the socket after the handshake, silently).
 */
import type { Socket } from 'node:net';
import { normalizeAddress, type PeerBlocker } from './blocklist.js';
import type { ConnectionTracker } from './conn-limits.js';

/** Why a connection was refused before TLS. */
export type RefusalReason = 'blocked' | 'too_many_connections' | 'agent_at_capacity';

/** What the transport guards report; metrics, audit and logs subscribe. */
export interface TransportGuardEvents {
  refused?(address: string, reason: RefusalReason): void;
  /** `code`: Node's TLS error code, or CLOSED_BEFORE_SECURE. */
  handshakeFailed?(address: string, code: string): void;
}

/** The hooks a transport calls over a connection's life. */
export interface TransportGuardHooks {
  /** A TCP connection arrived; false: drop it now. */
  onConnection(socket: Socket): boolean;
  /** tls.Server 'tlsClientError': the socket is destroyed here (a timeout alone does not). */
  onHandshakeError(error: Error & { code?: string }, socket: Socket): void;
  /** tls.Server 'secureConnection': the peer presented a verified certificate. */
  onSecure(socket: Socket): void;
  /** Cuts every open connection from `address` (when it gets blocked). */
  disconnect(address: string): number;
}

/** A live connection's key: the raw and the TLS socket share the remote address and port. */
const keyOf = (s: Socket) => `${s.remoteAddress ?? '?'}|${s.remotePort ?? '?'}`;

/** Hooks enforcing the block list and the connection caps. */
export function transportGuards(deps: { blocker: PeerBlocker; connections: ConnectionTracker; events?: TransportGuardEvents }): TransportGuardHooks {
  const pending = new Set<string>();
  const open = new Map<string, Set<Socket>>();
  const fail = (address: string, code: string) => {
    deps.events?.handshakeFailed?.(address, code);
    deps.blocker.recordFailure(address, 'handshake');
  };
  return {
    onConnection(socket) {
      const address = normalizeAddress(socket.remoteAddress);
      if (deps.blocker.isBlocked(address)) {
        deps.events?.refused?.(address, 'blocked');
        return false;
      }
      const slot = deps.connections.tryAcquire(address);
      if ('refused' in slot) {
        deps.events?.refused?.(address, slot.refused);
        return false;
      }
      const key = keyOf(socket);
      pending.add(key);
      const mine = open.get(address) ?? new Set<Socket>();
      open.set(address, mine.add(socket));
      socket.once('close', () => {
        slot.release();
        mine.delete(socket);
        if (mine.size === 0 && open.get(address) === mine) open.delete(address);
        if (pending.delete(key)) fail(address, 'CLOSED_BEFORE_SECURE');
      });
      return true;
    },
    onHandshakeError(error, socket) {
      if (pending.delete(keyOf(socket))) fail(normalizeAddress(socket.remoteAddress), error.code ?? 'TLS_ERROR');
      socket.destroy();
    },
    onSecure(socket) {
      pending.delete(keyOf(socket));
    },
    disconnect(address) {
      const sockets = [...(open.get(normalizeAddress(address)) ?? [])];
      for (const s of sockets) s.destroy();
      return sockets.length;
    },
  };
}
