/**
 * What the process's standard streams are and how a failed write to one is said. A write to
 * stdout that fails (a full disk, /dev/full, an I/O error, a stdout open only for reading) is never
 * dropped quietly: main.ts (and the bundle's front) report it as FILE_ACCESS (exit 3), as a
 * `--results` folder that cannot be written is. A reader that went away (EPIPE) is not a
 * failure of this kind: it ends the command as SIGPIPE would (141). A stream closed before gaxx
 * started (`>&-`) is not seen: Node opens the null device in its place before any of gaxx runs,
 * the same file, opened the same way, as a parent's /dev/null (`stdio: 'ignore'`, DEVNULL).
 */
import { fstatSync, readlinkSync, statSync } from 'node:fs';
import { GaxxError } from '../proto/index.js';

/** The standard streams a command writes to. */
export type StdStream = 'stdout' | 'stderr';

/**
 * Whether fd is the null device (`< /dev/null`, a service's or a benchmark's stdin): making
 * process.stdin for it sets up a file stream only to read nothing (~5 ms of a `gaxx exec`).
 */
export function isNullDevice(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isCharacterDevice() && st.rdev === statSync('/dev/null').rdev;
  } catch {
    return false;
  }
}

/** The file fd writes to, when it is one with a name (`/dev/full`, `/mnt/out.json`); undefined for a pipe or socket. */
export function streamTarget(fd: number): string | undefined {
  try {
    const target = readlinkSync(`/proc/self/fd/${fd}`);
    return target.startsWith('/') ? target : undefined;
  } catch {
    return undefined;
  }
}

/** What went wrong, by errno, about `name` (what it writes to). */
function problemOf(name: StdStream, e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'EBADF':
      return `${name} is not open for writing (EBADF)`;
    case 'ENOSPC':
      return `no space left on the device ${name} writes to (ENOSPC); free space there, or send ${name} elsewhere`;
    case 'EDQUOT':
      return `disk quota exceeded on the file system ${name} writes to (EDQUOT); free some files there, or send ${name} elsewhere`;
    case 'EFBIG':
      return `the file ${name} writes to is as large as it may grow (EFBIG: the file system's limit or ulimit -f)`;
    case 'EIO':
      return `input/output error on the device ${name} writes to (EIO)`;
    case 'EROFS':
      return `the file system ${name} writes to is read-only (EROFS)`;
    case 'EACCES':
    case 'EPERM':
      return `${name} may not be written (${e.code})`;
    case 'ECONNRESET':
      return `the connection ${name} writes to was reset (ECONNRESET)`;
    default:
      return `${e.message}${e.code && !e.message.includes(e.code) ? ` (${e.code})` : ''}`;
  }
}

/**
 * A failed write to a standard stream as FILE_ACCESS, naming the stream, the file it writes to
 * when it has a name (`target`), and the errno (details.errno).
 */
export function streamWriteError(name: StdStream, e: NodeJS.ErrnoException, target?: string): GaxxError {
  return new GaxxError('FILE_ACCESS', `cannot write ${target ? `${name} (${target})` : name}: ${problemOf(name, e)}`, {
    cause: e,
    details: { stream: name, errno: e.code, ...(target ? { path: target } : {}) },
  });
}
