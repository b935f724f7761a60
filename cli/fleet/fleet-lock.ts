/**
 * One command at a time on a fleet: `gaxx spawn` (a --fill too) and `gaxx delete` hold
 * `<state>/fleets/<fleet>.lock` while they run, so a delete cannot report a fleet gone while a
 * spawn of it goes on creating and recording hosts. The file holds the holder's pid, command, the
 * process's start time and the boot's id; a lock whose process is gone (killed, the machine
 * rebooted, its pid now another process's) is taken over, by one taker only: the stale file is
 * moved aside first, and a live lock moved aside by a taker that came second is put back.
 */
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileAccessError, GaxxError, pidAlive, processStartTicks } from '../../proto/index.js';
import { assertFleetName } from '../state.js';

/** A lock held; release() is idempotent. */
export interface FleetLock {
  release(): void;
}

interface Holder {
  pid: number;
  command: string;
  /** The process's start (clock ticks since boot, /proc/<pid>/stat) and the boot's id: a pid is reused. */
  start?: string | undefined;
  boot?: string | undefined;
}

function holderOf(path: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    if (typeof h.pid !== 'number' || typeof h.command !== 'string') return undefined;
    return { pid: h.pid, command: h.command, start: typeof h.start === 'string' ? h.start : undefined, boot: typeof h.boot === 'string' ? h.boot : undefined };
  } catch {
    return undefined;
  }
}

const readOr = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** A process's start time in clock ticks since boot, as text (undefined when it is gone). */
function startOf(pid: number): string | undefined {
  const ticks = processStartTicks(pid);
  return ticks === 0 ? undefined : String(ticks);
}

const bootId = (): string | undefined => readOr('/proc/sys/kernel/random/boot_id')?.trim();

function alive(h: Holder): boolean {
  if (!pidAlive(h.pid)) return false;
  // The same pid after a reboot, or a later process's: not the holder.
  if (h.boot !== undefined && h.boot !== bootId()) return false;
  return h.start === undefined || h.start === startOf(h.pid);
}

const sameHolder = (a: Holder | undefined, b: Holder): boolean => a?.pid === b.pid && a.start === b.start && a.boot === b.boot;

/**
 * Takes fleet `fleet`'s lock for `command`; FAILED_PRECONDITION naming the pid when another live
 * gaxx holds it.
 */
export function lockFleet(fleetsDir: string, fleet: string, command: 'spawn' | 'delete'): FleetLock {
  assertFleetName(fleet);
  const path = join(fleetsDir, `${fleet}.lock`);
  const mine = `${path}.${process.pid}`;
  try {
    mkdirSync(fleetsDir, { recursive: true, mode: 0o700 });
    // Written whole, then linked into place: nobody ever reads a lock without its pid.
    const me: Holder = { pid: process.pid, command, start: startOf(process.pid), boot: bootId() };
    writeFileSync(mine, `${JSON.stringify(me)}\n`, { mode: 0o600 });
  } catch (e) {
    throw fileAccessError(e) ?? e;
  }
  try {
    for (let tries = 0; tries < 3; tries++) {
      try {
        linkSync(mine, path);
        return { release: () => (holderOf(path)?.pid === process.pid ? rmSync(path, { force: true }) : undefined) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fileAccessError(e) ?? e;
      }
      const holder = holderOf(path);
      if (holder && holder.pid !== process.pid && alive(holder)) {
        throw new GaxxError(
          'FAILED_PRECONDITION',
          `a gaxx ${holder.command} of fleet ${fleet} is running (pid ${holder.pid}, lock ${path}): wait for it to end, or stop it, then run this again`,
          { details: { pid: holder.pid, command: holder.command } },
        );
      }
      // Its holder is gone: the lock is stale. Moved aside (one taker's rename finds it), and put
      // back if what was moved is a live lock another taker made meanwhile.
      const aside = `${path}.stale.${process.pid}`;
      try {
        renameSync(path, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileAccessError(e) ?? e;
        continue;
      }
      const moved = holderOf(aside);
      if (holder && moved && !sameHolder(moved, holder)) {
        try {
          linkSync(aside, path);
        } catch {
          // Taken again meanwhile: that holder goes on; the one moved aside is told by release().
        }
      }
      rmSync(aside, { force: true });
    }
    throw new GaxxError('FAILED_PRECONDITION', `could not take the lock ${path}: other gaxx commands keep taking it`);
  } finally {
    rmSync(mine, { force: true });
  }
}
