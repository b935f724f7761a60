/**
 * The bytes `gaxx exec` sends as the remote command's stdin. ExecRequest carries stdin in the one
 * request message, so input is read whole up front and bounded by what fits in that message.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { GaxxError, nodeFsPromises } from '../proto/index.js';
import { MAX_MESSAGE_BYTES } from '../scheduler/client/index.js';
import type { Io } from './output.js';
import { stdinReadError } from './std-streams.js';

/** Room left in the request for argv, env, task id and framing. */
export const STDIN_MARGIN_BYTES = 64 * 1024;
/** Largest stdin `gaxx exec` sends: the client's (and the agent's default) message size minus the margin. */
export const MAX_EXEC_STDIN_BYTES = MAX_MESSAGE_BYTES - STDIN_MARGIN_BYTES;

/** Where the stdin comes from, as the flags say. */
export interface StdinChoice {
  /** `--stdin FILE`; '-' means standard input, even on a terminal. */
  file?: string;
  /** `--no-stdin`: send none. */
  none: boolean;
}

/**
 * The stdin to send, or undefined for none. Standard input is read only when it is not a terminal
 * (a pipe or a file) or when `--stdin -` asks for it: a terminal would otherwise block the run;
 * the null device is not read at all (it holds nothing).
 * Throws INVALID_ARGUMENT when the input exceeds `limit`, CANCELLED when `signal` aborts first,
 * FILE_ACCESS when it cannot be read (standard input a directory, or open only for writing; a
 * failed read): never sent as empty.
 */
export async function readExecStdin(choice: StdinChoice, io: Io, signal: AbortSignal, limit = MAX_EXEC_STDIN_BYTES): Promise<Buffer | undefined> {
  if (choice.none) return undefined;
  if (choice.file !== undefined && choice.file !== '-') return readFileInput(choice.file, signal, limit);
  if (choice.file === undefined && io.stdinIsTty === true) return undefined;
  const unreadable = io.stdinUnreadable;
  if (unreadable) throw unreadable;
  // Nothing to read, and no stream made to read it.
  if (io.stdinIsNull === true || !io.stdin) return undefined;
  const data = await readBounded(io.stdin, 'standard input', signal, limit, (e) => stdinReadError(e, io.stdinFile));
  return data.length > 0 ? data : undefined;
}

async function readFileInput(path: string, signal: AbortSignal, limit: number): Promise<Buffer | undefined> {
  let fh: FileHandle;
  try {
    // Only --stdin FILE needs node:fs/promises: loaded here, not on every exec and run.
    fh = await nodeFsPromises().open(path, 'r');
  } catch (e) {
    throw openError(path, e);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new GaxxError('INVALID_ARGUMENT', `--stdin ${path} is a directory`);
    // A regular file's size is known: refuse it without reading. Pipes and devices are read bounded.
    if (st.isFile() && st.size > limit) throw tooLarge(`--stdin ${path}`, limit);
    const data = await readBounded(fh.createReadStream({ autoClose: false }), `--stdin ${path}`, signal, limit, (e) => fileReadError(path, e));
    return data.length > 0 ? data : undefined;
  } finally {
    await fh.close();
  }
}

function openError(path: string, e: unknown): GaxxError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new GaxxError('NOT_FOUND', `--stdin ${path}: no such file`, { cause: e });
  if (code === 'EACCES' || code === 'EPERM') return new GaxxError('PERMISSION_DENIED', `--stdin ${path}: permission denied`, { cause: e });
  return new GaxxError('INVALID_ARGUMENT', `--stdin ${path}: cannot open (${code ?? 'error'})`, { cause: e });
}

function tooLarge(what: string, limit: number): GaxxError {
  return new GaxxError(
    'INVALID_ARGUMENT',
    `${what} exceeds ${limit} bytes, the most one exec request carries; copy large input to the agent as a file instead`,
  );
}

/** A failed read of `--stdin FILE` as FILE_ACCESS, naming the file and the errno. */
function fileReadError(path: string, e: NodeJS.ErrnoException): GaxxError {
  return new GaxxError('FILE_ACCESS', `cannot read --stdin ${path}: ${e.message}`, { cause: e, details: { path, errno: e.code } });
}

/**
 * Reads `stream` to its end, refusing more than `limit` bytes; stops reading as soon as it is
 * over. A failed read is what `readError` makes of it.
 */
async function readBounded(
  stream: Readable,
  what: string,
  signal: AbortSignal,
  limit: number,
  readError: (e: NodeJS.ErrnoException) => GaxxError,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  const onAbort = (): void => {
    stream.destroy();
  };
  if (signal.aborted) throw new GaxxError('CANCELLED', `cancelled while reading ${what}`);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of stream) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      total += b.length;
      if (total > limit) throw tooLarge(what, limit);
      chunks.push(b);
    }
  } catch (e) {
    if (signal.aborted) throw new GaxxError('CANCELLED', `cancelled while reading ${what}`, { cause: e });
    if (e instanceof GaxxError) throw e;
    throw readError(e as NodeJS.ErrnoException);
  } finally {
    signal.removeEventListener('abort', onAbort);
    // Stop reading past the limit; for a pipe the writer then sees EPIPE instead of blocking.
    if (total > limit) stream.destroy();
  }
  // A destroyed stream ends the loop quietly; an abort during the last chunk must still cancel.
  if (signal.aborted) throw new GaxxError('CANCELLED', `cancelled while reading ${what}`);
  return Buffer.concat(chunks, total);
}
