/**
 * The input of `gaxx run --tasks FILE|-`: records separated by newlines (or NULs with -0), read
 * as a stream. Only one chunk and the current partial record are held, so a ten-million-line
 * file costs no more memory than a short one; the reader pauses while the queue window is full
 * (async iteration is pull-based). A final newline does not make an empty last record; an
 * empty line is a record (as GNU parallel takes it). Line endings: when the first line ends in
 * CRLF (a file saved on Windows), one `\r` at the end of every record is part of the line
 * ending and removed; otherwise a `\r` is data. A UTF-8 byte order mark (EF BB BF) at the very
 * start of the input, as such editors also write, is removed (with -0 too): it is no part of the
 * first record. NUL-separated records (-0) are otherwise taken as they are.
 * Records are bytes here: whether one can become a task is decided in records.ts.
 */
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { GaxxError, REQUEST_LIMITS } from '../../proto/index.js';
import type { Io } from '../output.js';
import { stdinReadError } from '../std-streams.js';

/** The longest record read (one argv element of a task); a longer one is skipped, not held. */
export const MAX_RECORD_BYTES = REQUEST_LIMITS.argBytes;

/** A record's bytes, or a mark for one longer than MAX_RECORD_BYTES (its bytes are not kept). */
export type RawRecord = Buffer | { tooLong: true };

/** What openTaskList needs of the standard streams. */
export type TaskListIo = Pick<Io, 'stdin' | 'stdinIsTty' | 'stdinUnreadable' | 'stdinFile'>;

/**
 * Opens the task list: a file, or stdin for '-'. NOT_FOUND / USAGE, and FILE_ACCESS for a stdin
 * that cannot be read (a directory, open only for writing), before anything is enqueued.
 */
export function openTaskList(spec: string, io: TaskListIo): Readable {
  if (spec === '-') {
    if (io.stdinIsTty) throw new GaxxError('USAGE', '--tasks - reads standard input, which is a terminal: pipe the list in or give a file');
    const unreadable = io.stdinUnreadable;
    if (unreadable) throw unreadable;
    const stdin = io.stdin;
    if (!stdin) throw new GaxxError('USAGE', '--tasks - needs a standard input');
    return stdin;
  }
  let st;
  try {
    st = statSync(spec);
  } catch (e) {
    throw new GaxxError('NOT_FOUND', `--tasks: no such file '${spec}'`, { cause: e });
  }
  if (st.isDirectory()) throw new GaxxError('USAGE', `--tasks: '${spec}' is a directory`);
  return createReadStream(spec, { highWaterMark: 64 * 1024 });
}

/**
 * A failed read of the task list (`spec`, as --tasks names it) as FILE_ACCESS naming it and the
 * errno: the input stopped there, so the run cannot be what it asked for.
 */
export function taskListReadError(spec: string, e: unknown, io: Pick<Io, 'stdinFile'>): unknown {
  if (e instanceof GaxxError || typeof (e as NodeJS.ErrnoException | null)?.code !== 'string') return e;
  const err = e as NodeJS.ErrnoException;
  if (spec === '-') return stdinReadError(err, io.stdinFile);
  return new GaxxError('FILE_ACCESS', `cannot read --tasks ${spec}: ${err.message}`, { cause: e, details: { path: spec, errno: err.code } });
}

/** The UTF-8 byte order mark, which editors on Windows put before a file's text: no part of its first record. */
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** The records of a stream, in order: each a copy of its bytes, or `{tooLong}` (never thrown). */
export async function* readRecords(input: AsyncIterable<Buffer | string>, separator: '\n' | '\0'): AsyncGenerator<RawRecord> {
  const sep = separator === '\n' ? 10 : 0;
  let carry: Buffer = Buffer.alloc(0);
  /** Bytes of an over-long record skipped so far (0: not skipping). */
  let skipped = 0;
  /** CRLF line endings, decided by the first line (undefined until it is read). */
  let crlf: boolean | undefined = separator === '\0' ? false : undefined;
  const record = (bytes: Buffer): RawRecord => {
    crlf ??= bytes.at(-1) === 13;
    const body = crlf && bytes.at(-1) === 13 ? bytes.subarray(0, -1) : bytes;
    return body.length > MAX_RECORD_BYTES ? { tooLong: true } : Buffer.from(body);
  };
  /** Until the stream's first bytes are known not to be a BOM (or it is removed). */
  let atStart = true;
  for await (const raw of input) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    let buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    if (atStart) {
      // A stream that begins with fewer bytes than a BOM has: wait for more.
      if (buf.length < BOM.length && BOM.subarray(0, buf.length).equals(buf)) {
        carry = Buffer.from(buf);
        continue;
      }
      atStart = false;
      if (buf.subarray(0, BOM.length).equals(BOM)) buf = buf.subarray(BOM.length);
    }
    let start = 0;
    for (let at = buf.indexOf(sep); at !== -1; at = buf.indexOf(sep, start)) {
      if (skipped) {
        crlf ??= at > start && buf[at - 1] === 13;
        yield { tooLong: true };
        skipped = 0;
      } else yield record(buf.subarray(start, at));
      start = at + 1;
    }
    const rest = buf.subarray(start);
    // Past the limit (and a CR) without a separator: skip the record's bytes until its end.
    if (skipped || rest.length > MAX_RECORD_BYTES + 1) {
      skipped += rest.length;
      carry = Buffer.alloc(0);
    } else carry = Buffer.from(rest); // a copy: the chunk it came from can be freed
  }
  if (skipped) yield { tooLong: true };
  else if (carry.length) yield record(carry);
}
