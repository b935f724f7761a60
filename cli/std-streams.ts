/**
 * What the process's standard streams are and how a failed read or write of one is said. A write to
 * stdout that fails (a full disk, /dev/full, an I/O error, a stdout open only for reading) is never
 * dropped quietly: main.ts (and the bundle's front) report it as FILE_ACCESS (exit 3), as a
 * `--results` folder that cannot be written is. A reader that went away (EPIPE) is not a
 * failure of this kind: it ends the command as SIGPIPE would (141). A stream closed before gaxx
 * started (`>&-`) is not seen: Node opens the null device in its place before any of gaxx runs,
 * the same file, opened the same way, as a parent's /dev/null (`stdio: 'ignore'`, DEVNULL).
 * A stdin that cannot be read (a directory, one open only for writing, a read that fails) is
 * never taken as empty input: it is FILE_ACCESS (exit 3) too, naming stdin and the errno.
 */
import { fstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
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

/**
 * Whether Node has no stream for reading fd: a directory, a block device (libuv knows no handle
 * for them, and Node's process.stdin is then a stream that ends at once, nothing read).
 */
export function nodeReadsNothing(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isDirectory() || st.isBlockDevice();
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

/** A failed read of fd 0, as Node would have given it (`code`, and its text). */
function readErrno(code: string, text: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${text}, read`), { code, syscall: 'read' });
}

/** Whether fd was opened for writing only (`0>>file`): the access mode of its flags in /proc/self/fdinfo is O_WRONLY. */
function writeOnly(fd: number): boolean {
  try {
    const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1];
    // O_ACCMODE is 3, O_WRONLY 1.
    return flags !== undefined && (Number.parseInt(flags, 8) & 3) === 1;
  } catch {
    return false;
  }
}

/**
 * Why stdin (fd) cannot be read, when that shows without reading it: a directory (`< /tmp`:
 * EISDIR; Node hands a command an empty stream for it, as for any descriptor it has no stream
 * for), a descriptor open only for writing (`0>>file`: EBADF). Undefined when it may be read (a
 * read may still fail). A command checks this before it starts anything (a run is not created).
 */
export function stdinUnreadable(fd = 0): GaxxError | undefined {
  let e: NodeJS.ErrnoException | undefined;
  try {
    if (fstatSync(fd).isDirectory()) e = readErrno('EISDIR', 'illegal operation on a directory');
    else if (writeOnly(fd)) e = readErrno('EBADF', 'bad file descriptor');
  } catch (err) {
    e = err as NodeJS.ErrnoException;
  }
  return e && stdinReadError(e, streamTarget(fd));
}

/** What went wrong reading stdin, by errno. */
function readProblemOf(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'EISDIR':
      return 'stdin is a directory (EISDIR)';
    case 'EBADF':
      return 'stdin is not open for reading (EBADF)';
    case 'EIO':
      return 'input/output error on the device stdin reads from (EIO)';
    case 'ECONNRESET':
      return 'the connection stdin reads from was reset (ECONNRESET)';
    case 'EACCES':
    case 'EPERM':
      return `stdin may not be read (${e.code})`;
    default:
      return `${e.message}${e.code && !e.message.includes(e.code) ? ` (${e.code})` : ''}`;
  }
}

/**
 * A failed read of stdin as FILE_ACCESS, naming stdin, the file it reads when it has a name
 * (`target`: `/tmp`, not a pipe), and the errno (details.errno).
 */
export function stdinReadError(e: NodeJS.ErrnoException, target?: string): GaxxError {
  return new GaxxError('FILE_ACCESS', `cannot read ${target ? `stdin (${target})` : 'stdin'}: ${readProblemOf(e)}`, {
    cause: e,
    details: { stream: 'stdin', errno: e.code, ...(target ? { path: target } : {}) },
  });
}
