/**
 * Connection-level guards for the agent's own listener (grpc-js has none): before any TLS work a
 * TCP connection from a blocked address, or from one whose verified sessions are at the
 * per-address cap, is dropped, and the connections an address has open when it gets blocked are
 * cut; every connection that does not reach a verified TLS session counts once towards blocking
 * its address: a handshake error or timeout (reported by tls.Server as 'tlsClientError'), and a
 * connection that closes before 'secureConnection' (how Node ends a client certificate from
 * another CA: it destroys the socket after the handshake, silently).
 *
 * An address's connections in their handshake are kept to the per-address cap by kind: those
 * that have sent nothing yet, and those that have (part of a ClientHello, or a whole one the
 * agent answered), up to the cap each. Beyond it, at the end of the event loop's turn (its poll
 * phase has read every socket that sent something) and at most every TRIM_EVERY_MS, the oldest
 * of the kind are closed, not counted toward blocking the address (it may be its own burst): of
 * those that sent nothing, not the ones that arrived in this turn, which have not been read from
 * yet; of the others, those that sent part of a hello first. Beyond twice the cap, and at the
 * total cap, a new connection closes one at once (`victim`): of its own address, or of any (then
 * counted as that one's failure). Verified sessions are never closed for a new connection, and
 * have a room of their own (conn-limits.ts).
 *
 * So a caller with a certificate, which sends its hello as it connects and its certificate one
 * round trip after the agent's answer, is not locked out by connections that never finish a
 * handshake (a flood from many addresses, such as a task on the host opening thousands from
 * 127.0.0.0/8, or from the one address a controller on the same host calls from), whatever they
 * send. Once the agent has read its hello, connections that send nothing are of the other kind,
 * those that send part of a hello or trickle it in a byte at a time are closed before it, and
 * of those that send a whole hello and stall it is the newest; before, of those that sent
 * nothing it is the newest. Oldest first, not the one silent longest: a flood that trickles a
 * byte now and then on each of its connections would seem more alive than a client waiting on
 * the agent's answer. What a flood in a tight loop can still do: docs/agent-hardening.md.
 */
import type { Socket } from 'node:net';
import { normalizeAddress, type PeerBlocker } from './blocklist.js';
import type { ConnectionSlot, ConnectionTracker } from './conn-limits.js';

/** Why a connection was refused: before TLS, or (too_many_connections) once its address's sessions filled up during its handshake. */
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
  /**
   * tls.Server 'secureConnection': the peer presented a verified certificate. False: close it,
   * its address has no room for another session (they filled up during its handshake).
   */
  onSecure(socket: Socket): boolean;
  /** Cuts every open connection from `address` (when it gets blocked). */
  disconnect(address: string): number;
}

/** A live connection's key: the raw and the TLS socket share the remote address and port. */
const keyOf = (s: Socket) => `${s.remoteAddress ?? '?'}|${s.remotePort ?? '?'}`;

/**
 * An address over its cap is brought back to it this often at most (at once the first time):
 * connections a flood opens again as fast as they are closed are closed and replaced no faster,
 * which leaves a client that sends its hello as it connects, and its certificate one round trip
 * after the agent's answer, the time to do so.
 */
const TRIM_EVERY_MS = 100;

/** A connection before its verified TLS session: its slot, and the event-loop turn it arrived in. */
interface Pending {
  socket: Socket;
  slot: ConnectionSlot;
  turn: number;
}

/**
 * How far a connection in its handshake has got, as the agent sees it: 'answered', the agent has
 * written to it (its answer to a whole ClientHello; the raw socket counts what TLS writes through
 * it), 'partial', it sent bytes but not a whole hello, 'silent', nothing at all.
 */
function progress(s: Socket): 'answered' | 'partial' | 'silent' {
  if (s.bytesWritten > 0) return 'answered';
  return s.bytesRead > 0 ? 'partial' : 'silent';
}

