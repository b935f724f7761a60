/**
 * A certificate directory as agents and clients use it: cert.pem, key.pem (0600), ca.pem (one or
 * more CAs, for overlap during CA rotation) and an optional signed revoked.json.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GaxxError, makeDirs, withFileLockSync } from '../proto/index.js';
import { REVOCATION_FILE, verifyRevocationList } from './revocation.js';
import { readPrivateFile, readRequiredFile, writeFileAtomic, type WriteOptions } from './store.js';
import { parseCertificate, splitPemBundle, summarizeCertificate, verifyLeaf, type CertSummary } from './verify.js';

export const CERT_FILE = 'cert.pem';
export const KEY_FILE = 'key.pem';
export const CA_FILE = 'ca.pem';

/** A loaded, verified cert dir. */
export interface CertBundle {
  dir: string;
  certPem: Buffer;
  keyPem: Buffer;
  caPem: Buffer;
  cert: X509Certificate;
  cas: X509Certificate[];
  summary: CertSummary;
  revoked: Set<string>;
  /** When the revocation list in force was signed; undefined when the dir has none. */
  revocationIssuedAtMs?: number | undefined;
  /** The revocation list's text as signed (kept so a holder can persist the newest it saw). */
  revokedText?: string | undefined;
  /**
   * The serials to refuse in a peer's certificate when they are more than `revoked` (the
   * controller CA's fresher list: withCaRevocations). Read it through revokedPeerSerials.
   */
  peerRevoked?: (() => ReadonlySet<string>) | undefined;
  /**
   * What to do when an agent refuses this certificate as revoked, said with the refusal: who
   * made the bundle knows (gaxx re-issues its local ones itself; `gaxx init` the operator's).
   */
  revokedHint?: string | undefined;
}

/** The lock a cert dir is written holding (in the dir; the claim's own files start with it too: claim-file.ts). */
const CERT_DIR_LOCK = '.lock';

/**
 * Writes a cert dir: cert.pem and ca.pem 0644, key.pem 0600, revoked.json when given (`opts`: see
 * writeFileAtomic). Written holding the dir's lock (CERT_DIR_LOCK): two gaxx writing one dir at
 * once (two runs issuing the local scheduler certificate) leave one's files, not one's key beside
 * the other's certificate.
 */
export function writeCertDir(dir: string, files: { certPem: string; keyPem: string; caPem: string; revokedText?: string }, opts: WriteOptions = {}): void {
  makeDirs(dir, { mode: 0o700 });
  withFileLockSync(join(dir, CERT_DIR_LOCK), `the cert dir ${dir}`, () => {
    writeFileAtomic(join(dir, KEY_FILE), files.keyPem, 0o600, opts);
    writeFileAtomic(join(dir, CERT_FILE), files.certPem, 0o644, opts);
    writeFileAtomic(join(dir, CA_FILE), files.caPem, 0o644, opts);
    if (files.revokedText !== undefined) writeFileAtomic(join(dir, REVOCATION_FILE), files.revokedText, 0o644, opts);
  });
}

/**
 * Loads and checks a cert dir: files present, key 0600, cert signed by a CA in ca.pem and
 * within its validity window, key matching the cert, revocation list signed by a trusted CA.
 */
export function loadCertDir(dir: string, now = new Date()): CertBundle {
  const certPem = readRequiredFile(join(dir, CERT_FILE), 'certificate');
  const keyPem = readPrivateFile(join(dir, KEY_FILE), 'private key');
  const caPem = readRequiredFile(join(dir, CA_FILE), 'CA bundle');
  const revPath = join(dir, REVOCATION_FILE);
  const revokedText = existsSync(revPath) ? readFileSync(revPath, 'utf8') : undefined;
  return certBundle(dir, { certPem, keyPem, caPem, revokedText }, now);
}

/**
 * The bundle of a cert dir's files as held in memory, checked as loadCertDir checks them: what
 * a process has just written into `dir` is used as written, never read back from a dir another
 * process may be rewriting at the same moment.
 */
export function certBundle(
  dir: string,
  files: { certPem: string | Buffer; keyPem: string | Buffer; caPem: string | Buffer; revokedText?: string | undefined },
  now = new Date(),
): CertBundle {
  const [certPem, keyPem, caPem] = [files.certPem, files.keyPem, files.caPem].map((f) => (typeof f === 'string' ? Buffer.from(f) : f)) as [
    Buffer,
    Buffer,
    Buffer,
  ];
  const cert = parseCertificate(certPem);
  const cas = splitPemBundle(caPem).map(parseCertificate);
  if (cas.length === 0) throw new GaxxError('CERT_INVALID', `${join(dir, CA_FILE)} holds no certificate`);
  verifyLeaf(cert, cas, now);
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new GaxxError('CERT_INVALID', `${join(dir, KEY_FILE)} does not match ${join(dir, CERT_FILE)}`);
  const revokedText = files.revokedText;
  const list = revokedText === undefined ? undefined : verifyRevocationList(revokedText, cas);
  const revoked = list?.serials ?? new Set<string>();
  const summary = summarizeCertificate(cert);
  if (revoked.has(summary.serial)) throw new GaxxError('CERT_REVOKED', `certificate ${summary.serial} in ${dir} is revoked`);
  return { dir, certPem, keyPem, caPem, cert, cas, summary, revoked, revocationIssuedAtMs: list?.issuedAtMs, revokedText };
}
