/**
 * The bundle's first file: answers a command line that asks only for gaxx's help or version
 * (`gaxx --help`, `gaxx --version`, after any global flags) from a small file, so that neither
 * reads, checks and compiles the CLI's commands (gaxx-cli.cjs, most of the CLI's code). The
 * answer is dispatch.ts's own (programAnswer); every other command line, and one it cannot
 * answer, goes to the full CLI, which parses it anew. Nothing here touches the process before
 * it answers, so the full CLI starts as if run first.
 */
import { writeSync } from 'node:fs';
import { exitCodeFor, printable } from '../proto/index.js';
import { programAnswer } from './dispatch.js';
import { streamTarget, streamWriteError } from './std-streams.js';

/**
 * Writes `text` to stdout with write(2) itself: a stream for one short answer would load Node's
 * stream machinery (a few ms). A reader that went away (`gaxx --help | head -1`) ends us quietly
 * (141, as SIGPIPE would); a stdout left non-blocking by another program gets the rest through
 * the stream after all. A stdout that cannot be written (a full disk, /dev/full) is
 * said on stderr and ends us with 3 (FILE_ACCESS), as the full CLI does.
 */
function print(text: string): void {
  const bytes = Buffer.from(text);
  let at = 0;
  try {
    while (at < bytes.length) at += writeSync(1, bytes, at);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') process.exit(141);
    if (code !== 'EAGAIN') failed(e as NodeJS.ErrnoException);
    process.stdout.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? process.exit(141) : failed(err)));
    process.stdout.write(bytes.subarray(at));
  }
}

/** Says that stdout could not be written (best effort: stderr may fail too) and exits with 3. */
function failed(e: NodeJS.ErrnoException): never {
  const err = streamWriteError('stdout', e, streamTarget(1));
  try {
    writeSync(2, `gaxx: ${printable(err.message)} [${err.code}]\n`);
  } catch {
    // The exit code says it.
  }
  return process.exit(exitCodeFor('FILE_ACCESS'));
}

/** Prints the answer to `argv` and returns true, or returns false for the full CLI to run it. */
export function answered(argv: readonly string[]): boolean {
  let text: string | undefined;
  try {
    text = programAnswer(argv);
  } catch {
    // A malformed command line: the full CLI reports it.
    return false;
  }
  if (text === undefined) return false;
  print(`${text}\n`);
  return true;
}