/** Hooks enforcing the block list and the connection caps. */
export function transportGuards(deps: { blocker: PeerBlocker; connections: ConnectionTracker; events?: TransportGuardEvents }): TransportGuardHooks {
  const cap = deps.connections.perAddress;
  /** Connections before a verified TLS session, oldest first. */
  const pending = new Map<string, Pending>();
  const open = new Map<string, Set<Socket>>();
  /**
   * Addresses with more connections in their handshake than the cap (one of their kinds may be
   * over it), with when they were last brought back to it.
   */
  const over = new Map<string, number | undefined>();
  /**
   * The event loop's turns, counted at their end (setImmediate, after the poll phase) in every
   * turn a connection arrives in and the one after. A connection that arrived in turn t has been
   * read from by the end of turn t+1 (the poll phase reads every socket with data), if its peer
   * sent anything by then.
   */
  let turn = 0;
  let arrived = false;
  let turnEndScheduled = false;
  const fail = (address: string, code: string) => {
    deps.events?.handshakeFailed?.(address, code);
    deps.blocker.recordFailure(address, 'handshake');
  };
  /** Closes `p`, its slot freed now; counted toward blocking its address unless `own` (the address's own burst). */
  const evict = (p: Pending, own: boolean) => {
    pending.delete(keyOf(p.socket));
    p.slot.release();
    p.socket.destroy();
    const address = normalizeAddress(p.socket.remoteAddress);
    if (own) deps.events?.handshakeFailed?.(address, 'EVICTED_BEFORE_SECURE');
    else fail(address, 'EVICTED_BEFORE_SECURE');
  };
  /** `address`'s connections in their handshake, oldest first. */
  const pendingOf = (address: string): Pending[] => {
    const mine: Pending[] = [];
    for (const s of open.get(address) ?? []) {
      const p = pending.get(keyOf(s));
      if (p) mine.push(p);
    }
    return mine;
  };
  /**
   * Of `candidates` (oldest first), the one to close at once to make room for a new connection:
   * the oldest that sent part of a hello, else the oldest that sent nothing though it has been
   * read from (it arrived before the last turn), else the oldest the agent answered, else the
   * oldest of those just arrived.
   */
  const victim = (candidates: Iterable<Pending>): Pending | undefined => {
    let silent: Pending | undefined;
    let answered: Pending | undefined;
    let fresh: Pending | undefined;
    for (const p of candidates) {
      const kind = progress(p.socket);
      if (kind === 'partial') return p;
      if (kind === 'answered') answered ??= p;
      else if (p.turn < turn - 1) silent ??= p;
      else fresh ??= p;
    }
    return silent ?? answered ?? fresh;
  };
  /**
   * At the end of a turn, keeps `address`'s connections in their handshake that have sent
   * nothing yet, and those that have, to the cap each, closing the oldest beyond it: of the
   * first kind, those that arrived before this turn (the others have not been read from yet);
   * of the second, first those that sent part of a hello (a client sends its hello whole), then
   * those the agent answered. So a client with a certificate is never closed for connections of
   * the other kind, and of its own it is the newest.
   */
  const trim = (silent: Pending[], heard: Pending[]) => {
    let excess = silent.length - cap;
    for (const p of silent)
      if (excess > 0 && p.turn < turn) {
        evict(p, true);
        excess -= 1;
      }
    excess = heard.length - cap;
    for (const kind of ['partial', 'answered'] as const)
      for (const p of heard)
        if (excess > 0 && progress(p.socket) === kind) {
          evict(p, true);
          excess -= 1;
        }
  };
  /** Ends the next turn after `ms`, for addresses over the cap that were brought back to it less than TRIM_EVERY_MS ago. */
  let trimTimer: NodeJS.Timeout | undefined;
  const trimLater = (ms: number) => {
    if (trimTimer) return;
    trimTimer = setTimeout(() => {
      trimTimer = undefined;
      scheduleTurnEnd();
    }, ms);
    trimTimer.unref();
  };
  const endTurn = () => {
    turnEndScheduled = false;
    const now = Date.now();
    let wait = Number.POSITIVE_INFINITY;
    for (const [address, last] of [...over]) {
      if (deps.connections.handshaking(address) <= cap) {
        over.delete(address);
        continue;
      }
      const since = last === undefined ? TRIM_EVERY_MS : now - last;
      if (since < TRIM_EVERY_MS) {
        wait = Math.min(wait, TRIM_EVERY_MS - since);
        continue;
      }
      const mine = pendingOf(address);
      const silent = mine.filter((p) => progress(p.socket) === 'silent');
      const heard = mine.filter((p) => progress(p.socket) !== 'silent');
      if (silent.length > cap || heard.length > cap) {
        trim(silent, heard);
        over.set(address, now);
      }
      // Looked at again while over the cap: those that arrived in this turn are judged in a
      // later one, and those that sent nothing may send something (they are read without an
      // event of ours).
      wait = Math.min(wait, TRIM_EVERY_MS);
    }
    if (wait !== Number.POSITIVE_INFINITY) trimLater(wait);
    turn += 1;
    // Once more after the turn with the last arrival, which is read from in the next one.
    if (arrived) scheduleTurnEnd();
    arrived = false;
  };
  const scheduleTurnEnd = () => {
    if (turnEndScheduled) return;
    turnEndScheduled = true;
    setImmediate(endTurn);
  };
  return {
    onConnection(socket) {
      const address = normalizeAddress(socket.remoteAddress);
      if (deps.blocker.isBlocked(address)) {
        deps.events?.refused?.(address, 'blocked');
        return false;
      }
      // Up to twice the address's cap at once (trim brings each kind back at the end of the
      // turn); beyond it, and at the total cap, a connection in its handshake makes room now.
      const take = () => deps.connections.tryAcquire(address, { beyondAddressCap: true });
      let slot = take();
      if ('refused' in slot && slot.refused === 'too_many_connections' && deps.connections.hasSessionRoom(address)) {
        const own = victim(pendingOf(address));
        if (own) {
          evict(own, true);
          slot = take();
        }
      }
      if ('refused' in slot && slot.refused === 'agent_at_capacity') {
        const any = victim(pending.values());
        if (any) {
          evict(any, false);
          slot = take();
        }
      }
      if ('refused' in slot) {
        deps.events?.refused?.(address, slot.refused);
        return false;
      }
      const key = keyOf(socket);
      const { release } = slot;
      pending.set(key, { socket, slot, turn });
      const mine = open.get(address) ?? new Set<Socket>();
      open.set(address, mine.add(socket));
      socket.once('close', () => {
        release();
        mine.delete(socket);
        if (mine.size === 0 && open.get(address) === mine) open.delete(address);
        if (pending.delete(key)) fail(address, 'CLOSED_BEFORE_SECURE');
      });
      if (deps.connections.handshaking(address) > cap && !over.has(address)) over.set(address, undefined);
      arrived = true;
      scheduleTurnEnd();
      return true;
    },
    onHandshakeError(error, socket) {
      if (pending.delete(keyOf(socket))) fail(normalizeAddress(socket.remoteAddress), error.code ?? 'TLS_ERROR');
      socket.destroy();
    },
    onSecure(socket) {
      const key = keyOf(socket);
      const p = pending.get(key);
      if (p === undefined) return true;
      pending.delete(key);
      const address = normalizeAddress(socket.remoteAddress);
      if (!p.slot.secure()) {
        deps.events?.refused?.(address, 'too_many_connections');
        return false;
      }
      deps.events?.secured?.(address);
      return true;
    },
    disconnect(address) {
      const sockets = [...(open.get(normalizeAddress(address)) ?? [])];
      for (const s of sockets) s.destroy();
      return sockets.length;
    },
  };
}
