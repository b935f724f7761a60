/**
 * Pushes into the cert area, staged: the cert dir as it would be after the push (current files
 * plus the pushed one) is written to a stage dir in the agent's state and must load and verify
 * as a whole (certificate, key, CA, revocation list not older than the newest seen) before
 * anything in the cert dir is replaced. A push that does not verify is refused with its code and
 * leaves the agent, and its next start, as they were.
 *
 * A new key is never pushed: the agent makes it (CreateCsr) and keeps it pending in its state; a
 * pushed cert.pem that matches the pending key, not the current one, replaces both.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CA_FILE, CERT_FILE, createCsr, generateEcKeyPair, KEY_FILE, REVOCATION_FILE, writeFileAtomic, type CertBundle } from '../../certs/index.js';
import { GaxxError } from '../../proto/index.js';
import type { CertArea } from './files.js';

/** Where the agent keeps the key of a pending renewal (CreateCsr). */
export const PENDING_KEY = 'pending-key.pem';
/** The stage dirs in the state dir (each a copy of the cert dir, key included) start so: swept at start (leftovers.ts). */
export const STAGE_PREFIX = 'stage-';

const modeOf = (name: string) => (name === KEY_FILE ? 0o600 : 0o644);

export class StagedCertArea implements CertArea {
  constructor(
    private readonly certsDir: string,
    private readonly stateDir: string,
    /** Loads and verifies a cert dir (loadCertDir plus the revocation floor). */
    private readonly verify: (dir: string) => CertBundle,
    /** The newest revocation list the agent has seen, written along when the dir holds an older one. */
    private readonly newestList: () => string | undefined = () => undefined,
    /** Told about every refused push (the agent audits it). */
    private readonly onRefused: (name: string, err: unknown) => void = () => undefined,
    /**
     * Called once a push's files are in place, before the push is answered: the agent loads them
     * then (its cert watcher's check), so a pushed revocation list is enforced by the time the
     * pusher hears it landed, not a debounce later.
     */
    private readonly onApplied: () => void = () => undefined,
  ) {}

  get pendingKeyPath(): string {
    return join(this.stateDir, PENDING_KEY);
  }

  /** A stage dir holding the current files with `overrides` written over them. */
  private stage(overrides: Record<string, Buffer>): string {
    const dir = join(this.stateDir, `${STAGE_PREFIX}${randomBytes(6).toString('hex')}`);
    mkdirSync(dir, { mode: 0o700 });
    for (const f of [CERT_FILE, KEY_FILE, CA_FILE, REVOCATION_FILE]) {
      if (overrides[f]) writeFileAtomic(join(dir, f), overrides[f], modeOf(f));
      else if (existsSync(join(this.certsDir, f))) copyFileSync(join(this.certsDir, f), join(dir, f));
    }
    return dir;
  }

  /** Verifies the cert dir `overrides` would make; throws its refusal. */
  private tryStage(overrides: Record<string, Buffer>): void {
    const dir = this.stage(overrides);
    try {
      this.verify(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Starts a renewal: a new EC P-256 key, pending in the state dir (0600), and a request for it. */
  async createCsr(cn: string): Promise<string> {
    const { privateKeyPem, publicKeyPem } = await generateEcKeyPair();
    writeFileAtomic(this.pendingKeyPath, privateKeyPem, 0o600);
    return createCsr(privateKeyPem, publicKeyPem, cn);
  }

  async apply(name: string, data: Buffer): Promise<void> {
    try {
      await this.applyStaged(name, data);
    } catch (e) {
      this.onRefused(name, e);
      throw e;
    }
  }

  private async applyStaged(name: string, data: Buffer): Promise<void> {
    if (name === KEY_FILE) {
      throw new GaxxError('PERMISSION_DENIED', 'private keys are never pushed: renew with CreateCsr, then push only the signed cert.pem');
    }
    let overrides: Record<string, Buffer> = { [name]: data };
    const newest = this.newestList();
    const current = join(this.certsDir, REVOCATION_FILE);
    if (name !== REVOCATION_FILE && newest !== undefined && (!existsSync(current) || readFileSync(current, 'utf8') !== newest)) {
      overrides[REVOCATION_FILE] = Buffer.from(newest);
    }
    try {
      this.tryStage(overrides);
    } catch (e) {
      if (name !== CERT_FILE || !existsSync(this.pendingKeyPath)) throw e;
      overrides = { ...overrides, [KEY_FILE]: readFileSync(this.pendingKeyPath) };
      this.tryStage(overrides);
    }
    // Key first: the watcher debounces, and a key without its cert is refused, never applied.
    for (const f of [KEY_FILE, CA_FILE, REVOCATION_FILE, CERT_FILE]) {
      const b = overrides[f];
      if (b) writeFileAtomic(join(this.certsDir, f), b, modeOf(f));
    }
    if (overrides[KEY_FILE]) unlinkSync(this.pendingKeyPath);
    this.onApplied();
  }
}
