/**
 * Claim files: a file whose existence claims something for the processes it names (a fleet's
 * lock, a local agent's loopback address). A claim is written whole and linked into place, so
 * that nobody reads one half written and two claimers never both make one. A claim whose
 * processes are gone (killed, the machine rebooted, the pid now another process's) is taken over
 * by one taker only: the stale file is moved aside first (one taker's rename finds it), and a
 * live claim moved aside by a taker that came second is put back.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileAccessError, namingPath } from './errors.js';
import { asProcessMark, processLives, processMark, type ProcessMark } from './proc-stat.js';

/** The process a claim's text names (the pid, start and boot at the top of its JSON), if it names one. */
export function claimMark(text: string | undefined): ProcessMark | undefined {
  try {
    return asProcessMark(JSON.parse(text ?? ''));
  } catch {
    return undefined;
  }
}

/** Whether `m` is another process than this one that still runs: a claim of this process's own left behind holds nothing. */
export function heldByAnother(m: ProcessMark | undefined): boolean {
  return m !== undefined && m.pid !== process.pid && processLives(m);
}

const readOr = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

let made = 0;
/** A name beside `path` that no other claim of this process or of another one uses. */
const besidePath = (path: string, what: string): string => `${path}.${what}.${process.pid}.${++made}`;

/** What takeClaim found: the claim is ours now, or `held` (the live claim's text; undefined when others kept taking it). */
export type ClaimOutcome = { taken: true } | { taken: false; held: string | undefined };

/**
 * Makes the claim `path` holding `text`, unless a claim is there that `live` says is still held;
 * a stale one is taken over (moved aside by one taker only). Gives up after `tries` rounds of
 * others taking it meanwhile. FILE_ACCESS when the claim's dir cannot be written.
 */
export function takeClaim(path: string, text: string, live: (held: string) => boolean, tries = 3): ClaimOutcome {
  const mine = besidePath(path, 'new');
  try {
    writeFileSync(mine, text, { mode: 0o600 });
  } catch (e) {
    // A write that fails (a full disk) names no file: this one is named, so the fix says where.
    throw fileAccessError(namingPath(e, mine)) ?? e;
  }
  try {
    for (let round = 0; round < tries; round++) {
      try {
        linkSync(mine, path);
        return { taken: true };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fileAccessError(e) ?? e;
      }
      const held = readOr(path);
      if (held === undefined) continue;
      if (live(held)) return { taken: false, held };
      moveAsideIf(path, (moved) => moved === held);
    }
    return { taken: false, held: undefined };
  } finally {
    rmSync(mine, { force: true });
  }
}

/** Replaces the text of a claim this process holds (written whole, then renamed over it). */
export function rewriteClaim(path: string, text: string): void {
  const next = besidePath(path, 'next');
  try {
    writeFileSync(next, text, { mode: 0o600 });
    renameSync(next, path);
  } catch (e) {
    rmSync(next, { force: true });
    throw fileAccessError(namingPath(e, next)) ?? e;
  }
}

/** The text of a claim that names this process (processMark), with `extra` fields beside its mark. */
export function processClaimText(extra: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ ...processMark(), ...extra })}\n`;
}

/** takeClaim for a claim that names its process (processClaimText): held while another process it names lives. */
export function takeProcessClaim(path: string, text: string): ClaimOutcome {
  return takeClaim(path, text, (held) => heldByAnother(claimMark(held)));
}

/**
 * Removes the claim `path` when `mine` says its text is this holder's: one taken over meanwhile
 * by someone else (it had gone stale) is put back, not removed.
 */
export function releaseClaim(path: string, mine: (held: string) => boolean): void {
  moveAsideIf(path, mine);
}

/**
 * Moves the claim `path` aside and removes it when `remove` says so of what was moved; else puts
 * it back (unless a new claim was made there meanwhile: that one goes on).
 */
function moveAsideIf(path: string, remove: (moved: string) => boolean): void {
  const aside = besidePath(path, 'stale');
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fileAccessError(e) ?? e;
  }
  const moved = readOr(aside);
  if (moved !== undefined && !remove(moved)) {
    try {
      linkSync(aside, path);
    } catch {
      // Claimed again meanwhile: that claim goes on.
    }
  }
  rmSync(aside, { force: true });
}
