/**
 * The dashboard's HTTP side: who may ask (a random token, as notebook servers use; a Host
 * header naming the loopback address, against DNS rebinding), the headers every answer carries
 * (a Content-Security-Policy allowing only this origin, no caching, no referrer so the token
 * never leaks) and the listening rules: loopback by default; any other address only over TLS
 * with a client certificate from the fleet CA, and the token still required. Anyone who may
 * connect gets little of the process without the token: a bounded number of connections, each
 * closed unless its request comes within seconds (guardConnections).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { formatHostPort, GaxxError, isLoopbackAddress, isLoopbackHost, nodeHttp, nodeHttps, nodeNet, parseHostPort } from '../../proto/index.js';

/** The header a state-changing request must carry the token in (a cross-site form cannot set it). */
export const TOKEN_HEADER = 'x-gaxx-token';

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'cross-origin-resource-policy': 'same-origin',
};

/**
 * The most connections a dashboard keeps open at once. A browser tab holds about 6 and an event
 * stream (at most 32 of them, sse.ts), a Prometheus one: a few dozen are plenty. Unbounded, any
 * local process (a task of a local fleet too, sharing the host's loopback) could open
 * connections without the token until this process had no file descriptor left, and the
 * scheduler daemon that serves the dashboard none for its agents, Redis or files.
 */
export const MAX_CONNECTIONS = 128;

/**
 * How long a connection may take to send its request (headers and body: the dashboard's are
 * small). Node's defaults (60 s for the headers, checked every 30 s; 5 min for the body) let a
 * connection that sends nothing, or a byte now and then, hold its slot a minute or more.
 */
export const REQUEST_TIMEOUT_MS = 10_000;

/** The server options that apply REQUEST_TIMEOUT_MS (a TLS handshake gets as long). */
const SERVER_TIMEOUTS = {
  headersTimeout: REQUEST_TIMEOUT_MS,
  requestTimeout: REQUEST_TIMEOUT_MS,
  connectionsCheckingInterval: 1000,
};

/** Marks a connection as one that showed the token: it is never closed to make room. */
export type Trust = (socket: Socket) => void;

/**
 * Keeps at most `max` connections open on `server`: one past them closes the oldest that never
 * showed the token (an operator's page and event stream stay; a flood only displaces itself), or
 * itself when every other one did. Every TCP connection counts from its start, a TLS one before
 * and during its handshake too: connections that never begin one would otherwise fill the
 * server's `maxConnections` for as long as the handshake timeout, every new one refused
 * meanwhile, the operator's too. Returns how to mark a connection trusted (for TLS, the TLS
 * socket a request came on: its TCP connection is the one kept).
 */
export function guardConnections(server: Server, tls: boolean, max = MAX_CONNECTIONS): Trust {
  const open = new Set<Socket>(); // in the order they came
  const trusted = new WeakSet<Socket>();
  /** A TLS connection's TCP socket (the one counted), by its TLS socket (the one requests come on). */
  const tcpOf = new WeakMap<Socket, Socket>();
  server.maxConnections = 2 * max;
  if (tls)
    server.on('secureConnection', (t: Socket) => {
      // One TCP connection per peer address and port at a time: the one this handshake was on.
      for (const s of open) if (s.remotePort === t.remotePort && s.remoteAddress === t.remoteAddress) tcpOf.set(t, s);
    });
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    if (open.size <= max) return;
    let victim = socket;
    for (const s of open) {
      if (trusted.has(s)) continue;
      victim = s;
      break;
    }
    open.delete(victim);
    victim.destroy();
  });
  return (socket) => void trusted.add(tcpOf.get(socket) ?? socket);
}

/** A fresh token: 32 random bytes, URL-safe. */
export const newToken = (): string => randomBytes(32).toString('base64url');

/** Splits a listen address (port 0: any free port); INVALID_ARGUMENT when it is not one. */
export function splitListen(addr: string): { host: string; port: number } {
  return parseHostPort(addr, { allowPortZero: true, what: 'dashboard listen address' });
}

