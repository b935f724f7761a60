/**
 * The agent fails closed on its own disk. It will not run work it cannot account for: while the
 * audit log or the task journal cannot be written (a task filled the disk, a quota, a read-only
 * remount), every new piece of work (a task, a PutFile, a GetFile, a CSR) is refused with why
 * and what to do, and the agent still answers Health, Info, attach and replay. Each such call
 * first writes again what is waiting, and so does a timer while a write fails: once the space
 * is back, work is taken again without a restart. Cancel is never refused (stopping a task is
 * how space comes back).
 *
 * Besides, a task or a PutFile does not start while the file systems of the agent's dirs have
 * less than the reserve free (--disk-reserve): what is left is the audit log's and the
 * journal's. A task that fills the disk once it runs is not stopped by that; the refusals are
 * what keep it from going unaudited.
 *
 * And a task whose scratch work dir cannot be made in the data dir's tasks dir (read-only,
 * full, its mode changed under the agent) is refused as the agent's failure (exec.ts
 * setupError); from then on Health says NOT_SERVING, so that a scheduler's breaker keeps tasks
 * away, until a directory can be made there again (tasksWritable).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmdirSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { formatSize, fsFix, GaxxError } from '../../proto/index.js';

/** A file the agent must be able to write to take work (the audit log, the task journal). */
export interface VitalFile {
  /** What it is, as a message names it: "audit log". */
  what: string;
  path: string;
  /** Why its last write failed, while it is behind; undefined when all is written. */
  failure(): NodeJS.ErrnoException | undefined;
  /** Writes what is waiting now; true when nothing is left behind. */
  retry(): boolean;
}

export interface DiskGuardOptions {
  files: VitalFile[];
  /** Dirs whose file systems must keep `reserveBytes` free for a task or a put to start. */
  reserveDirs: string[];
  reserveBytes: number;
  log: Logger;
  /** How often a failing file is retried without a call to do it (default 5 s). */
  retryMs?: number;
  /** Free bytes of the file system that holds `dir` (statfs; tests pass their own). */
  freeBytes?: (dir: string) => number;
}

/** The refusal's retry hint: space rarely comes back within a second. */
const DISK_RETRY_AFTER_MS = 5000;

