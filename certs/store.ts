/**
 * Files that hold keys and certificates: written atomically with explicit modes, and private
 * files refused when group or others can read them.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GaxxError, makeDirs, namingPath, nodeFsPromises } from '../proto/index.js';

/** How a file is written (writeFileAtomic). */
export interface WriteOptions {
  /**
   * false: whole, but not forced to disk (no fsync of the file or of its directory). For what
   * matters no longer than this machine's processes (a local agent's certs, record and pid
   * file): a power loss that could undo the write ends what they describe too, and on a busy
   * disk each fsync costs milliseconds on the caller's thread. Default true.
   */
  durable?: boolean;
}

/**
 * Writes `data` to `path` so that a crash at any point leaves either the old file or the new one:
 * a temp file in the same directory, fsync, rename over `path`, then fsync of the directory so
 * the rename itself is on disk (both fsyncs left out with `durable: false`: the file is still
 * whole or absent to any process, not kept through a power loss). The file gets exactly `mode`
 * (the umask does not narrow it: an agent bundle must stay readable by the agent user). A missing
 * directory is created 0700.
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600, opts: WriteOptions = {}): void {
  const durable = opts.durable ?? true;
  const dir = dirname(path);
  makeDirs(dir, { mode: 0o700 });
  const tmp = tempBeside(path);
  const fd = openSync(tmp, 'wx', mode);
  let open = true;
  try {
    fchmodSync(fd, mode);
    writeFileSync(fd, data);
    if (durable) fsyncSync(fd);
    closeSync(fd);
    open = false;
    renameSync(tmp, path);
  } catch (e) {
    if (open) closeSync(fd);
    unlinkSync(tmp);
    throw namingPath(e, path);
  }
  if (durable) fsyncDir(dir);
}

/** A fresh temp file beside `path` (O_EXCL, 0600: never through a planted symlink). */
const tempBeside = (path: string): string => join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);

/**
 * Whether `name` is one of the temp files writeFileAtomic and writeStreamAtomic make: what a
 * process killed mid-write leaves beside the file, for the owner of a dir to sweep.
 */
export const isAtomicTemp = (name: string): boolean => /^\.[0-9a-f]{12}\.tmp$/.test(name);

/**
 * The temp files of writeStreamAtomic still being written. A process that exits meanwhile (a
 * second Ctrl-C, an error no one caught: process.exit, not the failure path below) removes them
 * as it exits, so that a download cut short leaves no hidden part behind; only a SIGKILL can.
 */
const streaming = new Set<string>();
let removeAtExit = false;
function removeStreaming(): void {
  for (const tmp of streaming) {
    try {
      unlinkSync(tmp);
    } catch {
      // Gone already (renamed into place or removed): nothing is left of it.
    }
  }
}

/**
 * Writes a file whose content arrives piece by piece, as writeFileAtomic does a whole one: `fill`
 * gets a `write` for each piece, going to a temp file beside `path` (in an existing directory);
 * only when `fill` resolves is the file given `mode(result)` and renamed over `path`. When `fill`
 * or a write fails, the temp file is removed and the failure passed on: `path` is never a part,
 * and neither is the temp file left when the process exits before `fill` ends (streaming above).
 * Not forced to disk (writeFileAtomic's `durable: false`).
 */
export async function writeStreamAtomic<T>(
  path: string,
  mode: (result: T) => number,
  fill: (write: (piece: Buffer) => Promise<void>) => Promise<T>,
): Promise<T> {
  const tmp = tempBeside(path);
  // node:fs/promises on first use: gaxx exec, which loads this module, never writes a stream.
  const { open, rename, unlink } = nodeFsPromises();
  if (!removeAtExit) {
    removeAtExit = true;
    process.once('exit', removeStreaming);
  }
  streaming.add(tmp);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    let closed = false;
    try {
      const result = await fill(async (piece) => {
        for (let off = 0; off < piece.length;) off += (await fh.write(piece, off)).bytesWritten;
      });
      await fh.chmod(mode(result));
      closed = true;
      await fh.close();
      await rename(tmp, path);
      return result;
    } catch (e) {
      if (!closed) await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw namingPath(e, path);
    }
  } finally {
    streaming.delete(tmp);
  }
}

/** fsync of a directory: makes a rename or create in it durable. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads a file that must exist; a missing file is NOT_FOUND with the path. */
export function readRequiredFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new GaxxError('NOT_FOUND', `${what} not found: ${path}`, { cause: e });
    throw new GaxxError('FAILED_PRECONDITION', `cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Reads a private file (key, secrets). Refused with INSECURE_FILE_MODE when group or others have
 * any access, since a key others can read is no longer a secret, or when it belongs to a user
 * other than this one or root.
 */
export function readPrivateFile(path: string, what = 'private key'): Buffer {
  let mode: number;
  let owner: number;
  try {
    const st = statSync(path);
    mode = st.mode & 0o777;
    owner = st.uid;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new GaxxError('NOT_FOUND', `${what} not found: ${path}`, { cause: e });
    throw e;
  }
  if (mode & 0o077) {
    throw new GaxxError(
      'INSECURE_FILE_MODE',
      `${what} ${path} has mode ${mode.toString(8).padStart(4, '0')}; it must not be readable by group or others (chmod 600 ${path})`,
    );
  }
  // Its owner may read and rewrite it whatever its mode: a secret of another user is not ours.
  const me = process.getuid?.();
  if (me !== undefined && owner !== me && owner !== 0) {
    throw new GaxxError(
      'INSECURE_FILE_MODE',
      `${what} ${path} belongs to uid ${owner}, not to this user (uid ${me}) or root: its owner can read or replace it; make it yours (chown) or use your own`,
    );
  }
  return readRequiredFile(path, what);
}
