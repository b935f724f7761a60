/**
 * One command at a time on a fleet: `gaxx spawn` (a --fill too), `gaxx delete` and `gaxx certs
 * rotate` hold `<state>/fleets/<fleet>.lock` while they run, and a scheduler daemon while it
 * renews the fleet's certificates, so a delete cannot report a fleet gone while a spawn of it goes
 * on creating and recording hosts, and two rotations of one agent never cross (the second asked
 * the agent for a new key while the first pushed the certificate of the key before: "key.pem
 * does not match cert.pem", and each revoked the certificate the other had just issued). The
 * file holds the holder's pid, command, the process's start time and the boot's id; a lock whose
 * process is gone is taken over (a claim file, claim-file.ts).
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { asProcessMark, fileAccessError, GaxxError, heldByAnother, makeDirs, processMark, takeClaim } from '../../proto/index.js';
import { assertFleetName } from '../state.js';

/** What holds a fleet's lock, as a refusal names it (`a gaxx <command> of fleet F is running`). */
export type FleetCommand = 'spawn' | 'delete' | 'certs rotate' | 'scheduler (certificate renewal)';

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

/** The fleet locks this process holds: lock path -> command. */
const heldHere = new Map<string, string>();

function heldBy(fleet: string, path: string, holder: Pick<Holder, 'pid' | 'command'>): GaxxError {
  return new GaxxError(
    'FAILED_PRECONDITION',
    `a gaxx ${holder.command} of fleet ${fleet} is running (pid ${holder.pid}, lock ${path}): wait for it to end, or stop it, then run this again`,
    { details: { pid: holder.pid, command: holder.command } },
  );
}

/**
 * Takes fleet `fleet`'s lock for `command`; FAILED_PRECONDITION naming the pid when another live
 * gaxx holds it.
 */
export function lockFleet(fleetsDir: string, fleet: string, command: FleetCommand): FleetLock {
  assertFleetName(fleet);
  const path = join(fleetsDir, `${fleet}.lock`);
  try {
    makeDirs(fleetsDir, { mode: 0o700 });
  } catch (e) {
    throw fileAccessError(e) ?? e;
  }
  // A claim of this process's own holds nothing against a take from another process; one held here (a
  // daemon's reaper deleting the fleet its renewal would renew) is refused as another holder's is.
  const here = heldHere.get(path);
  if (here !== undefined) throw heldBy(fleet, path, { pid: process.pid, command: here });
  const me: Holder = { ...processMark(), command };
  const got = takeClaim(path, `${JSON.stringify(me)}\n`, held);
  if (got.taken) {
    heldHere.set(path, command);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        heldHere.delete(path);
        if (holderOf(path)?.pid === process.pid) rmSync(path, { force: true });
      },
    };
  }
  const holder = parseHolder(got.held);
  if (holder) throw heldBy(fleet, path, holder);
  throw new GaxxError('FAILED_PRECONDITION', `could not take the lock ${path}: other gaxx commands keep taking it`);
}
