/**
 * The input of `gaxx run --tasks FILE|-`: records separated by newlines (or NULs with -0), read
 * as a stream. Only one chunk and the current partial record are held, so a ten-million-line
 * file costs no more memory than a short one; the reader pauses while the queue window is full
 * (async iteration is pull-based). A final newline does not make an empty last record.
 */
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { GaxxError } from '../../proto/index.js';

/** The longest record accepted (one argv element of a task). */
export const MAX_RECORD_BYTES = 128 * 1024;

/** Opens the task list: a file, or stdin for '-'. NOT_FOUND / USAGE before anything is enqueued. */
export function openTaskList(spec: string, stdin: Readable | undefined, stdinIsTty: boolean | undefined): Readable {
  if (spec === '-') {
    if (!stdin) throw new GaxxError('USAGE', '--tasks - needs a standard input');
    if (stdinIsTty) throw new GaxxError('USAGE', '--tasks - reads standard input, which is a terminal: pipe the list in or give a file');
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

/** The records of a stream, in order. */
export async function* readRecords(input: AsyncIterable<Buffer | string>, separator: '\n' | '\0'): AsyncGenerator<string> {
  const sep = separator === '\n' ? 10 : 0;
  let carry: Buffer = Buffer.alloc(0);
  let n = 0;
  for await (const raw of input) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    let buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let at = buf.indexOf(sep);
    while (at !== -1) {
      n++;
      if (at > MAX_RECORD_BYTES) throw tooLong(n);
      yield buf.toString('utf8', 0, at);
      buf = buf.subarray(at + 1);
      at = buf.indexOf(sep);
    }
    if (buf.length > MAX_RECORD_BYTES) throw tooLong(n + 1);
    // Copy the tail so the chunk it came from can be freed.
    carry = Buffer.from(buf);
  }
  if (carry.length) yield carry.toString('utf8');
}

function tooLong(n: number): GaxxError {
  return new GaxxError('INVALID_ARGUMENT', `--tasks: record ${n} is longer than ${MAX_RECORD_BYTES} bytes`);
}
