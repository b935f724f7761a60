/**
 * Makes a directory with the parents it lacks (`mkdir -p`), never through Node's own `recursive`
 * mkdir: Node 20's retries for ever where mkdir keeps failing with ENOENT, as under /proc (whose
 * directories cannot be made), and being synchronous it hears no signal meanwhile: `gaxx run
 * --results /proc/x` spun at full CPU through SIGTERM and Ctrl-C. Here each missing directory is
 * made once, walking up on ENOENT: one that fails with ENOENT again once its parent is there is
 * refused by its file system, and said so. Every place that makes directories from a path a user,
 * a config or the environment names goes through here.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { nodeFsPromises } from './builtins.js';
import { fileAccessError, GaxxError, type FsHints } from './errors.js';

export interface MakeDirsOptions {
  /** The mode of each directory made (the umask narrows it); default 0o777 as mkdir(2). */
  mode?: number;
  /** The fix to suggest for a permission problem, and where else to go (fileAccessError). */
  hint?: string | FsHints;
}

const errnoOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | null)?.code;

/** FILE_ACCESS for a failed mkdir of `path`: fileAccessError's for the errnos it knows, else its own. */
function refusal(e: unknown, path: string, hint: string | FsHints | undefined): unknown {
  if (e instanceof GaxxError) return e;
  const known = fileAccessError(e, hint);
  if (known) return known;
  const errno = errnoOf(e);
  if (errno === undefined) return e;
  const hints: FsHints = typeof hint === 'string' ? { access: hint } : (hint ?? {});
  const failed = (e as NodeJS.ErrnoException).path ?? path;
  const problem =
    errno === 'ENOENT' ? 'its file system makes no directories there' : errno === 'EEXIST' ? 'it is there and is not a directory' : (e as Error).message;
  return new GaxxError('FILE_ACCESS', `cannot mkdir ${failed}: ${problem}; ${hints.elsewhere ?? 'name a directory on a file system that holds files'}`, {
    cause: e,
    details: { path: failed, errno },
  });
}

/** An EEXIST error of mkdir, for a path that is there but is not a directory (nor a link to one). */
function notADirectory(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EEXIST: file already exists, mkdir '${path}'`), { code: 'EEXIST', syscall: 'mkdir', path });
}

/** Accepts `path` when it is a directory (or leads to one); else throws as mkdir's EEXIST (a file, a dangling link). */
function existingDirSync(path: string): void {
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch {
    // a symlink to nothing
  }
  if (!dir) throw notADirectory(path);
}

async function existingDir(path: string): Promise<void> {
  const dir = await nodeFsPromises()
    .stat(path)
    .then(
      (st) => st.isDirectory(),
      () => false,
    );
  if (!dir) throw notADirectory(path);
}

function makeOneSync(path: string, mode: number): void {
  try {
    mkdirSync(path, { mode });
    return;
  } catch (e) {
    if (errnoOf(e) === 'EEXIST') return existingDirSync(path);
    if (errnoOf(e) !== 'ENOENT' || dirname(path) === path) throw e;
  }
  makeOneSync(dirname(path), mode);
  try {
    mkdirSync(path, { mode });
  } catch (e) {
    // Made meanwhile by someone else: as good as ours. Any ENOENT now is final.
    if (errnoOf(e) !== 'EEXIST') throw e;
    existingDirSync(path);
  }
}

async function makeOne(path: string, mode: number): Promise<void> {
  try {
    await nodeFsPromises().mkdir(path, { mode });
    return;
  } catch (e) {
    if (errnoOf(e) === 'EEXIST') return await existingDir(path);
    if (errnoOf(e) !== 'ENOENT' || dirname(path) === path) throw e;
  }
  await makeOne(dirname(path), mode);
  try {
    await nodeFsPromises().mkdir(path, { mode });
  } catch (e) {
    if (errnoOf(e) !== 'EEXIST') throw e;
    await existingDir(path);
  }
}

/**
 * Makes directory `path` and its missing parents (each with `mode`); a directory (or a symlink
 * to one) already there is fine. Fails with FILE_ACCESS naming the path and the fix.
 */
export function makeDirs(path: string, opts: MakeDirsOptions = {}): void {
  const full = resolve(path);
  try {
    makeOneSync(full, opts.mode ?? 0o777);
  } catch (e) {
    throw refusal(e, full, opts.hint);
  }
}

/** makeDirs, off the event loop. */
export async function makeDirsAsync(path: string, opts: MakeDirsOptions = {}): Promise<void> {
  const full = resolve(path);
  try {
    await makeOne(full, opts.mode ?? 0o777);
  } catch (e) {
    throw refusal(e, full, opts.hint);
  }
}
