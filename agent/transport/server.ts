/**
 * The agent's transport: we own the TCP listener and the TLS layer, and hand finished mTLS
 * connections to grpc-js through a connection injector.
 *
 * A net.Server accepts TCP (where per-peer guards can act before any TLS work); each socket is
 * fed to a tls.Server that never listens itself, so Node's own server-side checks apply
 * (requestCert + rejectUnauthorized: a missing or foreign client certificate fails the handshake,
 * `socket.authorized` is set, handshake timeouts and errors surface as 'tlsClientError'). The
 * secure socket then goes to grpc-js as plain HTTP/2: `call.getAuthContext()` still reports the
 * peer certificate because it reads the session's socket, which is our authorized TLSSocket.
 * Rotation swaps the context for new connections with `setSecureContext`.
 */
import * as grpc from '@grpc/grpc-js';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import {
  createServer as createTlsServer,
  type DetailedPeerCertificate,
  type PeerCertificate,
  type SecureContextOptions,
  type Server as TlsServer,
  type TLSSocket,
} from 'node:tls';
import { GaxxError } from '../../proto/index.js';
import type { ListenAddress } from '../config.js';

/** Observes the connection life cycle; the guards (transport-guards.ts, ping-policer.ts) plug in here. */
export interface TransportHooks {
  /** A TCP connection arrived; return false to drop it before TLS. */
  onConnection?(socket: Socket): boolean;
  /** A TLS handshake failed (no/foreign client cert, plaintext, timeout); the socket is destroyed after. */
  onHandshakeError?(error: Error & { code?: string }, socket: TLSSocket): void;
  /** A verified mTLS connection is about to be handed to grpc-js; false: close it instead. */
  onSecure?(socket: TLSSocket): boolean;
  /** The grpc-js connection injector, once (ping policing watches its sessions). */
  onInjector?(injector: Pick<grpc.ConnectionInjector, 'injectConnection'>): void | Promise<void>;
}

export interface AgentTransport {
  port: number;
  /** Uses new certificate material for connections accepted from now on. */
  setSecureContext(options: SecureContextOptions): void;
  /** Stops accepting; existing connections are left to the gRPC server's shutdown. */
  close(): Promise<void>;
  /** Destroys every connection still open. */
  destroyAll(): void;
}

/** Listens on `listen`; UNAVAILABLE (e.g. EADDRINUSE) when the address cannot be bound. */
export function listenOn(server: NetServer, listen: ListenAddress): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) =>
      reject(new GaxxError('UNAVAILABLE', `cannot listen on ${listen.host}:${listen.port}: ${e.code ?? e.message}`, { cause: e }));
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * The peer certificate cannot change on this connection once renegotiation is off (HTTP/2
 * forbids it anyway), so it is built once: grpc-js asks for it on every call (getAuthContext)
 * and Node builds a new object from the X.509 each time, a good part of a short call's cost.
 */
function pinPeerCertificate(socket: TLSSocket): void {
  socket.disableRenegotiation();
  const read = socket.getPeerCertificate.bind(socket);
  let brief: PeerCertificate | undefined;
  let detailed: DetailedPeerCertificate | undefined;
  socket.getPeerCertificate = ((full?: boolean) => (full === true ? (detailed ??= read(true)) : (brief ??= read(false)))) as TLSSocket['getPeerCertificate'];
}

/** Listens on `listen` and injects authenticated TLS connections into `server`. */
export async function startTransport(
  server: grpc.Server,
  listen: ListenAddress,
  tlsOptions: SecureContextOptions,
  hooks: TransportHooks = {},
  handshakeTimeoutMs = 10_000,
): Promise<AgentTransport> {
  const tlsServer: TlsServer = createTlsServer({
    ...tlsOptions,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2'],
    handshakeTimeout: handshakeTimeoutMs,
  });
  // Not a plaintext path: grpc-js only ever receives sockets that our tls.Server above has
  // authenticated (mTLS, AEAD, client cert verified); the injector just must not wrap them in a
  // second TLS layer, hence HTTP/2 credentials without TLS of their own.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure()); // insecure-ok: sockets arrive already mTLS-authenticated by tlsServer
  await hooks.onInjector?.(injector);
  tlsServer.on('secureConnection', (tlsSocket: TLSSocket) => {
    // Belt and braces: Node already destroyed unauthorized sockets before this event.
    if (!tlsSocket.authorized || tlsSocket.alpnProtocol !== 'h2') {
      tlsSocket.destroy();
      return;
    }
    pinPeerCertificate(tlsSocket);
    // No room for another session of its address (they filled up during its handshake).
    if (hooks.onSecure?.(tlsSocket) === false) {
      tlsSocket.destroy();
      return;
    }
    injector.injectConnection(tlsSocket);
  });
  tlsServer.on('tlsClientError', (err: Error & { code?: string }, tlsSocket: TLSSocket) => {
    hooks.onHandshakeError?.(err, tlsSocket);
    // A handshake timeout only reports; without this the connection would stay open.
    tlsSocket.destroy();
  });
  const sockets = new Set<Socket>();
  const net: NetServer = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (hooks.onConnection && !hooks.onConnection(socket)) {
      socket.destroy();
      return;
    }
    tlsServer.emit('connection', socket);
  });
  await listenOn(net, listen);
  return {
    port: (net.address() as AddressInfo).port,
    setSecureContext: (options) => tlsServer.setSecureContext({ ...tlsOptions, ...options }),
    // Stops accepting at once; open connections are not waited for (clients may hold them open
    // forever): destroyAll() ends them once running tasks had their grace.
    close: () => {
      net.close();
      return Promise.resolve();
    },
    destroyAll: () => {
      for (const s of sockets) s.destroy();
    },
  };
}
