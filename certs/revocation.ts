/**
 * Revocation: a list of revoked serials signed by the CA key (RSA-SHA256 over a canonical JSON
 * payload). Agents load it from their cert dir and refuse those serials on every call.
 */
import { createPrivateKey, sign, verify, type X509Certificate } from 'node:crypto';
import { GaxxError } from '../proto/index.js';
import { normalizeSerial } from './identity.js';

export const REVOCATION_FILE = 'revoked.json';

/** A revocation list as it is stored (other keys are ignored). */
interface SignedList {
  version: 1;
  issuedAtMs: number;
  serials: string[];
  signature: string;
}

/**
 * `value` as a SignedList, or why it is not one. Checked by hand, not with zod: every command
 * that connects to an agent reads a list, and setting zod up would cost it more than the rest of
 * the check (cli/zod.cjs).
 */
function signedList(value: unknown): SignedList | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const v = value as Record<string, unknown>;
  if (v.version !== 1) return 'version must be 1';
  if (typeof v.issuedAtMs !== 'number' || !Number.isSafeInteger(v.issuedAtMs) || v.issuedAtMs < 0) return 'issuedAtMs must be a whole number >= 0';
  if (!Array.isArray(v.serials) || !v.serials.every((x) => typeof x === 'string')) return 'serials must be a list of strings';
  if (typeof v.signature !== 'string') return 'signature must be a string';
  return { version: 1, issuedAtMs: v.issuedAtMs, serials: v.serials as string[], signature: v.signature };
}

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
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new GaxxError('CERT_INVALID', 'revocation list is malformed: not valid JSON', { cause: e });
  }
  const parsed = signedList(json);
  if (typeof parsed === 'string') throw new GaxxError('CERT_INVALID', `revocation list is malformed: ${parsed}`);
  const data = payload(parsed.serials, parsed.issuedAtMs);
  const sig = Buffer.from(parsed.signature, 'base64');
  if (!cas.some((ca) => verify('sha256', data, ca.publicKey, sig))) {
    throw new GaxxError('CERT_INVALID', 'revocation list is not signed by the fleet CA');
  }
  return { serials: new Set(parsed.serials.map(normalizeSerial)), issuedAtMs: parsed.issuedAtMs };
}
