/**
 * Appends a line to a log the agent keeps (audit log, task journal) whole or not at all: a
 * write(2) may write part of its buffer (a disk that fills mid-line), and a line cut there would
 * merge with the next one written, both then unreadable. A failed append is cut back to the
 * file's size before it, which needs no free space.
 */
import { ftruncateSync, writeSync } from 'node:fs';

/** Appends `buf` to `fd` (a file of `size` bytes, opened for append); on failure the file is `size` bytes again, and the error thrown. */
export function appendWhole(fd: number, buf: Buffer, size: number): void {
  let off = 0;
  try {
    while (off < buf.length) {
      const n = writeSync(fd, buf, off, buf.length - off);
      // write(2) returns 0 for a non-empty buffer only on a broken file system: not retried forever.
      if (n <= 0) throw Object.assign(new Error('write wrote nothing'), { code: 'EIO', syscall: 'write' });
      off += n;
    }
  } catch (e) {
    if (off > 0) {
      try {
        ftruncateSync(fd, size);
      } catch {
        // Left torn: the reader skips a line it cannot parse (journal.ts, audit-cli.ts).
      }
    }
    throw e;
  }
}
