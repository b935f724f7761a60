/**
 * Revocation: a list of revoked serials signed by the CA key (RSA-SHA256 over a canonical JSON
 * payload). Agents load it from their cert dir and refuse those serials on every call.
 */
import { createPrivateKey, sign, verify, type X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { GaxxError } from '../proto/index.js';
import { normalizeSerial } from './identity.js';

export const REVOCATION_FILE = 'revoked.json';

const SignedList = z.object({
  version: z.literal(1),
  issuedAtMs: z.number().int().nonnegative(),
  serials: z.array(z.string()),
  signature: z.string(),
});

function payload(serials: string[], issuedAtMs: number): Buffer {
  return Buffer.from(JSON.stringify({ version: 1, issuedAtMs, serials }));
}

/** A signed revocation list (JSON text) for `serials`. */
export function signRevocationList(caKeyPem: string, serials: Iterable<string>, issuedAtMs = Date.now()): string {
  const list = [...new Set([...serials].map(normalizeSerial))].sort();
  const signature = sign('sha256', payload(list, issuedAtMs), createPrivateKey(caKeyPem)).toString('base64');
  return `${JSON.stringify({ version: 1, issuedAtMs, serials: list, signature }, null, 2)}\n`;
}

/** The revoked serials of a list signed by one of `cas`; CERT_INVALID when the signature fails. */
export function verifyRevocationList(text: string, cas: X509Certificate[]): { serials: Set<string>; issuedAtMs: number } {
  let parsed: z.infer<typeof SignedList>;
  try {
    parsed = SignedList.parse(JSON.parse(text));
  } catch (e) {
    throw new GaxxError('CERT_INVALID', 'revocation list is malformed', { cause: e });
  }
  const data = payload(parsed.serials, parsed.issuedAtMs);
  const sig = Buffer.from(parsed.signature, 'base64');
  if (!cas.some((ca) => verify('sha256', data, ca.publicKey, sig))) {
    throw new GaxxError('CERT_INVALID', 'revocation list is not signed by the fleet CA');
  }
  return { serials: new Set(parsed.serials.map(normalizeSerial)), issuedAtMs: parsed.issuedAtMs };
}
