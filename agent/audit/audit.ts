/**
 * The agent's audit trail: JSON lines, one per security-relevant event (see audit-events.ts for
 * the whitelist of fields). The file is 0600, opened without following symlinks, rotated by size
 * with a retention count (audit.log, audit.log.1 ... audit.log.N). Critical events (denials,
 * blocks, cert reloads) are fsynced at once; the rest at most `fsyncIntervalMs` later, so a
 * flood of Exec events does not turn into a flood of fsyncs. Repeated connection refusals from
 * one peer are folded into one line per window with a `suppressed` count.
 */
import { closeSync, constants as fsc, existsSync, fchmodSync, fstatSync, fsync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { GaxxError } from '../../proto/index.js';
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

const CRITICAL = new Set<AuditEvent['event']>(['auth_denied', 'exec_refused', 'peer_blocked', 'peer_unblocked', 'cert_reload', 'agent_started']);
const OPEN_FLAGS = fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW;

/** The path of rotated file `n` (0 is the current file). */
export function rotatedPath(path: string, n: number): string {
  return n === 0 ? path : `${path}.${n}`;
}

/** An open audit log. Writes are synchronous so an event is on disk before the call goes on. */
export class AuditLog {
  private fd: number;
  private size: number;
  private dirty = false;
  /** A periodic fsync is running on the thread pool. */
  private flushing = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly refusals = new Map<string, { sinceMs: number; suppressed: number; event: AuditEvent }>();

  private constructor(
    readonly path: string,
    private readonly cfg: AuditConfig,
    private readonly now: () => number,
    private readonly onError: (e: unknown) => void,
  ) {
    this.fd = AuditLog.openFile(path);
    this.size = fstatSync(this.fd).size;
  }

  /**
   * Opens (creating 0600) the audit log at `path`. A failed write later (disk full) goes to
   * `onError` rather than failing the call being audited.
   */
  static open(path: string, cfg: Partial<AuditConfig> = {}, now: () => number = Date.now, onError: (e: unknown) => void = () => undefined): AuditLog {
    return new AuditLog(path, AuditConfigSchema.parse(cfg), now, onError);
  }

  private static openFile(path: string): number {
    let fd: number;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      fd = openSync(path, OPEN_FLAGS, 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      throw new GaxxError('FAILED_PRECONDITION', `cannot open the audit log ${path} (${code}); choose another with --audit-log`, { cause: e });
    }
    // An existing file keeps its mode on open; the log must not be readable by others.
    fchmodSync(fd, 0o600);
    return fd;
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
    if (this.dirty || this.flushing) fsyncSync(this.fd);
    closeSync(this.fd);
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

  private append(event: AuditEvent): void {
    try {
      this.appendLine(event);
    } catch (e) {
      this.onError(e);
    }
  }

  private appendLine(event: AuditEvent): void {
    const line = Buffer.from(`${JSON.stringify({ ts: new Date(this.now()).toISOString(), ...event })}\n`);
    if (this.size > 0 && this.size + line.length > this.cfg.maxBytes) this.rotate();
    writeSync(this.fd, line);
    this.size += line.length;
    this.dirty = true;
    if (CRITICAL.has(event.event) || this.cfg.fsyncIntervalMs === 0) this.sync();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.cfg.fsyncIntervalMs);
      this.timer.unref();
    }
  }

  private sync(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.dirty) return;
    try {
      fsyncSync(this.fd);
      this.dirty = false;
    } catch (e) {
      this.onError(e);
    }
  }

  /**
   * The periodic fsync of ordinary events, off the event loop: the lines are already written,
   * and a slow disk must not stall every call meanwhile (critical events still sync at once).
   */
  private flush(): void {
    this.timer = undefined;
    if (!this.dirty) return;
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
        this.onError(e);
      }
    });
  }

  /** audit.log -> .1 -> .2 ...; the oldest beyond `keep` is removed. */
  private rotate(): void {
    this.sync();
    closeSync(this.fd);
    rmSync(rotatedPath(this.path, this.cfg.keep), { force: true });
    for (let n = this.cfg.keep - 1; n >= 0; n--) {
      const from = rotatedPath(this.path, n);
      if (existsSync(from)) renameSync(from, rotatedPath(this.path, n + 1));
    }
    this.fd = AuditLog.openFile(this.path);
    this.size = 0;
  }
}
