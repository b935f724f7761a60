/**
 * Revocation cannot be rolled back: the agent keeps the newest signed revocation list it has
 * seen in its state dir (outside the cert dir, hidden from tasks). A cert dir whose list is older
 * than that one, or that has none while one was seen, is refused (REVOCATION_ROLLBACK) when it
 * changes under a running agent; at start, the stored list is enforced instead of the older one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyRevocationList, writeFileAtomic, type CertBundle } from '../../certs/index.js';
import { GaxxError } from '../../proto/index.js';

const FILE = 'newest-revoked.json';

export class RevocationFloor {
  private issuedAtMs = -1;
  private text: string | undefined;

  constructor(private readonly stateDir: string) {
    const p = join(stateDir, FILE);
    if (existsSync(p)) this.text = readFileSync(p, 'utf8');
  }

  /** The stored list's time, once verified against `bundle`'s CAs (-1: none, or not signed by them). */
  private floorFor(bundle: CertBundle): { issuedAtMs: number; serials: Set<string> } | undefined {
    if (this.text === undefined) return undefined;
    try {
      const floor = verifyRevocationList(this.text, bundle.cas);
      this.issuedAtMs = Math.max(this.issuedAtMs, floor.issuedAtMs);
      return floor;
    } catch {
      return undefined; // a CA rotation dropped the signer: the floor no longer applies
    }
  }

  /** The newest list seen, as signed (undefined when none). */
  newestText(): string | undefined {
    return this.text;
  }

  /** Remembers `bundle`'s list when it is newer than the stored one. */
  private raise(bundle: CertBundle): void {
    const at = bundle.revocationIssuedAtMs;
    if (at === undefined || bundle.revokedText === undefined || at <= this.issuedAtMs) return;
    writeFileAtomic(join(this.stateDir, FILE), bundle.revokedText, 0o600);
    this.text = bundle.revokedText;
    this.issuedAtMs = at;
  }

  /** For a cert dir that changed: REVOCATION_ROLLBACK when its list is older than the newest seen. */
  check(bundle: CertBundle): CertBundle {
    const floor = this.floorFor(bundle);
    if (floor && (bundle.revocationIssuedAtMs ?? -1) < floor.issuedAtMs) {
      throw new GaxxError(
        'REVOCATION_ROLLBACK',
        `the revocation list in ${bundle.dir} is older than the newest this agent has seen (${new Date(floor.issuedAtMs).toISOString()})`,
      );
    }
    this.raise(bundle);
    return bundle;
  }

  /** At start: the bundle with the newest list in force; `rolledBack` when the dir's was older. */
  atStart(bundle: CertBundle): { bundle: CertBundle; rolledBack: boolean } {
    const floor = this.floorFor(bundle);
    if (floor && (bundle.revocationIssuedAtMs ?? -1) < floor.issuedAtMs) {
      this.issuedAtMs = floor.issuedAtMs;
      const serials = new Set([...floor.serials]);
      if (serials.has(bundle.summary.serial)) throw new GaxxError('CERT_REVOKED', `certificate ${bundle.summary.serial} in ${bundle.dir} is revoked`);
      return { bundle: { ...bundle, revoked: serials, revocationIssuedAtMs: floor.issuedAtMs, revokedText: this.text }, rolledBack: true };
    }
    this.raise(bundle);
    return { bundle, rolledBack: false };
  }
}
