/**
 * Certificate rotation without restart: watches the cert dir (cert.pem, key.pem, ca.pem,
 * revoked.json) with fs.watch, debounced, plus a periodic stat poll for filesystems where watch
 * events get lost. On a change the dir is loaded and verified again (loadCertDir); a valid new
 * bundle is handed to `onReload` (the server swaps the secure context for new connections and
 * the revocation set for auth), an invalid one is reported to `onError` once and the old bundle
 * stays in force. ca.pem may hold the old and the new CA during a CA rotation.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { CA_FILE, CERT_FILE, KEY_FILE, loadCertDir, REVOCATION_FILE, type CertBundle } from '../../certs/index.js';

export interface CertWatcherOptions {
  /** Quiet time after the last change before reloading (writers replace several files). */
  debounceMs?: number;
  /** Stat poll period, the fallback when fs.watch misses a change. */
  pollMs?: number;
  /** Use fs.watch (default true); polling alone when false. */
  watch?: boolean;
  /** Loads and checks the dir (default loadCertDir); the agent adds the revocation floor. */
  load?: (dir: string) => CertBundle;
  onReload(next: CertBundle, previous: CertBundle): void;
  /** The dir changed but does not verify; the previous bundle stays in force. */
  onError(err: unknown): void;
}

const FILES = [CERT_FILE, KEY_FILE, CA_FILE, REVOCATION_FILE];

/** A cheap signature of the watched files (inode, size, mtime, ctime: a chown counts), for polling. */
export function dirSignature(dir: string): string {
  return FILES.map((f) => {
    try {
      const s = statSync(join(dir, f));
      return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
    } catch {
      return '-';
    }
  }).join('|');
}

/** What makes two bundles different for the server: cert, CAs, revoked serials. */
function contentKey(b: CertBundle): string {
  return createHash('sha256')
    .update(b.certPem)
    .update(b.caPem)
    .update([...b.revoked].sort().join(','))
    .digest('hex');
}

/** Watches a cert dir and swaps in verified bundles. */
export class CertWatcher {
  private bundle: CertBundle;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private seen: string;
  private failedSignature: string | undefined;

  constructor(
    readonly dir: string,
    initial: CertBundle,
    private readonly opts: CertWatcherOptions,
  ) {
    this.bundle = initial;
    this.seen = dirSignature(dir);
  }

  /** The bundle in force. */
  current(): CertBundle {
    return this.bundle;
  }

  /** Starts watching and polling. */
  start(): void {
    if (this.opts.watch === false) return this.startPolling();
    try {
      this.watcher = watch(this.dir, { persistent: false }, (_type, name) => {
        if (name === null || FILES.includes(String(name))) this.schedule();
      });
      this.watcher.on('error', () => undefined);
    } catch {
      // Some filesystems cannot be watched; polling alone still picks the change up.
    }
    this.startPolling();
  }

  private startPolling(): void {
    this.poller = setInterval(() => {
      // Remember what was seen at once: a poll period shorter than the debounce would otherwise
      // re-arm the debounce on every tick and never reload.
      const signature = dirSignature(this.dir);
      if (signature === this.seen) return;
      this.seen = signature;
      this.schedule();
    }, this.opts.pollMs ?? 30_000);
    this.poller.unref();
  }

  /** Stops watching. */
  stop(): void {
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
    if (this.debounce) clearTimeout(this.debounce);
  }

  /**
   * Loads the dir now; true when a new bundle was swapped in. Failures go to onError once per
   * distinct state of the files (a half-written rotation may be reported, then fixed).
   */
  check(): boolean {
    const signature = dirSignature(this.dir);
    this.seen = signature;
    let next: CertBundle;
    try {
      next = (this.opts.load ?? loadCertDir)(this.dir);
    } catch (e) {
      if (this.failedSignature !== signature) {
        this.failedSignature = signature;
        this.opts.onError(e);
      }
      return false;
    }
    this.failedSignature = undefined;
    if (contentKey(next) === contentKey(this.bundle)) return false;
    const previous = this.bundle;
    this.bundle = next;
    this.opts.onReload(next, previous);
    return true;
  }

  private schedule(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.check(), this.opts.debounceMs ?? 250);
    this.debounce.unref();
  }
}

/**
 * True when the certificate should be renewed: past about two thirds of its lifetime, moved by a
 * per-agent jitter of up to +-5% of the lifetime (derived from `seed`, e.g. the host name) so a
 * fleet issued at once does not ask for renewal at once.
 */
export function renewalDueWithJitter(cert: X509Certificate, seed: string, nowMs = Date.now()): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  const h = createHash('sha256').update(seed).digest().readUInt32BE(0) / 0xffffffff;
  const fraction = 2 / 3 + (h - 0.5) * 0.1;
  return nowMs >= from + (to - from) * fraction;
}
