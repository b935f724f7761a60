/**
 * The guarded accept path of the agent's own listener: every raw TCP connection is checked
 * against the block list and the connection caps before any TLS work, wrapped in a server
 * TLSSocket with the current secure context (so a reload applies to new connections only), given
 * a handshake deadline, and only once verified handed to grpc-js (ping-policer.ts watches its
 * HTTP/2 sessions).
 * Handshake failures count towards blocking the peer address.
 */
import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { verifyLeaf } from '../certs/index.js';
import { normalizeAddress, type PeerBlocker } from './blocklist.js';
import type { ConnectionTracker } from './conn-limits.js';
import type { GuardsConfig } from './guard-config.js';

/** Why a connection was refused before or during its handshake. */
export type RefusalReason = 'blocked' | 'too_many_connections' | 'agent_at_capacity';
/** How a handshake failed. */
export type HandshakeFailure = 'timeout' | 'tls_error' | 'closed';

/** What the accept path reports; metrics, audit and logs subscribe. */
export interface AcceptEvents {
  refused?(address: string, reason: RefusalReason): void;
  handshakeFailed?(address: string, reason: HandshakeFailure, detail: string): void;
}

/** What `acceptGuarded` needs from the server. */
export interface AcceptDeps {
  guards: GuardsConfig;
  connections: ConnectionTracker;
  blocker: PeerBlocker;
  /**
   * The TLS material for new connections: the secure context and the CAs it trusts, swapped
   * together when the cert dir reloads.
   */
  tls(): { context: SecureContext; cas: X509Certificate[] };
  /** Hands a verified TLS socket to grpc-js (its connection injector). */
  inject(socket: TLSSocket): void;
  events?: AcceptEvents;
}

/** Handles one accepted TCP connection; never throws, never leaves the socket unowned. */
export function acceptGuarded(raw: Socket, deps: AcceptDeps): void {
  const address = normalizeAddress(raw.remoteAddress);
  raw.on('error', () => raw.destroy());
  if (deps.blocker.isBlocked(address)) return refuse(raw, address, 'blocked', deps);
  const slot = deps.connections.tryAcquire(address);
  if ('refused' in slot) return refuse(raw, address, slot.refused, deps);
  raw.once('close', slot.release);
  raw.setNoDelay(true);

  const material = deps.tls();
  const tlsSocket = new TLSSocket(raw, {
    isServer: true,
    secureContext: material.context,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2'],
  });
  let settled = false;
  const fail = (reason: HandshakeFailure, detail: string): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    deps.events?.handshakeFailed?.(address, reason, detail);
    deps.blocker.recordFailure(address, 'handshake');
    tlsSocket.destroy();
  };
  const timer = setTimeout(() => fail('timeout', `no TLS handshake within ${deps.guards.handshakeTimeoutMs} ms`), deps.guards.handshakeTimeoutMs);
  timer.unref();
  tlsSocket.on('error', (err: Error) => {
    if (!settled) fail('tls_error', err.message);
    else tlsSocket.destroy();
  });
  tlsSocket.once('close', () => fail('closed', 'connection closed before the TLS handshake finished'));
  tlsSocket.once('secure', () => {
    if (settled) return;
    const problem = peerProblem(tlsSocket, material.cas);
    if (problem) return fail('tls_error', problem);
    // What tls.Server does for its sockets, which a standalone server TLSSocket leaves to its
    // owner: grpc-js only exposes the peer certificate to getAuthContext() once `authorized` is
    // set, and Node's http2 waits for a 'secureConnect' (never emitted server side) while
    // `secureConnecting` is still true.
    tlsSocket.authorized = true;
    (tlsSocket as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
    settled = true;
    clearTimeout(timer);
    deps.inject(tlsSocket);
  });
}

function refuse(raw: Socket, address: string, reason: RefusalReason, deps: AcceptDeps): void {
  deps.events?.refused?.(address, reason);
  raw.destroy();
}

/**
 * Why the peer's certificate is not acceptable, or undefined when it is: present, signed by one
 * of the trusted CAs, within its validity, not itself a CA. OpenSSL only asked for the
 * certificate; a server TLSSocket outside tls.Server never checks it.
 */
function peerProblem(socket: TLSSocket, cas: X509Certificate[]): string | undefined {
  const peer = socket.getPeerX509Certificate();
  if (!peer) return 'no client certificate';
  try {
    verifyLeaf(peer, cas);
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code ?? 'CERT_INVALID';
  }
}
