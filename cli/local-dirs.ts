/**
 * Directories the CLI writes into on this machine (downloads, results, installed agent bundles).
 * Whoever may write to a directory may swap an entry of it for a symlink between gaxx's check and
 * its write, and gaxx (often root) would then write where they chose: so a directory gaxx writes
 * into must be its own, or at least one where others cannot rename what gaxx made (a sticky
 * one, as /tmp), and each directory gaxx makes inside it is made by gaxx and checked when it was
 * already there. The files themselves are written as a fresh temp file (O_EXCL: never through a
 * planted symlink) renamed into place (certs' writeFileAtomic).
 */
import { lstatSync, mkdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { fileAccessError, GaxxError, makeDirs } from '../proto/index.js';

function statOf(dir: string, follow: boolean): Stats {
  try {
    return follow ? statSync(dir) : lstatSync(dir);
  } catch (e) {
    throw fileAccessError(e) ?? e;
  }
}

/**
 * Refuses `dir` unless it is a directory (not a symlink) owned by this user that neither the
 * group nor others may write to (`writableBy`: the mode bits that must be clear, default 0o022).
 */
export function checkOwnDir(dir: string, what: string, writableBy = 0o022): void {
  const st = statOf(dir, false);
  const me = process.getuid?.();
  if (st.isSymbolicLink() || !st.isDirectory() || (me !== undefined && st.uid !== me) || (st.mode & writableBy) !== 0) {
    throw new GaxxError(
      'INSECURE_FILE_MODE',
      `${what} ${dir} must be a directory (not a symlink) owned by uid ${me ?? '?'} that only it may write to; remove it and retry`,
    );
  }
}

/**
 * Makes the directory a user named for gaxx to write into (with its parents) unless it is there,
 * and returns its real path, which is what gaxx then writes under: a symlink on the way is
 * followed once, here, so whoever owns it cannot point it elsewhere later. Refused when that
 * directory or any directory above it belongs to another user (root aside), or may be written by
 * every user without the sticky bit: either could rename what gaxx makes in it, or the path to it.
 */
export function prepareUserDir(dir: string, what: string): string {
  try {
    if (!statSync(dir).isDirectory()) throw new GaxxError('USAGE', `${what} '${dir}' is a file: name a directory (new or existing)`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileAccessError(e) ?? e;
    makeDirs(dir, { hint: { elsewhere: `name another ${what}` } });
  }
  // Checked after the mkdir: a directory someone made first in between is seen here.
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (e) {
    throw fileAccessError(e) ?? e;
  }
  if (!statOf(real, false).isDirectory()) throw new GaxxError('USAGE', `${what} '${dir}' is not a directory`);
  const me = process.getuid?.();
  for (let d = real; ; d = dirname(d)) {
    const st = statOf(d, false);
    const owner = me === undefined || st.uid === me || st.uid === 0;
    const sharedUnsticky = (st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0;
    if (!owner || sharedUnsticky) {
      const where = d === real ? `'${dir}'` : `'${dir}' lies in ${d}, which`;
      throw new GaxxError(
        'INSECURE_FILE_MODE',
        `${what} ${where} ${owner ? 'is writable by every user' : `belongs to uid ${st.uid}`}: another user could redirect what gaxx writes there; use a directory of your own`,
      );
    }
    if (d === dirname(d)) return real;
  }
}

/**
 * Makes `dir` inside a directory prepared as above, or accepts it when it is already there as
 * one of ours (a previous download's); a symlink or someone else's directory is refused. True
 * when it was made now (the caller may remove it again when what it was made for failed).
 */
export function makeOwnSubdir(dir: string, what: string): boolean {
  try {
    mkdirSync(dir, { mode: 0o755 });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fileAccessError(e) ?? e;
  }
  checkOwnDir(dir, what, 0o002);
  return false;
}