function sameToken(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** What a handler learns about a request that passed the checks. */
export interface Authed {
  url: URL;
}

export interface GateOptions {
  token: string;
  /** Paths served without a token (e.g. /metrics on loopback, the page's static files). */
  open?: ReadonlySet<string>;
  /** Host header values accepted (loopback listeners); undefined: any. */
  hosts?: ReadonlySet<string>;
  /** Told of each connection whose request showed the token (guardConnections). */
  trust?: Trust;
}

/**
 * Checks a request: Host, then token (for GET, in the query; for POST, in the header only).
 * Answers the refusal itself (421 wrong host, 401 no or bad token) and returns undefined then.
 * No cookie carries the token: a browser sends a cookie of 127.0.0.1 to every port of it, so a
 * page any program serves on another loopback port (a task's, on a local fleet) would get it.
 */
export function gate(req: IncomingMessage, res: ServerResponse, o: GateOptions): Authed | undefined {
  const host = req.headers.host ?? '';
  if (o.hosts && !o.hosts.has(host.toLowerCase())) {
    res.writeHead(421, { ...SECURITY_HEADERS, 'content-type': 'text/plain' }).end('misdirected request\n');
    return undefined;
  }
  const url = new URL(req.url ?? '/', 'http://x');
  if (o.open?.has(url.pathname) && req.method === 'GET') return { url };
  const query = url.searchParams.get('token') ?? undefined;
  const header = req.headers[TOKEN_HEADER];
  const ok = req.method === 'GET' || req.method === 'HEAD' ? sameToken(query, o.token) : sameToken(typeof header === 'string' ? header : undefined, o.token);
  if (!ok) {
    res.writeHead(401, { ...SECURITY_HEADERS, 'content-type': 'text/plain' }).end('unauthorized: open the URL with the token that gaxx printed\n');
    return undefined;
  }
  o.trust?.(req.socket);
  return { url };
}

export interface ListenOptions {
  listen: string;
  /** What to do when something already listens on `listen` (the flag that picks another address). */
  inUse?: string;
  /** Required off loopback: server certificate, key and the CA whose client certificates are let in. */
  tls?: SecureContextOptions;
}

/**
 * An HTTP server, or HTTPS requiring a client certificate from `tls`'s CA, with the request
 * timeouts and connection bound of guardConnections; returns it and how to trust a connection.
 */
export function guardedServer(
  tls: SecureContextOptions | undefined,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): { server: Server; trust: Trust } {
  const server: Server = tls
    ? nodeHttps().createServer({ ...tls, requestCert: true, rejectUnauthorized: true, handshakeTimeout: REQUEST_TIMEOUT_MS, ...SERVER_TIMEOUTS }, handler)
    : nodeHttp().createServer(SERVER_TIMEOUTS, handler);
  return { server, trust: guardConnections(server, tls !== undefined) };
}

/** Starts an HTTP(S) server per the listening rules; resolves with it, its bound address and how to trust a connection. */
export async function listen(
  o: ListenOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; host: string; port: number; loopback: boolean; trust: Trust }> {
  const { host, port } = splitListen(o.listen);
  const loopback = isLoopbackHost(host);
  if (!loopback && !o.tls)
    throw notLoopback(`the dashboard on ${o.listen}`, host, 'needs TLS with client certificates; listen on 127.0.0.1 or give a server certificate');
  const { server, trust } = guardedServer(o.tls, handler);
  await bindServer(server, {
    listen: o.listen,
    host,
    port,
    loopback: loopback && !o.tls,
    what: 'the dashboard',
    fail: (e) => listenFailure('cannot listen', o.listen, e, o.inUse),
  });
  return { server, host, port: (server.address() as AddressInfo).port, loopback, trust };
}

/**
 * CONFIG_INVALID: `what` on `host` is not on loopback and `needs` more. A host name other than
 * localhost is said to be one, whatever it looks like (`127.0.0.1.example`): DNS resolves it.
 */
export function notLoopback(what: string, host: string, needs: string): GaxxError {
  const name = nodeNet().isIP(host) === 0;
  return new GaxxError(
    'CONFIG_INVALID',
    `${what} (${name ? `'${host}' is a host name, resolved by DNS to any address: only localhost and loopback addresses count as loopback` : 'not loopback'}) ${needs}`,
  );
}

/**
 * Listens `server` on `host:port` (`fail` turns a listen error into ours). A listener judged
 * loopback by its name must be bound to a loopback address: `localhost` is resolved by this
 * host, whose hosts file could name another; a server bound elsewhere is closed, CONFIG_INVALID.
 */
export async function bindServer(
  server: Server,
  o: { listen: string; host: string; port: number; loopback: boolean; what: string; fail: (e: NodeJS.ErrnoException) => GaxxError },
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(o.fail(e)));
    server.listen(o.port, o.host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).address;
  if (!o.loopback || isLoopbackAddress(bound)) return;
  await new Promise((r) => server.close(r));
  throw new GaxxError('CONFIG_INVALID', `${o.what} on ${o.listen} was bound to ${bound}, not a loopback address; listen on 127.0.0.1`);
}

/**
 * FAILED_PRECONDITION for a server that could not listen on `listen`, saying why in words and
 * what to do: `inUse` when the address is taken (which flag picks another), the fix for a
 * privileged port or an address this machine does not have. `details.errno` is Node's code.
 */
export function listenFailure(what: string, listen: string, e: NodeJS.ErrnoException, inUse?: string): GaxxError {
  const why =
    e.code === 'EADDRINUSE'
      ? `something already listens there (EADDRINUSE)${inUse ? `: ${inUse}` : ''}`
      : e.code === 'EACCES'
        ? 'permission denied (EACCES): a port below 1024 needs privileges, pick a higher one'
        : e.code === 'EADDRNOTAVAIL'
          ? 'no interface of this machine has that address (EADDRNOTAVAIL)'
          : (e.code ?? e.message);
  return new GaxxError('FAILED_PRECONDITION', `${what} on ${listen}: ${why}`, { cause: e, details: { errno: e.code, listen } });
}

/** Host header values that name a loopback listener on `port`. */
export function loopbackHosts(host: string, port: number): Set<string> {
  const names = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  names.add(formatHostPort(host, port));
  return names;
}
