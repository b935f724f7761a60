/**
 * One command at a time on a fleet: `gaxx spawn` (a --fill too) and `gaxx delete` hold
 * `<state>/fleets/<fleet>.lock` while they run, so a delete cannot report a fleet gone while a
 * spawn of it goes on creating and recording hosts. The file holds the holder's pid, command, the
 * process's start time and the boot's id; a lock whose process is gone is taken over (a claim
 * file, claim-file.ts).
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { asProcessMark, fileAccessError, GaxxError, heldByAnother, makeDirs, processMark, takeClaim } from '../../proto/index.js';
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

function parseHolder(text: string | undefined): Holder | undefined {
  try {
    const h = JSON.parse(text ?? '') as Partial<Holder>;
    const mark = asProcessMark(h);
    return mark && typeof h.command === 'string' ? { ...mark, command: h.command } : undefined;
  } catch {
    return undefined;
  }
}

function holderOf(path: string): Holder | undefined {
  try {
    return parseHolder(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** A lock of another process that still runs (a lock of this process's own left behind is not). */
function held(text: string): boolean {
  return heldByAnother(parseHolder(text));
}

/**
 * Takes fleet `fleet`'s lock for `command`; FAILED_PRECONDITION naming the pid when another live
 * gaxx holds it.
 */
export function lockFleet(fleetsDir: string, fleet: string, command: 'spawn' | 'delete'): FleetLock {
  assertFleetName(fleet);
  const path = join(fleetsDir, `${fleet}.lock`);
  try {
    makeDirs(fleetsDir, { mode: 0o700 });
  } catch (e) {
    throw fileAccessError(e) ?? e;
  }
  const me: Holder = { ...processMark(), command };
  const got = takeClaim(path, `${JSON.stringify(me)}\n`, held);
  if (got.taken) return { release: () => (holderOf(path)?.pid === process.pid ? rmSync(path, { force: true }) : undefined) };
  const holder = parseHolder(got.held);
  if (holder)
    throw new GaxxError(
      'FAILED_PRECONDITION',
      `a gaxx ${holder.command} of fleet ${fleet} is running (pid ${holder.pid}, lock ${path}): wait for it to end, or stop it, then run this again`,
      { details: { pid: holder.pid, command: holder.command } },
    );
  throw new GaxxError('FAILED_PRECONDITION', `could not take the lock ${path}: other gaxx commands keep taking it`);
}
