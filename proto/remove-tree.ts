/**
 * Removal of a directory tree that someone else shaped: a task's scratch dir, an agent's data
 * dir. Node's recursive rm recurses on the JS stack (rmSync overflowed it at ~2000 levels, a
 * `RangeError` out of `gaxx delete`) and works by whole path (its async form failed with
 * ENAMETOOLONG past PATH_MAX, and left the tree behind). Here the walk is a loop: each directory
 * is opened with O_NOFOLLOW and its entries are removed through that descriptor's /proc/self/fd
 * link (as openat would), so paths stay short at any depth and no symlink is ever followed. At
 * most MAX_HELD directories are held open at once: a subdirectory deeper than that is first moved
 * up, to the top of the tree, and emptied from there later. Every step is an awaited call, so a
 * big tree never holds the event loop.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, existsSync } from 'node:fs';
import { chmod, lstat, open, opendir, rename, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { GaxxError } from './errors.js';

const DIR_FLAGS = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW;
/** Directories held open at once; a deeper one is moved up to the top first. */
const MAX_HELD = 32;

const fdPath = (fh: FileHandle) => `/proc/self/fd/${fh.fd}`;
const at = (fh: FileHandle, name: string) => `${fdPath(fh)}/${name}`;
const missing = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';
const unlessMissing = (e: unknown) => (missing(e) ? undefined : Promise.reject(e));

/**
 * Opens a directory without following a symlink, made searchable and writable for its owner (a
 * task may leave a dir mode 000; it is one of the tree's, and goes). Nothing else writes to a
 * tree while it is removed (its task has ended), so the chmod by name after lstat is safe.
 */
async function openDir(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, DIR_FLAGS);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EACCES' || !(await lstat(path)).isDirectory()) throw e;
    await chmod(path, 0o700);
    fh = await open(path, DIR_FLAGS);
  }
  try {
    const st = await fh.stat();
    if ((st.mode & 0o700) !== 0o700) await fh.chmod((st.mode & 0o7777) | 0o700);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Removes the entries of `dir` that are not directories, up to its first subdirectory: that one's name. */
async function clearFiles(dir: FileHandle): Promise<string | undefined> {
  for await (const e of await opendir(fdPath(dir))) {
    if (e.isDirectory()) return e.name;
    await unlink(at(dir, e.name)).catch(unlessMissing);
  }
  return undefined;
}

/** Empties the open directory `top`, depth first, with at most MAX_HELD more directories open. */
async function emptyDir(top: FileHandle): Promise<void> {
  const held: Array<{ fh: FileHandle; name: string }> = [];
  const current = () => held.at(-1)?.fh ?? top;
  try {
    for (;;) {
      const dir = current();
      const sub = await clearFiles(dir);
      if (sub !== undefined && held.length < MAX_HELD) {
        held.push({ fh: await openDir(at(dir, sub)), name: sub });
      } else if (sub !== undefined) {
        // Moving a directory to another parent needs write permission on it (its `..` changes).
        await (await openDir(at(dir, sub))).close();
        await rename(at(dir, sub), at(top, `.gaxx-rm-${randomBytes(8).toString('hex')}`));
      } else {
        const done = held.pop();
        if (!done) return;
        await done.fh.close();
        await rmdir(at(current(), done.name)).catch(unlessMissing);
      }
    }
  } finally {
    for (const h of held) await h.fh.close().catch(() => undefined);
  }
}

async function removeAny(path: string): Promise<void> {
  const st = await lstat(path).catch(unlessMissing);
  if (!st) return;
  if (!st.isDirectory()) return unlink(path).catch(unlessMissing);
  // Without /proc (not Linux) there is no descriptor-relative removal; Node's own does by path.
  if (!existsSync('/proc/self/fd')) return rm(path, { recursive: true, force: true });
  const top = await openDir(path);
  try {
    await emptyDir(top);
  } finally {
    await top.close();
  }
  await rmdir(path).catch(unlessMissing);
}

/**
 * Removes `path` and everything under it, at any depth, never following a symlink (a link is
 * removed, not what it points to); nothing when it does not exist. Refuses with FILE_ACCESS
 * naming `path` when something in it cannot be removed (another user's file, a mount point);
 * what was removed by then stays removed.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await removeAny(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = typeof err.code === 'string' ? `${err.code} on ${err.syscall ?? 'a file'}` : String(e);
    throw new GaxxError('FILE_ACCESS', `cannot remove ${path}: ${why}; remove what is left by hand`, { cause: e, details: { path, errno: err.code } });
  }
}
