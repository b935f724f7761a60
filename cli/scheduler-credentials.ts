/**
 * The certificate queued work reaches agents with. `gaxx run` and `gaxx scheduler` use a
 * scheduler-role client certificate (`spiffe://gaxx/scheduler/local`) kept in
 * `<state>/scheduler/certs`, issued from this installation's CA on first use and re-issued when
 * it is past 2/3 of its lifetime. The operator certificate is kept for direct `gaxx exec`, so an
 * agent's audit log tells queued work from interactive commands. A scheduler on a machine
 * without the CA is given a cert dir instead (`gaxx scheduler --certs DIR`). The dashboard's
 * monitor certificate (`monitor/local`, in `<state>/monitor/certs`) is handled the same way.
 *
 * A kept certificate is judged against the CA's own revocation list (`<config>/ca/revoked.json`,
 * the one `gaxx certs revoke` re-signs), never only against the copy its dir got when it was
 * issued: that copy never learns of a later revocation, and a revoked scheduler certificate kept
 * in use had every task refused by the agents for good. A local one that is revoked, expired or
 * otherwise unusable is issued anew, with a note; a dir the user gave is refused, saying what to
 * do. A long-lived process (the daemon, a long run, the dashboard) holds a CredentialSource that
 * looks again before each call when the dir or the CA's list changed.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  CERT_FILE,
  FleetCa,
  REVOCATION_FILE,
  certBundle,
  loadCertDir,
  ownCertificateRevoked,
  renewalDue,
  withCaRevocations,
  writeCertDir,
  type CertBundle,
  type CredentialSource,
} from '../certs/index.js';
import { GaxxError, isGaxxError } from '../proto/index.js';
import type { GaxxPaths } from './paths.js';

/** Where the local scheduler certificate lives. */
export function schedulerCertDir(paths: GaxxPaths): string {
  return join(paths.stateDir, 'scheduler', 'certs');
}

/** Where the local monitor certificate (`gaxx ui`, the daemon's dashboard) lives. */
export function monitorCertDir(paths: GaxxPaths): string {
  return join(paths.stateDir, 'monitor', 'certs');
}

type Role = 'scheduler' | 'monitor';

export interface CredentialOptions {
  /** A cert dir the user gave (`gaxx scheduler --certs DIR`): used as it is, never re-issued. */
  dir?: string | undefined;
  /** The CA whose revocation list agents are refused by too (default: this installation's). */
  caDir?: string | undefined;
  /** Told when gaxx issued a local certificate anew because the one kept was revoked or unusable. */
  note?: (text: string) => void;
}

export interface SourceOptions extends CredentialOptions {
  /** Told when a certificate in force turned unusable and no new one could be had (the old one stays in force). */
  error?: (text: string) => void;
}

/**
 * The scheduler certificate: `dir` when given, else the local one (issued when missing, due,
 * revoked or unusable). Agents whose serial the CA in `caDir` revoked are refused too.
 */
export async function schedulerCredentials(paths: GaxxPaths, opts: CredentialOptions = {}): Promise<CertBundle> {
  return credentials(paths, 'scheduler', opts);
}

/**
 * The monitor certificate (`spiffe://gaxx/monitor/local`) the dashboard asks agents with: it may
 * read Info, Health and metrics, and run nothing.
 */
export async function monitorCredentials(paths: GaxxPaths, opts: Omit<CredentialOptions, 'dir'> = {}): Promise<CertBundle> {
  return credentials(paths, 'monitor', opts);
}

/** schedulerCredentials for a long-lived process: looked at again when its dir or the CA's list changes. */
export async function schedulerCredentialSource(paths: GaxxPaths, opts: SourceOptions = {}): Promise<CredentialSource> {
  return source(paths, 'scheduler', opts);
}

/** monitorCredentials for a long-lived process (the dashboard): looked at again when its dir or the CA's list changes. */
export async function monitorCredentialSource(paths: GaxxPaths, opts: Omit<SourceOptions, 'dir'> = {}): Promise<CredentialSource> {
  return source(paths, 'monitor', opts);
}

function credentials(paths: GaxxPaths, role: Role, opts: CredentialOptions): Promise<CertBundle> {
  const caDir = opts.caDir ?? paths.caDir;
  return opts.dir ? Promise.resolve(givenCredentials(role, opts.dir, caDir)) : localCredentials(paths, role, caDir, opts.note);
}

/** What to do about a revoked or expired certificate in a dir the user gave. */
const givenHint = (role: Role, dir: string): string =>
  `put a new certificate in ${dir} (gaxx certs issue --role ${role} --name NAME --out NEWDIR on the machine with the CA, then its files there; a running gaxx scheduler loads it at its next call)`;

/** A cert dir the user gave: loaded as it is, refused (saying what to do) when revoked or expired. */
function givenCredentials(role: Role, dir: string, caDir: string): CertBundle {
  let b: CertBundle;
  try {
    b = withCaRevocations(loadCertDir(dir), caDir);
  } catch (e) {
    if (isGaxxError(e, 'CERT_REVOKED') || isGaxxError(e, 'CERT_EXPIRED')) throw new GaxxError(e.code, `${e.message}: ${givenHint(role, dir)}`, { cause: e });
    throw e;
  }
  if (ownCertificateRevoked(b))
    throw new GaxxError(
      'CERT_REVOKED',
      `the ${role} certificate ${b.summary.serial} in ${dir} is revoked (${join(caDir, REVOCATION_FILE)}): ${givenHint(role, dir)}`,
    );
  return { ...b, revokedHint: givenHint(role, dir) };
}

