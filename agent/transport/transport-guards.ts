/**
 * Connection-level guards for the agent's own listener (grpc-js has none): before any TLS work a
 * TCP connection from a blocked address, or beyond the per-address or total connection cap, is
 * dropped, and the connections an address has open when it gets blocked are cut; every connection that does not reach a verified TLS session counts once towards
 * blocking its address: a handshake error or timeout (reported by tls.Server as
 * 'tlsClientError'), and a connection that closes before 'secureConnection' (how Node ends a
 * client certificate from another CA: it destroys the socket after the handshake, silently).
 *
 * At either cap, the total one or its own address's, a new connection takes the slot of the
 * oldest one still in its handshake rather than being refused: of any address at the total cap
 * (that one's failure is counted), of its own at the address's, if one has sent nothing yet
 * (not counted: it may be the address's own burst). So connections that never finish a
 * handshake (a flood from many addresses, such as a task on the host opening thousands from
 * 127.0.0.0/8, or from the one address a controller on the same host calls from) cannot hold
 * every slot and lock out a caller with a certificate, whose handshake takes milliseconds; to
 * push that one out, a flood would have to open all the slots anew first. A flood that sends a
 * partial hello holds an address's slots until the handshake deadline.
 */
import type { Socket } from 'node:net';
import { normalizeAddress, type PeerBlocker } from './blocklist.js';
import type { ConnectionTracker, Release } from './conn-limits.js';

/** Why a connection was refused before TLS. */
export type RefusalReason = 'blocked' | 'too_many_connections' | 'agent_at_capacity';

/** What the transport guards report; metrics, audit and logs subscribe. */
export interface TransportGuardEvents {
  refused?(address: string, reason: RefusalReason): void;
  /** `code`: Node's TLS error code, or CLOSED_BEFORE_SECURE. */
  handshakeFailed?(address: string, code: string): void;
  /** A connection's TLS handshake completed (a verified client certificate). */
  secured?(address: string): void;
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
  /** Connections before a verified TLS session, oldest first, with their slots. */
  const pending = new Map<string, { socket: Socket; release: Release }>();
  const open = new Map<string, Set<Socket>>();
  const fail = (address: string, code: string) => {
    deps.events?.handshakeFailed?.(address, code);
    deps.blocker.recordFailure(address, 'handshake');
  };
  /**
   * Closes the oldest connection still in its handshake, its slot freed now; false when there
   * is none. With `address`: the oldest of that address's own that has sent nothing at all (a
   * client with a certificate sends its hello as it connects; a stalled flood sends nothing),
   * and its eviction does not count toward blocking the address, whose own burst of
   * connections it may be.
   */
  const evictOldestPending = (address?: string): boolean => {
    let oldest: [string, { socket: Socket; release: Release }] | undefined;
    if (address === undefined) oldest = pending.entries().next().value;
    else {
      // An address's own connections, oldest first (at most its cap of them).
      for (const s of open.get(address) ?? []) {
        const p = pending.get(keyOf(s));
        if (p && s.bytesRead === 0) {
          oldest = [keyOf(s), p];
          break;
        }
      }
    }
    if (oldest === undefined) return false;
    const [key, p] = oldest;
    pending.delete(key);
    p.release();
    p.socket.destroy();
    if (address === undefined) fail(normalizeAddress(p.socket.remoteAddress), 'EVICTED_BEFORE_SECURE');
    else deps.events?.handshakeFailed?.(address, 'EVICTED_BEFORE_SECURE');
    return true;
  };
  return {
    onConnection(socket) {
      const address = normalizeAddress(socket.remoteAddress);
      if (deps.blocker.isBlocked(address)) {
        deps.events?.refused?.(address, 'blocked');
        return false;
      }
      let slot = deps.connections.tryAcquire(address);
      // The address's cap first (its own flood makes room for it), then the total one.
      if ('refused' in slot && slot.refused === 'too_many_connections' && evictOldestPending(address)) slot = deps.connections.tryAcquire(address);
      if ('refused' in slot && slot.refused === 'agent_at_capacity' && evictOldestPending()) slot = deps.connections.tryAcquire(address);
      if ('refused' in slot) {
        deps.events?.refused?.(address, slot.refused);
        return false;
      }
      const key = keyOf(socket);
      pending.set(key, { socket, release: slot.release });
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
      if (pending.delete(keyOf(socket))) deps.events?.secured?.(normalizeAddress(socket.remoteAddress));
    },
    disconnect(address) {
      const sockets = [...(open.get(normalizeAddress(address)) ?? [])];
      for (const s of sockets) s.destroy();
      return sockets.length;
    },
  };
}
