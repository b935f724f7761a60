/**
 * Roles and their SPIFFE-style URIs. Every gaxx certificate carries exactly one URI SAN naming
 * its role: spiffe://gaxx/agent/<fleet>/<host>, or spiffe://gaxx/<operator|scheduler|monitor>/<name>.
 */
import { X509Certificate } from 'node:crypto';
import { GaxxError } from '../proto/index.js';

export const ROLES = ['agent', 'operator', 'scheduler', 'monitor'] as const;
export type Role = (typeof ROLES)[number];

/** A verified certificate's identity. */
export type Identity = { role: 'agent'; fleet: string; host: string } | { role: 'operator' | 'scheduler' | 'monitor'; name: string };

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const SPIFFE_PREFIX = 'spiffe://gaxx/';

/** Throws INVALID_ARGUMENT unless `value` is a safe name segment (fleet, host, operator name). */
export function assertName(value: string, what: string): void {
  if (!NAME.test(value)) {
    throw new GaxxError('INVALID_ARGUMENT', `${what} '${value}' must be 1-63 characters of [A-Za-z0-9._-], starting with a letter or digit`);
  }
}

/** The URI SAN for an identity. */
export function identityUri(id: Identity): string {
  if (id.role === 'agent') {
    assertName(id.fleet, 'fleet');
    assertName(id.host, 'host');
    return `${SPIFFE_PREFIX}agent/${id.fleet}/${id.host}`;
  }
  assertName(id.name, 'name');
  return `${SPIFFE_PREFIX}${id.role}/${id.name}`;
}

/** Parses a role URI; CERT_INVALID for anything but a well-formed gaxx role. */
export function parseIdentityUri(uri: string): Identity {
  if (!uri.startsWith(SPIFFE_PREFIX)) throw new GaxxError('CERT_INVALID', `not a gaxx identity: ${uri}`);
  const parts = uri.slice(SPIFFE_PREFIX.length).split('/');
  const [role, a, b] = parts;
  const ok = (s: string | undefined): s is string => s !== undefined && NAME.test(s);
  if (role === 'agent' && parts.length === 3 && ok(a) && ok(b)) return { role, fleet: a, host: b };
  if ((role === 'operator' || role === 'scheduler' || role === 'monitor') && parts.length === 2 && ok(a)) {
    return { role, name: a };
  }
  throw new GaxxError('CERT_INVALID', `unknown or malformed gaxx role URI: ${uri}`);
}

/** Splits Node's `subjectAltName` string into typed entries. */
export function subjectAltNames(cert: X509Certificate | string | undefined): { uris: string[]; dns: string[]; ips: string[] } {
  const raw = typeof cert === 'string' || cert === undefined ? (cert ?? '') : (cert.subjectAltName ?? '');
  const out = { uris: [] as string[], dns: [] as string[], ips: [] as string[] };
  for (const entry of raw.split(/,\s*/)) {
    if (entry.startsWith('URI:')) out.uris.push(entry.slice(4));
    else if (entry.startsWith('DNS:')) out.dns.push(entry.slice(4));
    else if (entry.startsWith('IP Address:')) out.ips.push(entry.slice(11));
  }
  return out;
}

/**
 * The identity named by a certificate's single URI SAN. A certificate with zero or several URI
 * SANs, or a URI that names no known role, is CERT_INVALID.
 */
export function identityFromSan(subjectAltName: string | undefined): Identity {
  const { uris } = subjectAltNames(subjectAltName);
  if (uris.length !== 1) {
    throw new GaxxError('CERT_INVALID', `a gaxx certificate carries exactly one URI SAN; this one has ${uris.length}`);
  }
  return parseIdentityUri(uris[0] as string);
}

/** Human form of an identity, e.g. `agent web/h1` or `operator alice`. */
export function describeIdentity(id: Identity): string {
  return id.role === 'agent' ? `agent ${id.fleet}/${id.host}` : `${id.role} ${id.name}`;
}

/** Normalizes a serial number to upper-case hex without leading zeros. */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]+$/.test(hex)) throw new GaxxError('INVALID_ARGUMENT', `serial '${serial}' is not hexadecimal`);
  return hex.replace(/^0+(?=.)/, '');
}
