/**
 * A lock across the processes of this machine around a change of shared files: the CA's register
 * and revocation list, the SSH key, gaxx's known_hosts, a cert dir, `gaxx init`. Each of those is
 * read, changed and written back (or looked for and then made) by whichever gaxx runs: two at once
 * (two terminals, a script's parallel jobs, a daemon beside a command) lost one's change, or
 * made two CAs of which the operator's certificate named the one that did not stay.
 *
 * The lock is a claim file (claim-file.ts) naming its holder (pid, start time, boot id); a holder
 * that is gone (killed, or the pid now another process's) is taken over. A waiter looks again
 * every LOCK_POLL_MS, for at most `waitMs`, then gives up naming the holder.
 *
 * Two shapes, and a lock path uses one of them only: withFileLockSync for a short change made
 * without yielding (it waits without yielding too, so it suits a change of a few file writes),
 * and withFileLock for one that awaits (a key generated, a certificate issued), which also
 * serialises the callers of one process (a claim of this process's own holds nothing against it).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { claimMark, processClaimText, releaseClaim, takeProcessClaim, type ClaimOutcome } from './claim-file.js';
import { GaxxError, isGaxxError } from './errors.js';

/** How long a waiter waits for a lock by default: its holders change a few files. */
export const LOCK_WAIT_MS = 10_000;
const LOCK_POLL_MS = 10;

export interface FileLockOptions {
  /** How long to wait for the lock before UNAVAILABLE (default LOCK_WAIT_MS). */
  waitMs?: number;
}

const claimText = (what: string): string => processClaimText({ lock: what });

function heldTooLong(path: string, what: string, held: string | undefined, waitMs: number): GaxxError {
  const pid = claimMark(held)?.pid;
  const by = pid === undefined ? 'another gaxx' : `another gaxx (pid ${pid})`;
  return new GaxxError(
    'UNAVAILABLE',
    `${what}: ${by} has held the lock ${path} for ${Math.round(waitMs / 1000)} s; it changes these files in moments, so it is stopped or hung: end it (or let it go on), then run this again`,
    { details: { lock: path, ...(pid === undefined ? {} : { pid }) } },
  );
}

/** Where a lock's dir cannot be written, no process of this user can change the files it guards either. */
const UNWRITABLE = new Set(['EROFS', 'EACCES', 'EPERM']);

/**
 * takeClaim's result, or `unlocked` when the lock's dir cannot be written (a read-only config dir
 * holding a whole installation): the change then runs without the lock, and a write it makes
 * fails as it would have (a `gaxx init` that finds everything made writes nothing).
 */
function tryTake(path: string, text: string): ClaimOutcome | 'unlocked' {
  try {
    return takeProcessClaim(path, text);
  } catch (e) {
    const errno = (isGaxxError(e) ? (e.details as { errno?: unknown } | undefined)?.errno : (e as NodeJS.ErrnoException).code) as string | undefined;
    if (errno !== undefined && UNWRITABLE.has(errno)) return 'unlocked';
    throw e;
  }
}

let sleeper: Int32Array | undefined;
/** Blocks this thread for `ms` (nothing else of the process runs meanwhile). */
function pauseSync(ms: number): void {
  sleeper ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * Runs `change` holding the lock `path` (a file; its dir must exist), waiting for another
 * process's hold of it to end, without yielding: for a change of a few files, made with no await.
 */
export function withFileLockSync<T>(path: string, what: string, change: () => T, opts: FileLockOptions = {}): T {
  const waitMs = opts.waitMs ?? LOCK_WAIT_MS;
  const text = claimText(what);
  const until = performance.now() + waitMs;
  let held: string | undefined;
  for (;;) {
    const got = tryTake(path, text);
    if (got === 'unlocked') return change();
    if (got.taken) break;
    held = got.held ?? held;
    if (performance.now() >= until) throw heldTooLong(path, what, held, waitMs);
    pauseSync(LOCK_POLL_MS);
  }
  try {
    return change();
  } finally {
    releaseClaim(path, (h) => h === text);
  }
}

/** Per lock path, the end of the last hold this process asked for (withFileLock). */
const queued = new Map<string, Promise<void>>();

/**
 * Runs `change` holding the lock `path` (a file; its dir must exist): waits for this process's
 * earlier holds of it, then for another process's. A lock free at the call is taken, and `change`
 * started, before the call first yields. `stop` (a command's Ctrl-C) ends a wait with CANCELLED.
 */
export async function withFileLock<T>(path: string, what: string, change: () => Promise<T>, opts: FileLockOptions & { stop?: AbortSignal } = {}): Promise<T> {
  const before = queued.get(path);
  let ended = (): void => undefined;
  const mine = new Promise<void>((r) => (ended = r));
  const last = before ? before.then(() => mine) : mine;
  queued.set(path, last);
  try {
    if (before) await before;
    const text = claimText(what);
    const first = tryTake(path, text);
    if (first === 'unlocked') return await change();
    if (!first.taken) await takeWaiting(path, text, what, first.held, opts);
    try {
      return await change();
    } finally {
      releaseClaim(path, (h) => h === text);
    }
  } finally {
    ended();
    if (queued.get(path) === last) queued.delete(path);
  }
}

/** Takes the lock `path` as `text` once another process's hold ends (withFileLock's wait). */
async function takeWaiting(path: string, text: string, what: string, held: string | undefined, opts: FileLockOptions & { stop?: AbortSignal }): Promise<void> {
  const waitMs = opts.waitMs ?? LOCK_WAIT_MS;
  const until = performance.now() + waitMs;
  for (;;) {
    if (opts.stop?.aborted) throw new GaxxError('CANCELLED', `stopped while waiting for the lock ${path} (${what})`);
    if (performance.now() >= until) throw heldTooLong(path, what, held, waitMs);
    await sleep(LOCK_POLL_MS, undefined, { signal: opts.stop }).catch(() => undefined);
    if (opts.stop?.aborted) continue;
    const got = takeProcessClaim(path, text);
    if (got.taken) return;
    held = got.held ?? held;
  }
}
