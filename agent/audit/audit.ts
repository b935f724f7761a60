/**
 * The agent's audit trail: JSON lines, one per security-relevant event (see audit-events.ts for
 * the whitelist of fields). The file is 0600, opened without following symlinks, rotated by size
 * with a retention count (audit.log, audit.log.1 ... audit.log.N). Critical events (denials,
 * blocks, cert reloads) are fsynced at once; the rest at most `fsyncIntervalMs` later, so a
 * flood of Exec events does not turn into a flood of fsyncs. Repeated connection refusals from
 * one peer are folded into one line per window with a `suppressed` count.
 *
 * A write that fails (a full disk, a quota, a read-only remount) is not the end of the event:
 * it waits in memory (bounded; beyond that only counted, and an `audit_lost` line says how many
 * are missing), the file is cut back to its last whole line, and `failure` says why. The agent
 * refuses new work meanwhile (observe/disk-guard.ts), so nothing runs unaudited for long; every
 * later write, and retry(), tries the waiting lines again, oldest first.
 */
import { closeSync, constants as fsc, existsSync, fchmodSync, fstatSync, fsync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { fileAccessError, GaxxError, makeDirs } from '../../proto/index.js';
import { appendWhole } from '../files/append-whole.js';
import { AuditEventSchema, type AuditEvent } from './audit-events.js';

export const AuditConfigSchema = z
  .object({
    /** Rotate when the current file would grow past this. */
    maxBytes: z
      .number()
      .int()
      .min(4096)
      .default(16 * 1024 * 1024),
    /** Rotated files kept (audit.log.1 .. audit.log.N). */
    keep: z.number().int().min(1).max(100).default(5),
    fsyncIntervalMs: z.number().int().min(0).default(1000),
    /** Window in which repeated refusals from one peer share one line. */
    refusalWindowMs: z.number().int().min(0).default(10_000),
  })
  .strict();

export type AuditConfig = z.infer<typeof AuditConfigSchema>;

const CRITICAL = new Set<AuditEvent['event']>(['auth_denied', 'exec_refused', 'peer_blocked', 'peer_unblocked', 'cert_reload', 'agent_started', 'audit_lost']);
/** Bytes of events held in memory while the log cannot be written; later ones are only counted. */
const MAX_WAITING_BYTES = 1024 * 1024;
const OPEN_FLAGS = fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW;

/** The path of rotated file `n` (0 is the current file). */
export function rotatedPath(path: string, n: number): string {
  return n === 0 ? path : `${path}.${n}`;
}

/** An open audit log. Writes are synchronous so an event is on disk before the call goes on. */
export class AuditLog {
  /** -1 while closed: a rotation that could not open the new file (retried with the next write). */
  private fd: number;
  private size: number;
  private dirty = false;
  /** A periodic fsync is running on the thread pool. */
  private flushing = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly refusals = new Map<string, { sinceMs: number; suppressed: number; event: AuditEvent }>();
  /** Lines not yet written (the log failed), oldest first, and the bytes they hold. */
  private readonly waiting: Array<{ line: Buffer; critical: boolean }> = [];
  private waitingBytes = 0;
  /** Events dropped while waiting was full. */
  private lost = 0;
  private failed: NodeJS.ErrnoException | undefined;

  private constructor(
    readonly path: string,
    private readonly cfg: AuditConfig,
    private readonly now: () => number,
    private readonly onError: (e: NodeJS.ErrnoException) => void,
  ) {
    this.fd = AuditLog.openFile(path);
    this.size = fstatSync(this.fd).size;
  }

  /**
   * Opens (creating 0600) the audit log at `path`. A write that fails later (disk full) does not
   * fail the call being audited: `failure` says so, and `onError` is told once per failing spell.
   */
  static open(
    path: string,
    cfg: Partial<AuditConfig> = {},
    now: () => number = Date.now,
    onError: (e: NodeJS.ErrnoException) => void = () => undefined,
  ): AuditLog {
    return new AuditLog(path, AuditConfigSchema.parse(cfg), now, onError);
  }

  private static openFile(path: string): number {
    let fd: number;
    try {
      fd = AuditLog.openRaw(path);
    } catch (e) {
      // A permission, full or read-only file system: the caller names the fix for its cause (fileAccessError).
      if (fileAccessError(e)) throw e;
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      throw new GaxxError('FAILED_PRECONDITION', `cannot open the audit log ${path} (${code}); choose another with --audit-log`, { cause: e });
    }
    return fd;
  }

  private static openRaw(path: string): number {
    try {
      makeDirs(dirname(path), { mode: 0o700 });
    } catch (e) {
      // The errno is what the callers tell (openFile, the disk guard, audit_lost), as for the open below.
      throw (e as Error).cause ?? e;
    }
    const fd = openSync(path, OPEN_FLAGS, 0o600);
    // An existing file keeps its mode on open; the log must not be readable by others.
    fchmodSync(fd, 0o600);
    return fd;
  }

  /** Why the last write failed, while events wait to be written; undefined when all are written. */
  get failure(): NodeJS.ErrnoException | undefined {
    return this.failed;
  }

  /** Writes the waiting events now; true when none is left waiting (and the log writes again). */
  retry(): boolean {
    this.drain();
    if (this.failed === undefined && this.dirty && !this.flushing) {
      try {
        this.sync();
      } catch (e) {
        this.fail(e);
      }
    }
    return this.failed === undefined;
  }

  /** Appends one event; fields outside the event's schema are dropped, never written. */
  write(input: AuditEvent): void {
    const event = AuditEventSchema.parse(input);
    if (event.event === 'connection_refused' && this.fold(event)) return;
    this.append(event);
  }

  /** Flushes folded refusals and pending data, and closes the file. */
  close(): void {
    for (const r of this.refusals.values()) if (r.suppressed > 0) this.append({ ...r.event, suppressed: r.suppressed } as AuditEvent);
    this.refusals.clear();
    if (this.timer) clearTimeout(this.timer);
    if (this.fd < 0) return;
    try {
      if (this.dirty || this.flushing) fsyncSync(this.fd);
    } catch (e) {
      this.fail(e);
    }
    closeSync(this.fd);
    this.fd = -1;
  }

  /** True when the refusal was folded into an earlier line of the same window. */
  private fold(event: Extract<AuditEvent, { event: 'connection_refused' }>): boolean {
    const key = `${event.peer}|${event.reason}`;
    const t = this.now();
    const prev = this.refusals.get(key);
    if (prev && t - prev.sinceMs < this.cfg.refusalWindowMs) {
      prev.suppressed += 1;
      return true;
    }
    if (this.refusals.size > 1000) {
      for (const [k, r] of this.refusals) if (t - r.sinceMs >= this.cfg.refusalWindowMs) this.refusals.delete(k);
    }
    this.refusals.set(key, { sinceMs: t, suppressed: 0, event });
    if (prev && prev.suppressed > 0) event.suppressed = prev.suppressed;
    return false;
  }

  /** The event's line, stamped now (a line written later keeps the time of its event). */
  private line(event: AuditEvent): Buffer {
    return Buffer.from(`${JSON.stringify({ ts: new Date(this.now()).toISOString(), ...event })}\n`);
  }

  private append(event: AuditEvent): void {
    const line = this.line(event);
    if (this.waitingBytes + line.length > MAX_WAITING_BYTES) this.lost += 1;
    else {
      this.waiting.push({ line, critical: CRITICAL.has(event.event) });
      this.waitingBytes += line.length;
    }
    this.drain();
  }

  /** Writes the waiting lines, oldest first, stopping at the first that fails. */
  private drain(): void {
    try {
      while (this.waiting.length > 0) {
        const w = this.waiting[0] as { line: Buffer; critical: boolean };
        this.appendLine(w.line);
        this.waiting.shift();
        this.waitingBytes -= w.line.length;
        // The count of the dropped goes right after the last line that was kept.
        if (this.waiting.length === 0 && this.lost > 0) {
          this.appendLine(this.line({ event: 'audit_lost', count: this.lost, errno: this.failed?.code ?? 'unknown' }));
          this.lost = 0;
        }
        // Written, so not written again: a failed fsync leaves it dirty for the next one.
        if (w.critical || this.cfg.fsyncIntervalMs === 0) this.sync();
      }
      this.failed = undefined;
    } catch (e) {
      this.fail(e);
    }
  }

  /** A failed write or fsync: `failure` until a retry succeeds, told once per failing spell. */
  private fail(e: unknown): void {
    const first = this.failed === undefined;
    const err = e as NodeJS.ErrnoException;
    // A write names no path; the log's is the one to tell.
    if (err.path === undefined) err.path = this.path;
    this.failed = err;
    if (first) this.onError(this.failed);
  }

  /** Writes one line whole (or nothing: appendWhole); its fsync is the caller's, or the timer's. */
  private appendLine(line: Buffer): void {
    if (this.fd < 0) {
      this.fd = AuditLog.openRaw(this.path);
      this.size = fstatSync(this.fd).size;
    }
    if (this.size > 0 && this.size + line.length > this.cfg.maxBytes) this.rotate();
    appendWhole(this.fd, line, this.size);
    this.size += line.length;
    this.dirty = true;
    if (this.cfg.fsyncIntervalMs > 0 && !this.timer) {
      this.timer = setTimeout(() => this.flush(), this.cfg.fsyncIntervalMs);
      this.timer.unref();
    }
  }

  /** fsync now; a failure throws (the caller's write failed with it). */
  private sync(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.dirty) return;
    fsyncSync(this.fd);
    this.dirty = false;
  }

  /**
   * The periodic fsync of ordinary events, off the event loop: the lines are already written,
   * and a slow disk must not stall every call meanwhile (critical events still sync at once).
   */
  private flush(): void {
    this.timer = undefined;
    if (!this.dirty || this.fd < 0) return;
    if (this.flushing) {
      // One fsync at a time; the lines written meanwhile get the next one.
      this.timer = setTimeout(() => this.flush(), this.cfg.fsyncIntervalMs);
      this.timer.unref();
      return;
    }
    const fd = this.fd;
    this.dirty = false;
    this.flushing = true;
    fsync(fd, (e) => {
      this.flushing = false;
      if (e && fd === this.fd) {
        this.dirty = true;
        this.fail(e);
      }
    });
  }

  /** audit.log -> .1 -> .2 ...; the oldest beyond `keep` is removed. */
  private rotate(): void {
    this.sync();
    closeSync(this.fd);
    this.fd = -1;
    rmSync(rotatedPath(this.path, this.cfg.keep), { force: true });
    for (let n = this.cfg.keep - 1; n >= 0; n--) {
      const from = rotatedPath(this.path, n);
      if (existsSync(from)) renameSync(from, rotatedPath(this.path, n + 1));
    }
    this.fd = AuditLog.openRaw(this.path);
    this.size = 0;
  }
}
