/**
 * The fleet CA on the controller: its key never leaves this directory. Keeps a register of
 * issued certificates (for `gaxx certs list`) and the signed revocation list. Every change of
 * the dir (the CA made, a certificate recorded, a serial revoked) is made holding its lock
 * (`<dir>/.lock`, proto's file-lock.ts), so that gaxx commands run at once neither make two
 * CAs nor lose each other's records or revocations.
 */
import { publicKeyOfCsr } from './csr.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GaxxError, makeDirs, withFileLockSync } from '../proto/index.js';
import { describeIdentity, normalizeSerial, type Identity } from './identity.js';
import { createCaCertificate, issueLeafCertificate, type IssuedCertificate, type LeafOptions } from './issue.js';
import { REVOCATION_FILE, signRevocationList, verifyRevocationList } from './revocation.js';
import { readPrivateFile, readRequiredFile, writeFileAtomic } from './store.js';
import { parseCertificate } from './verify.js';

export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca-key.pem';
const REGISTER_FILE = 'issued.json';
const LOCK_FILE = '.lock';

/** Runs `change` of the CA dir `dir` holding its lock. */
function changingCa<T>(dir: string, change: () => T): T {
  return withFileLockSync(join(dir, LOCK_FILE), `the fleet CA in ${dir}`, change);
}

/** One issued certificate as the register keeps it. */
export interface IssuedRecord {
  serial: string;
  identity: Identity;
  subject: string;
  hosts: string[];
  notBefore: string;
  notAfter: string;
  issuedAt: string;
}

export class FleetCa {
  private constructor(
    readonly dir: string,
    readonly certPem: string,
    private readonly keyPem: string,
  ) {}

  /** Opens the CA in `dir`, creating it first when absent. Re-running is harmless. */
  static async init(dir: string, commonName = 'gaxx fleet CA'): Promise<{ ca: FleetCa; created: boolean }> {
    if (existsSync(join(dir, CA_CERT_FILE))) return { ca: FleetCa.open(dir), created: false };
    const made = await createCaCertificate(commonName);
    makeDirs(dir, { mode: 0o700 });
    // Another gaxx may have made the CA while this one made its key: that one is the CA.
    const created = changingCa(dir, () => {
      if (existsSync(join(dir, CA_CERT_FILE))) return false;
      writeFileAtomic(join(dir, CA_KEY_FILE), made.keyPem, 0o600);
      writeFileAtomic(join(dir, CA_CERT_FILE), made.certPem, 0o644);
      return true;
    });
    return { ca: FleetCa.open(dir), created };
  }

  /** Opens an existing CA; NOT_FOUND when `gaxx init` has not been run. */
  static open(dir: string): FleetCa {
    if (!existsSync(join(dir, CA_CERT_FILE))) {
      throw new GaxxError('NOT_FOUND', `no CA in ${dir}: run 'gaxx init' first`);
    }
    const certPem = readRequiredFile(join(dir, CA_CERT_FILE), 'CA certificate').toString();
    const keyPem = readPrivateFile(join(dir, CA_KEY_FILE), 'CA key').toString();
    return new FleetCa(dir, certPem, keyPem);
  }

  /** Issues a leaf and records it in the register. */
  async issue(opts: LeafOptions): Promise<IssuedCertificate> {
    const made = await issueLeafCertificate({ certPem: this.certPem, keyPem: this.keyPem }, opts);
    const rec: IssuedRecord = {
      serial: made.serial,
      identity: opts.identity,
      subject: describeIdentity(opts.identity),
      hosts: opts.hosts ?? [],
      notBefore: made.notBefore.toISOString(),
      notAfter: made.notAfter.toISOString(),
      issuedAt: new Date().toISOString(),
    };
    changingCa(this.dir, () => writeFileAtomic(join(this.dir, REGISTER_FILE), JSON.stringify([...this.list(), rec], null, 2), 0o600));
    return made;
  }

  /**
   * Issues a leaf for the key of a certificate request (renewal without moving a private key):
   * the request's signature must verify; the identity and hosts come from `opts`, never from it.
   */
  async issueForCsr(csrPem: string, opts: Omit<LeafOptions, 'publicKeyPem'>): Promise<IssuedCertificate> {
    return this.issue({ ...opts, publicKeyPem: await publicKeyOfCsr(csrPem) });
  }

  /** Every certificate this CA issued, oldest first. */
  list(): IssuedRecord[] {
    const p = join(this.dir, REGISTER_FILE);
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as IssuedRecord[]) : [];
  }

  /** Serials revoked so far (verified against this CA). */
  revoked(): Set<string> {
    const p = join(this.dir, REVOCATION_FILE);
    if (!existsSync(p)) return new Set();
    return verifyRevocationList(readFileSync(p, 'utf8'), [parseCertificate(this.certPem)]).serials;
  }

  /**
   * Revokes `serial` and re-signs the list. NOT_FOUND when this CA never issued it.
   * Returns the new signed list text, to be pushed to agents.
   */
  revoke(serial: string): string {
    return this.revokeAll([serial]);
  }

  /** Revokes every serial of `serials` with one re-signed list (NOT_FOUND, revoking none, when this CA never issued one). */
  revokeAll(serials: Iterable<string>): string {
    const add = [...serials].map(normalizeSerial);
    return changingCa(this.dir, () => {
      const issued = new Set(this.list().map((r) => r.serial));
      const unknown = add.find((s) => !issued.has(s));
      if (unknown !== undefined) throw new GaxxError('NOT_FOUND', `no certificate with serial ${unknown} was issued by this CA`);
      return this.writeRevocationList([...this.revoked(), ...add]);
    });
  }

  /** The current signed revocation list text (an empty one when nothing is revoked). */
  revocationListText(): string {
    const p = join(this.dir, REVOCATION_FILE);
    if (existsSync(p)) return readFileSync(p, 'utf8');
    // Written once, by one gaxx: a second writer would replace a list a revoke wrote meanwhile.
    return changingCa(this.dir, () => (existsSync(p) ? readFileSync(p, 'utf8') : this.writeRevocationList([])));
  }

  private writeRevocationList(serials: string[]): string {
    const text = signRevocationList(this.keyPem, serials);
    writeFileAtomic(join(this.dir, REVOCATION_FILE), text, 0o644);
    return text;
  }
}
