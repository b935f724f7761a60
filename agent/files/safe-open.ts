/**
 * Opening what was checked, never checking one path and opening another: a relative path is
 * walked one component at a time from an open descriptor of the root, each directory opened with
 * O_NOFOLLOW | O_DIRECTORY through the previous one's /proc/self/fd magic link (openat by another
 * name: a task renaming a directory or swapping it for a symlink mid-walk cannot redirect the
 * walk), and the final descriptor's real path is checked against the root once more. Regular
 * files with more than one hard link are refused: a link to a file outside the root would
 * otherwise carry it in.
 */
import { constants as fsc } from 'node:fs';
import { lstat, mkdir, open, readlink, type FileHandle } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
// proto/light: the task launcher opens work dirs with this module, and stays small.
import { GaxxError, inside } from '../../proto/light.js';
import { fileRefusal } from './fs-refusal.js';

const escape = (rel: string) => new GaxxError('PATH_ESCAPE', `path '${rel}' leaves its area`);

/** The path behind an open descriptor (the agent itself is never sandboxed, so /proc is its own). */
export const fdPath = (fh: FileHandle) => `/proc/self/fd/${fh.fd}`;

/** PATH_ESCAPE unless `fh`'s real path lies under `realRoot`. */
async function assertInside(fh: FileHandle, realRoot: string, rel: string): Promise<void> {
  const real = await readlink(fdPath(fh));
  if (!inside(realRoot, real)) throw escape(rel);
}

/** The components of a relative path; INVALID_ARGUMENT or PATH_ESCAPE for bad ones. */
export function components(rel: string): string[] {
  if (rel === '' || rel.includes('\0')) throw new GaxxError('INVALID_ARGUMENT', 'path must be a non-empty relative path');
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (isAbsolute(rel) || rel.includes('\\') || parts.includes('..') || parts.length === 0) throw escape(rel);
  return parts;
}

/**
 * Opens a directory under `dir` without following a symlink; PATH_ESCAPE when it is one (or
 * anything but a directory or a plain file, as one that changes meanwhile), INVALID_ARGUMENT when
 * it is a plain file: refused either way, only the message differs.
 */
async function openDirAt(dir: FileHandle, name: string, rel: string): Promise<FileHandle> {
  const path = `${fdPath(dir)}/${name}`;
  try {
    return await open(path, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' && (await lstat(path).catch(() => undefined))?.isFile()) {
      throw new GaxxError('INVALID_ARGUMENT', `'${name}' in '${rel}' is not a directory`, { cause: e });
    }
    if (code === 'ELOOP' || code === 'ENOTDIR') throw escape(rel);
    if (code === 'ENOENT') throw new GaxxError('NOT_FOUND', `no such directory in '${rel}'`, { cause: e });
    throw e;
  }
}

/**
 * Opens the parent directory of `rel` under `root` by the walk above (creating missing
 * directories 0700 when `create`); the caller closes it. Returns it and the last component.
 */
export async function openParent(root: string, rel: string, create: boolean): Promise<{ dir: FileHandle; name: string; realRoot: string }> {
  const parts = components(rel);
  const name = parts.pop() as string;
  let dir = await open(root, fsc.O_RDONLY | fsc.O_DIRECTORY);
  const realRoot = await readlink(fdPath(dir));
  try {
    for (const p of parts) {
      if (create)
        await mkdir(`${fdPath(dir)}/${p}`, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : Promise.reject(e)));
      const next = await openDirAt(dir, p, rel);
      await dir.close();
      dir = next;
    }
    await assertInside(dir, realRoot, rel);
    return { dir, name, realRoot };
  } catch (e) {
    await dir.close().catch(() => undefined);
    throw e;
  }
}

/**
 * Opens the directory `rel` under `root` by the walk above, creating missing directories (0700)
 * when `create`: the work dir a sandbox binds by this descriptor (spawn-one.ts), so that a
 * directory swapped for a symlink after the agent checked the path cannot bring another one in.
 */
export async function openDirIn(root: string, rel: string, create: boolean): Promise<FileHandle> {
  const { dir, name, realRoot } = await openParent(root, rel, create);
  let fh: FileHandle;
  try {
    if (create)
      await mkdir(`${fdPath(dir)}/${name}`, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : Promise.reject(e)));
    fh = await openDirAt(dir, name, rel);
  } finally {
    await dir.close();
  }
  try {
    await assertInside(fh, realRoot, rel);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Opens a regular file `rel` under `root` for reading: no symlink anywhere, one hard link only. */
export async function openFileIn(root: string, rel: string): Promise<FileHandle> {
  const { dir, name, realRoot } = await openParent(root, rel, false);
  let fh: FileHandle;
  try {
    fh = await open(`${fdPath(dir)}/${name}`, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw escape(rel);
    if (code === 'ENOENT') throw new GaxxError('NOT_FOUND', `no file '${rel}'`, { cause: e });
    // Not a missing file (no access, too many files open...): said as what it is.
    throw fileRefusal(e, 'get', rel);
  } finally {
    await dir.close();
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new GaxxError('NOT_FOUND', `'${rel}' is not a regular file`);
    if (st.nlink > 1) throw new GaxxError('PATH_ESCAPE', `'${rel}' has ${st.nlink} hard links; a linked file may lie outside its area`);
    await assertInside(fh, realRoot, rel);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}