/**
 * A local `<role>/local` certificate in its state dir, issued from the CA when missing, due,
 * revoked by the CA's current list, or not usable (expired, damaged, half written): the dir is
 * gaxx's own, and what it held is of no more use to anyone. Returned as issued (not read back: a
 * concurrent gaxx may be rewriting the dir).
 */
async function localCredentials(paths: GaxxPaths, role: Role, caDir: string, note: ((text: string) => void) | undefined): Promise<CertBundle> {
  const local = role === 'scheduler' ? schedulerCertDir(paths) : monitorCertDir(paths);
  const hint = `gaxx replaces a local certificate that ${join(paths.caDir, REVOCATION_FILE)} revokes at its next use (the next run, the daemon's next call)`;
  /** Why the kept one is not used, for the note; undefined when there was none or it is merely due. */
  let why: string | undefined;
  if (existsSync(join(local, CERT_FILE))) {
    try {
      const kept = loadCertDir(local);
      // Revoked by the CA that issued it (its list, not the dir's copy of it).
      if (ownCertificateRevoked(withCaRevocations(kept, paths.caDir))) why = `the ${role} certificate ${kept.summary.serial} in ${local} is revoked`;
      else if (!renewalDue(kept.cert)) return { ...withCaRevocations(kept, caDir), revokedHint: hint };
    } catch (e) {
      if (!isGaxxError(e) || !(e.code.startsWith('CERT_') || e.code === 'NOT_FOUND')) throw e;
      why = `the ${role} certificate in ${local} is not usable (${e.message})`;
    }
  }
  let ca: FleetCa;
  try {
    ca = FleetCa.open(paths.caDir);
  } catch (e) {
    if (isGaxxError(e, 'NOT_FOUND'))
      throw new GaxxError('NOT_FOUND', `no CA in ${paths.caDir} to issue the ${role} certificate: run 'gaxx init' first`, { cause: e });
    throw e;
  }
  const made = await ca.issue({ identity: { role, name: 'local' } });
  const files = { certPem: made.certPem, keyPem: made.keyPem, caPem: ca.certPem, revokedText: ca.revocationListText() };
  writeCertDir(local, files);
  const b = certBundle(local, files);
  if (why !== undefined) note?.(`${why}: issued a new one from the local CA, serial ${b.summary.serial}`);
  return { ...withCaRevocations(b, caDir), revokedHint: hint };
}

/** A file's identity and version as stat sees it ('-' when absent): a replaced file (rename) changes it. */
function stamp(path: string): string {
  try {
    const s = statSync(path, { throwIfNoEntry: false });
    return s ? `${s.ino}:${s.size}:${s.mtimeMs}` : '-';
  } catch {
    return '-';
  }
}

/**
 * The credentials of `role` as a source: the bundle in force is kept until its cert.pem or the
 * issuing CA's revoked.json is replaced, or its renewal (a given dir: its end) comes; then it is
 * looked at again as a new process would (a local one re-issued when revoked or due). A look that
 * fails keeps the bundle in force, says why once, and is not tried again before something changes.
 */
async function source(paths: GaxxPaths, role: Role, opts: SourceOptions): Promise<CredentialSource> {
  const dir = opts.dir ?? (role === 'scheduler' ? schedulerCertDir(paths) : monitorCertDir(paths));
  const look = (): Promise<CertBundle> => credentials(paths, role, opts);
  const lists = [join(dir, CERT_FILE), join(opts.dir ? (opts.caDir ?? paths.caDir) : paths.caDir, REVOCATION_FILE)];
  const files = (): string => lists.map(stamp).join('|');
  // A local certificate is re-issued when due; a given one only ends.
  const changeAt = (b: CertBundle): number => {
    const from = b.summary.notBefore.getTime();
    const to = b.summary.notAfter.getTime();
    return opts.dir ? to : from + ((to - from) * 2) / 3;
  };
  let bundle = await look();
  let dueAt = changeAt(bundle);
  const key = (): string => `${files()}|${Date.now() >= dueAt ? 'due' : ''}`;
  let seen = key();
  let looking: Promise<void> | undefined;
  const again = async (): Promise<void> => {
    try {
      const next = await look();
      // The same certificate (another serial revoked, the dir rewritten as it was): the bundle
      // in force stays, and with it the connections made with it.
      if (next.summary.fingerprint256 !== bundle.summary.fingerprint256) {
        bundle = next;
        dueAt = changeAt(next);
      }
    } catch (e) {
      opts.error?.(`${(e as Error).message} (the one in force stays in use meanwhile)`);
    }
    seen = key();
  };
  return {
    current: async () => {
      if (!looking && key() !== seen) looking = again().finally(() => (looking = undefined));
      if (looking) await looking;
      return bundle;
    },
  };
}