/** Free bytes for an unprivileged user on the file system that holds `dir`. */
function statfsFree(dir: string): number {
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

/** Why work is refused while `f` cannot be written, coded by the cause. */
export function writeRefusal(f: Pick<VitalFile, 'what' | 'path'>, e: NodeJS.ErrnoException): GaxxError {
  const errno = e.code ?? 'EIO';
  const fix = fsFix(errno, f.path) ?? `see the agent's log (${errno})`;
  const why: Record<string, string> = {
    ENOSPC: "the agent's disk is full",
    EDQUOT: "the agent user's disk quota is used up",
    EROFS: "the agent's file system is read-only",
    EFBIG: 'the file is as large as the file system allows',
  };
  const message = `${why[errno] ?? 'the agent cannot write to its disk'}: its ${f.what} ${f.path} cannot be written (${errno}); ${fix}. New work is refused until it can be written.`;
  const code = errno === 'ENOSPC' || errno === 'EDQUOT' || errno === 'EFBIG' ? 'RESOURCE_EXHAUSTED' : errno === 'EIO' ? 'UNAVAILABLE' : 'FILE_ACCESS';
  return new GaxxError(code, message, { cause: e, details: { errno, path: f.path, retryAfterMs: DISK_RETRY_AFTER_MS, refusal: 'disk' } });
}

/** Whether the agent may take work now, by the state of its disk. */
export class DiskGuard {
  private timer: NodeJS.Timeout | undefined;
  private readonly failing = new Set<VitalFile>();
  private readonly freeBytes: (dir: string) => number;
  /** The tasks dir a scratch work dir could not be made in, and why, until one can be. */
  private tasksDir: { dir: string; errno: string } | undefined;

  constructor(private readonly o: DiskGuardOptions) {
    this.freeBytes = o.freeBytes ?? statfsFree;
  }

  /** A vital file's write failed (its writer's onError): logged, and retried until it writes. */
  failed(f: VitalFile, e: NodeJS.ErrnoException): void {
    if (this.failing.has(f)) return;
    this.failing.add(f);
    const refusal = writeRefusal(f, e);
    this.o.log.error({ code: refusal.code, errno: e.code, path: f.path }, refusal.message);
    if (this.timer) return;
    this.timer = setInterval(() => this.writesRefusal(), this.o.retryMs ?? 5000);
    this.timer.unref();
  }

  /**
   * The refusal of any new work while a vital file cannot be written, after writing again what
   * waits; undefined when all is written.
   */
  writesRefusal(): GaxxError | undefined {
    for (const f of this.o.files) {
      const e = f.failure();
      if (!e) continue;
      if (!f.retry()) return writeRefusal(f, f.failure() ?? e);
      if (this.failing.delete(f)) this.o.log.info({ path: f.path }, `the ${f.what} is written again; the agent takes work again`);
    }
    if (this.failing.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    return undefined;
  }

  /** writesRefusal, then the reserve: the refusal of work that writes to the disk (a task, a put). */
  workRefusal(): GaxxError | undefined {
    const refusal = this.writesRefusal();
    if (refusal || this.o.reserveBytes <= 0) return refusal;
    for (const dir of this.o.reserveDirs) {
      let free: number;
      try {
        free = this.freeBytes(dir);
      } catch {
        continue; // a dir gone or unreadable: its own writes will tell
      }
      if (free < this.o.reserveBytes) {
        return new GaxxError(
          'RESOURCE_EXHAUSTED',
          `the agent's disk is nearly full: ${formatSize(free)} free on the file system that holds ${dir}, under the ${formatSize(this.o.reserveBytes)} kept for its audit log and task journal (--disk-reserve); free space there (df -h ${dir}). New tasks and files are refused until then.`,
          { details: { path: dir, freeBytes: free, retryAfterMs: DISK_RETRY_AFTER_MS, refusal: 'disk-reserve' } },
        );
      }
    }
    return undefined;
  }

  /** A task's scratch work dir could not be made in `dir` (the tasks dir) for `errno`: Health says so until it can. */
  tasksDirFailed(dir: string, errno: string): void {
    if (this.tasksDir) return;
    this.tasksDir = { dir, errno };
    const fix = fsFix(errno, join(dir, 'x')) ?? `check the owner and mode of ${dir} and its parents (ls -ld)`;
    this.o.log.error({ errno, dir }, `tasks cannot get a work dir: ${dir} cannot be written (${errno}); ${fix}. Health says NOT_SERVING until it can.`);
  }

  /**
   * Whether tasks can get a scratch work dir: yes, unless one could not be made; then whether a
   * directory can be made in (and removed from) the tasks dir now. Health asks; the probe costs a
   * few system calls, and only while tasks could not get one.
   */
  tasksWritable(): boolean {
    const t = this.tasksDir;
    if (!t) return true;
    // `+` is in no task id: never a task's scratch dir.
    const probe = join(t.dir, `+probe-${randomBytes(6).toString('hex')}`);
    try {
      mkdirSync(probe, { mode: 0o700 });
    } catch {
      return false;
    }
    try {
      rmdirSync(probe);
    } catch {
      // made, so tasks can have theirs; an empty dir left behind harms nothing
    }
    this.tasksDir = undefined;
    this.o.log.info({ dir: t.dir }, 'the tasks dir can be written again; Health says SERVING');
    return true;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The dirs whose file systems hold what the agent writes (one per file system is enough, but statfs is cheap). */
export function agentDirs(c: { dataDir: string; stateDir: string; auditLog: string }): string[] {
  return [...new Set([c.dataDir, c.stateDir, dirname(c.auditLog)])];
}
