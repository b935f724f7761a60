/**
 * One command at a time on a fleet: `gaxx spawn` (a --fill too) and `gaxx delete` hold
 * `<state>/fleets/<fleet>.lock` while they run, so a delete cannot report a fleet gone while a
 * spawn of it goes on creating and recording hosts. The file holds the holder's pid and command;
 * a lock whose process is gone (killed, the machine rebooted) is taken over.
 */
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileAccessError, GaxxError } from '../../proto/index.js';
import { assertFleetName } from '../state.js';

/** A lock held; release() is idempotent. */
export interface FleetLock {
  release(): void;
}

interface Holder {
  pid: number;
  command: string;
}

function holderOf(path: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.command === 'string' ? { pid: h.pid, command: h.command } : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

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
    writeFileSync(mine, `${JSON.stringify({ pid: process.pid, command })}\n`, { mode: 0o600 });
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
      if (holder && holder.pid !== process.pid && alive(holder.pid)) {
        throw new GaxxError(
          'FAILED_PRECONDITION',
          `a gaxx ${holder.command} of fleet ${fleet} is running (pid ${holder.pid}, lock ${path}): wait for it to end, or stop it, then run this again`,
          { details: { pid: holder.pid, command: holder.command } },
        );
      }
      // Its holder is gone: the lock is stale.
      rmSync(path, { force: true });
    }
    throw new GaxxError('FAILED_PRECONDITION', `could not take the lock ${path}: other gaxx commands keep taking it`);
  } finally {
    rmSync(mine, { force: true });
  }
}
