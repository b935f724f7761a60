/**
 * Keepalive policing: grpc-js does not limit how often a client may PING, and every PING costs
 * the agent an ACK. A PING closer than `minPingIntervalMs` to the previous one is a strike; more
 * than `maxPingStrikes` strikes in a row and the connection is cut with GOAWAY
 * ENHANCE_YOUR_CALM, as gRPC's own servers do ("too_many_pings").
 */
import { EventEmitter } from 'node:events';
import { constants as h2, type Http2Session } from 'node:http2';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { normalizeAddress } from './blocklist.js';

/** Ping policy: spacing and the number of tolerated early pings. */
export interface PingPolicy {
  minPingIntervalMs: number;
  maxPingStrikes: number;
}

/**
 * Pure strike counter: feed it PING arrival times; it says when the peer must be cut. A PING
 * after a well-spaced interval clears the strikes.
 */
export class PingStrikes {
  private last = Number.NEGATIVE_INFINITY;
  private strikes = 0;

  constructor(private readonly policy: PingPolicy) {}

  /** Records a PING at `nowMs`; true when the peer has now exceeded its strikes. */
  onPing(nowMs: number): boolean {
    if (nowMs - this.last < this.policy.minPingIntervalMs) this.strikes += 1;
    else this.strikes = 0;
    this.last = nowMs;
    return this.strikes > this.policy.maxPingStrikes;
  }
}

/** The part of grpc-js's connection injector the hook needs. */
export interface Injector {
  injectConnection(connection: Duplex): void;
}

/**
 * Calls `onSession` for every HTTP/2 session grpc-js creates behind `injector`. grpc-js keeps its
 * http2 server private, and Node links an injected socket to that server through a `server`
 * symbol; so a throwaway loopback connection is injected once to find the server, and its
 * 'session' event is subscribed. Resolves false when that link is missing (policing inactive).
 */
export async function hookSessions(injector: Injector, onSession: (session: Http2Session) => void): Promise<boolean> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
  try {
    const { port } = probe.address() as AddressInfo;
    const accepted = new Promise<Socket>((resolve) => probe.once('connection', resolve));
    const client = connect({ host: '127.0.0.1', port });
    client.on('error', () => undefined);
    const sock = await accepted;
    sock.on('error', () => undefined);
    injector.injectConnection(sock);
    const sym = Object.getOwnPropertySymbols(sock).find((x) => x.description === 'server');
    const server: unknown = sym ? (sock as unknown as Record<symbol, unknown>)[sym] : undefined;
    client.destroy();
    sock.destroy();
    if (!(server instanceof EventEmitter)) return false;
    server.on('session', (session: Http2Session) => onSession(session));
    return true;
  } finally {
    probe.close();
  }
}

/** Polices the PINGs of `session`; `onViolation` runs once when the peer is cut. */
export function policePings(session: Http2Session, policy: PingPolicy, onViolation: () => void): void {
  const strikes = new PingStrikes(policy);
  let cut = false;
  session.on('ping', () => {
    if (cut || !strikes.onPing(Date.now())) return;
    cut = true;
    onViolation();
    try {
      session.goaway(h2.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from('too_many_pings'));
    } catch {
      /* already closing */
    }
    // Give the GOAWAY a moment to leave, then drop the connection whatever the peer does.
    setTimeout(() => session.destroy(), 100).unref();
  });
}

/**
 * Polices the PINGs on every connection behind `injector`; `onViolation` gets the peer address.
 * Resolves false when sessions cannot be observed (the caller reports policing as inactive).
 */
export function installPingPolicing(injector: Injector, policy: PingPolicy, onViolation: (address: string) => void): Promise<boolean> {
  return hookSessions(injector, (session) => {
    const address = normalizeAddress(session.socket?.remoteAddress);
    policePings(session, policy, () => onViolation(address));
  });
}
