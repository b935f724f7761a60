/**
 * Pinning an agent's identity: TLS already checked that the fleet CA signed the agent's
 * certificate; this checks that the certificate is not revoked, is an agent's and names the host
 * we dialled (and, when asked, the fleet and host we expect), so neither a revoked key nor one
 * agent can stand in for another.
 */
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { describeIdentity, identityFromSan, normalizeSerial } from '../../certs/index.js';
import { formatHostPort, GaxxError, nodeNet, parseHostPort } from '../../proto/index.js';

/** What the caller expects the agent's certificate to name. */
export interface AgentExpectation {
  fleet?: string;
  host?: string;
}

/** Splits 'host:port' / '[v6]:port'; INVALID_ARGUMENT when there is no valid port. */
export function splitAddress(address: string): { host: string; port: number } {
  return parseHostPort(address, { what: 'agent address' });
}

/**
 * The gRPC target for a host and port. An IP address goes to grpc-js's IP resolver (`ipv4:` or
 * `ipv6:`): its default, the DNS resolver, sets up a c-ares channel for every channel (reading
 * /etc/resolv.conf and the like) even for an address that needs no lookup, ~0.2 ms of CPU per new
 * connection (npm run bench:connect's caller). Names go through DNS as before. The authority the
 * agent sees is `host:port` either way.
 */
export function grpcTarget(host: string, port: number): string {
  const family = nodeNet().isIP(host);
  if (family === 4) return `ipv4:${host}:${port}`;
  if (family === 6) return `ipv6:[${host}]:${port}`;
  return formatHostPort(host, port);
}

/** CERT_REVOKED when `cert`'s serial is in `revoked`, naming the serial and who it claims to be. */
function revokedError(dialledHost: string, cert: PeerCertificate, revoked: ReadonlySet<string>): GaxxError | undefined {
  if (revoked.size === 0 || !cert.serialNumber) return undefined;
  let serial: string;
  try {
    serial = normalizeSerial(cert.serialNumber);
  } catch {
    return undefined;
  }
  if (!revoked.has(serial)) return undefined;
  let who = 'a certificate';
  try {
    who = `the certificate of ${describeIdentity(identityFromSan(cert.subjectaltname))}`;
  } catch {
    // No valid identity: the serial says enough.
  }
  return new GaxxError('CERT_REVOKED', `${dialledHost} presented ${who} with serial ${serial}, which is revoked; nothing was sent to it`, {
    details: { serial },
  });
}

/**
 * Checks the agent's certificate against the revocation list, the dialled host and the
 * expectation. Returns the refusal (CERT_REVOKED when `revoked` holds its serial, else
 * IDENTITY_MISMATCH) or undefined when the certificate is acceptable. `revoked`: the serials
 * the caller's credentials refuse (certs revokedPeerSerials).
 */
export function checkAgentCertificate(
  dialledHost: string,
  cert: PeerCertificate,
  expect: AgentExpectation | undefined,
  revoked: ReadonlySet<string>,
): GaxxError | undefined {
  // A revoked key is refused whatever it names.
  const revokedErr = revokedError(dialledHost, cert, revoked);
  if (revokedErr) return revokedErr;
  // Node's own hostname/IP check first (our callback replaces it, so it must be called here).
  const hostErr = checkServerIdentity(dialledHost, cert);
  if (hostErr) return new GaxxError('IDENTITY_MISMATCH', `agent certificate does not name ${dialledHost}: ${hostErr.message}`, { cause: hostErr });
  let id;
  try {
    id = identityFromSan(cert.subjectaltname);
  } catch (e) {
    return new GaxxError('IDENTITY_MISMATCH', `agent at ${dialledHost} presented no valid gaxx identity: ${(e as Error).message}`, { cause: e });
  }
  if (id.role !== 'agent') return new GaxxError('IDENTITY_MISMATCH', `${dialledHost} presented a ${describeIdentity(id)} certificate, not an agent's`);
  if (expect?.fleet !== undefined && id.fleet !== expect.fleet) {
    return new GaxxError('IDENTITY_MISMATCH', `${dialledHost} is ${describeIdentity(id)}, expected fleet ${expect.fleet}`);
  }
  if (expect?.host !== undefined && id.host !== expect.host) {
    return new GaxxError('IDENTITY_MISMATCH', `${dialledHost} is ${describeIdentity(id)}, expected host ${expect.host}`);
  }
  return undefined;
}
