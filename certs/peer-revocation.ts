/**
 * The serials a client refuses in an agent's certificate, and whether its own is one of them
 * (ownCertificateRevoked). A cert dir's own revoked.json is a
 * copy made when the dir was written; on the controller the CA's signed list
 * (<config>/ca/revoked.json, re-signed by `gaxx certs revoke` and by rotation) is the freshest,
 * so clients there refuse the union of both. Only node:crypto: `gaxx exec` pays one read and one
 * signature check, and a long-lived process (the scheduler daemon) one stat per new connection
 * to see a list re-signed since.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CertBundle } from './certdir.js';
import { REVOCATION_FILE, verifyRevocationList } from './revocation.js';

const NONE: ReadonlySet<string> = new Set();

/**
 * The CA dir's list, verified against `bundle.cas`, read again only when the file changed (the
 * list is replaced by rename, so its inode changes). A missing, unreadable or unverifiable list
 * counts as empty: the bundle's own list still applies.
 */
function caListReader(caDir: string, bundle: CertBundle): () => ReadonlySet<string> {
  const path = join(caDir, REVOCATION_FILE);
  let seen: string | undefined;
  let union = bundle.revoked as ReadonlySet<string>;
  return () => {
    let key = '';
    try {
      const st = statSync(path, { throwIfNoEntry: false });
      if (st) key = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      // Unreadable directory: as if absent.
    }
    if (key === seen) return union;
    seen = key;
    let serials = NONE;
    if (key !== '') {
      try {
        serials = verifyRevocationList(readFileSync(path, 'utf8'), bundle.cas).serials;
      } catch {
        // Not signed by a CA this bundle trusts (another CA, a damaged file): not ours to apply.
      }
    }
    union = serials.size === 0 ? bundle.revoked : new Set([...bundle.revoked, ...serials]);
    return union;
  };
}

/**
 * `bundle` with the CA dir's revocation list added for the peers it talks to (see
 * revokedPeerSerials); `caDir` undefined leaves the bundle as it is.
 */
export function withCaRevocations(bundle: CertBundle, caDir: string | undefined): CertBundle {
  if (caDir === undefined) return bundle;
  return { ...bundle, peerRevoked: caListReader(caDir, bundle) };
}

/** The serials to refuse in a peer's certificate: the bundle's list, plus its CA dir's when it has one. */
export function revokedPeerSerials(bundle: CertBundle): ReadonlySet<string> {
  return bundle.peerRevoked?.() ?? bundle.revoked;
}

/**
 * Whether `bundle`'s own certificate is revoked: by its dir's list, or by its CA dir's when it
 * has one (withCaRevocations). A cert dir's list is a copy made when the dir was written: a
 * `gaxx certs revoke` since then is in the CA's list only.
 */
export function ownCertificateRevoked(bundle: CertBundle): boolean {
  return revokedPeerSerials(bundle).has(bundle.summary.serial);
}
