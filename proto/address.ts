/**
 * The one `host:port` parser of gaxx: agent addresses, listen addresses, Redis host lists.
 * Accepts `name:port`, `1.2.3.4:port` and `[v6]:port`; with a default port also a bare host or
 * `[v6]` (and a bare IPv6 address when a default port is given).
 */
import { nodeNet } from './net-builtin.js';
import { GaxxError } from './errors.js';

export interface HostPort {
  /** Without brackets. */
  host: string;
  port: number;
}

export interface ParseHostPortOptions {
  /** Port for an address that has none; without it a port is required. */
  defaultPort?: number;
  /** Accept port 0 (listen on any free port). */
  allowPortZero?: boolean;
  /** What the value is, for the error: 'agent address', '--metrics-listen', ... */
  what?: string;
}

const NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/;

/** Whether `host` is an IP address or a DNS name. */
export function isHostName(host: string): boolean {
  return nodeNet().isIP(host) !== 0 || (host.length <= 253 && NAME.test(host));
}

/** Parses `text`; INVALID_ARGUMENT naming `what` when it is not a valid address. */
export function parseHostPort(text: string, opts: ParseHostPortOptions = {}): HostPort {
  const what = opts.what ?? 'address';
  const bad = (why: string) => new GaxxError('INVALID_ARGUMENT', `${what} '${text}' ${why}`);
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) {
    host = v6[1] as string;
    portText = v6[2];
    if (nodeNet().isIP(host) !== 6) throw bad('has no valid IPv6 address in brackets');
  } else if (text.indexOf(':') !== text.lastIndexOf(':') && nodeNet().isIP(text) === 6) {
    // Only text with two colons or more can be IPv6: Node compiles its IPv6 pattern on first
    // use (~7 ms), which `host:port` need not pay.
    host = text;
  } else {
    const m = /^([^:]+)(?::(\d+))?$/.exec(text);
    if (!m) throw bad('must be HOST:PORT (IPv6 as [ADDR]:PORT)');
    host = m[1] as string;
    portText = m[2];
  }
  if (!isHostName(host)) throw bad('has no valid host name or IP address');
  if (portText === undefined) {
    if (opts.defaultPort === undefined) throw bad('must be HOST:PORT (IPv6 as [ADDR]:PORT)');
    return { host, port: opts.defaultPort };
  }
  const port = Number(portText);
  if (!(port <= 65535 && (port >= 1 || (port === 0 && opts.allowPortZero)))) throw bad(`has port ${portText} out of range`);
  return { host, port };
}

/** `host:port`, bracketing an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return nodeNet().isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Whether `host` is `localhost` or a literal loopback address (127.0.0.0/8, ::1 in any spelling,
 * ::ffff:127.x.y.z). Any other name is not, whatever it looks like (`127.0.0.1.example`): a
 * name is resolved by DNS, which may give any address; `localhost` is resolved by this host
 * alone (and a listener checks the address it bound: isLoopbackAddress).
 */
export function isLoopbackHost(host: string): boolean {
  return host.toLowerCase() === 'localhost' || isLoopbackAddress(host);
}

/** Whether `ip` is a literal loopback address (127.0.0.0/8, ::1 in any spelling, ::ffff:127.x.y.z); a name never is. */
export function isLoopbackAddress(ip: string): boolean {
  const kind = nodeNet().isIP(ip);
  if (kind === 4) return ip.startsWith('127.');
  if (kind !== 6) return false;
  const h = new URL(`http://[${ip}]`).hostname;
  // The URL parser writes a mapped IPv4 address in hex: ::ffff:7f00:1 for ::ffff:127.0.0.1.
  return h === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(h);
}
