/**
 * The dashboard's HTTP side: who may ask (a random token, as notebook servers use; a Host
 * header naming the loopback address, against DNS rebinding), the headers every answer carries
 * (a Content-Security-Policy allowing only this origin, no caching, no referrer so the token
 * never leaks) and the listening rules: loopback by default; any other address only over TLS
 * with a client certificate from the fleet CA, and the token still required.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { formatHostPort, GaxxError, isLoopbackHost, nodeHttp, nodeHttps, parseHostPort } from '../../proto/index.js';

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
  return { url };
}

export interface ListenOptions {
  listen: string;
  /** What to do when something already listens on `listen` (the flag that picks another address). */
  inUse?: string;
  /** Required off loopback: server certificate, key and the CA whose client certificates are let in. */
  tls?: SecureContextOptions;
}

/** Starts an HTTP(S) server per the listening rules; resolves with it and its bound address. */
export async function listen(
  o: ListenOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; host: string; port: number; loopback: boolean }> {
  const { host, port } = splitListen(o.listen);
  const loopback = isLoopbackHost(host);
  if (!loopback && !o.tls) {
    throw new GaxxError(
      'CONFIG_INVALID',
      `the dashboard on ${o.listen} (not loopback) needs TLS with client certificates; listen on 127.0.0.1 or give a server certificate`,
    );
  }
  const server: Server = o.tls
    ? nodeHttps().createServer({ ...o.tls, requestCert: true, rejectUnauthorized: true }, handler)
    : nodeHttp().createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(listenFailure('cannot listen', o.listen, e, o.inUse)));
    server.listen(port, host, () => resolve());
  });
  return { server, host, port: (server.address() as AddressInfo).port, loopback };
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
