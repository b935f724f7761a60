/**
 * File transfers with one agent: PutFile's upload and GetFile's download in chunks, each checked
 * against its size and SHA-256. Neither side holds a whole file: an upload reads a local file as
 * it sends it (with the stream's backpressure), a download hands each chunk to the caller's
 * `write` before taking the next one, and both stop at MAX_FILE_BYTES (an upload before reading).
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type * as grpc from '@grpc/grpc-js';
import {
  GaxxError,
  isGaxxError,
  MAX_FILE_BYTES,
  nodeFsPromises,
  type AgentGrpcClient,
  type GetFileChunk__Output,
  type PutFileChunk,
  type PutFileResponse__Output,
} from '../../proto/index.js';

/** File transfers are sent in chunks of this size. */
const FILE_CHUNK_BYTES = 64 * 1024;

/** The agent client's part in a transfer: the agent's address, the deadline for a transfer of so many bytes, its error mapping. */
export interface TransferContext {
  address: string;
  /** How long (ms) a transfer of `bytes` may take. */
  deadlineMs(bytes: number): number;
  mapError(e: unknown): GaxxError;
}

/** A local file to upload, as it was hashed (through one descriptor, before any agent is called). */
export interface LocalFile {
  path: string;
  size: number;
  sha256: string;
  /** Its permission bits. */
  mode: number;
}

/**
 * CANCELLED for a transfer stopped by its caller's `signal` (Ctrl-C): said as such, not as the
 * transport's closed stream, so that the caller can tell its own stop from an agent's failure.
 */
export const transferCancelled = (path: string, address: string): GaxxError =>
  new GaxxError('CANCELLED', `${path} with agent ${address}: stopped before it was complete (interrupted)`);

/** What a download delivered: its size, sha256 (both checked against the agent's header) and the agent's mode bits. */
export interface Downloaded {
  size: number;
  sha256: string;
  mode: number;
}

const sha256Of = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

const overLimit = (what: string, size: number): GaxxError =>
  new GaxxError('INVALID_ARGUMENT', `${what} is ${size} bytes; files of at most ${MAX_FILE_BYTES} bytes are copied`);

/** Reads `size` bytes of `fh` in chunks (each a fresh buffer: a sent chunk may still be queued); fewer is CHECKSUM_MISMATCH. */
async function* chunksOf(fh: FileHandle, size: number, path: string): AsyncGenerator<Buffer> {
  for (let pos = 0; pos < size;) {
    const buf = Buffer.allocUnsafe(Math.min(FILE_CHUNK_BYTES, size - pos));
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) throw new GaxxError('CHECKSUM_MISMATCH', `${path} shrank to ${pos} bytes while it was read`);
    pos += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

async function openLocal(path: string): Promise<FileHandle> {
  try {
    // O_NONBLOCK: a FIFO put in the file's place is not waited on (it is refused as no regular file).
    // node:fs/promises on first use: gaxx exec, which loads this module, reads no local file.
    return await nodeFsPromises().open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new GaxxError('NOT_FOUND', `cannot read '${path}': ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Stats and hashes a local file for upload through one descriptor: INVALID_ARGUMENT for what is
 * no regular file or is over MAX_FILE_BYTES (told before a byte is read), NOT_FOUND when it
 * cannot be opened or read, CANCELLED once `signal` is aborted (hashing 1 GiB takes seconds).
 */
export async function localFile(path: string, signal?: AbortSignal): Promise<LocalFile> {
  const fh = await openLocal(path);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new GaxxError('INVALID_ARGUMENT', `'${path}' is not a regular file`);
    if (st.size > MAX_FILE_BYTES) throw overLimit(`'${path}'`, st.size);
    const hash = createHash('sha256');
    for await (const chunk of chunksOf(fh, st.size, path)) {
      if (signal?.aborted) throw new GaxxError('CANCELLED', `'${path}' was not sent: interrupted while it was read`);
      hash.update(chunk);
    }
    return { path, size: st.size, sha256: hash.digest('hex'), mode: st.mode & 0o777 };
  } catch (e) {
    if (isGaxxError(e)) throw e;
    throw new GaxxError('NOT_FOUND', `cannot read '${path}': ${(e as Error).message}`, { cause: e });
  } finally {
    await fh.close();
  }
}

/** The chunks of an upload: slices of a buffer, or a local file read again and checked against its first read. */
async function* uploadChunks(source: Buffer | LocalFile): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(source)) {
    for (let i = 0; i < source.length; i += FILE_CHUNK_BYTES) yield source.subarray(i, i + FILE_CHUNK_BYTES);
    return;
  }
  const fh = await openLocal(source.path);
  try {
    const hash = createHash('sha256');
    for await (const chunk of chunksOf(fh, source.size, source.path)) {
      hash.update(chunk);
      yield chunk;
    }
    if (hash.digest('hex') !== source.sha256) throw new GaxxError('CHECKSUM_MISMATCH', `${source.path} changed while it was sent`);
  } finally {
    await fh.close();
  }
}

/**
 * Uploads `source` (bytes, or a local file from localFile) to `path` through `client`'s PutFile,
 * one chunk in flight beyond what the stream buffers; CHECKSUM_MISMATCH when the agent stored
 * other bytes, or when the local file changed while it was sent. Once `signal` is aborted while
 * data is still being sent, the call is cancelled (the agent removes its temp file, and the file
 * at `path` stays as it was) and this rejects with CANCELLED; once everything is sent, the
 * agent's answer is awaited whatever `signal` says, so that what it did is known.
 */
export async function putFile(
  client: AgentGrpcClient,
  path: string,
  source: Buffer | LocalFile,
  opts: { mode?: number; area?: 'FILE_AREA_DATA' | 'FILE_AREA_CERTS'; signal?: AbortSignal | undefined },
  ctx: TransferContext,
): Promise<PutFileResponse__Output> {
  const size = Buffer.isBuffer(source) ? source.length : source.size;
  const sha256 = Buffer.isBuffer(source) ? sha256Of(source) : source.sha256;
  if (size > MAX_FILE_BYTES) throw overLimit(`the upload to ${path}`, size);
  const { signal } = opts;
  if (signal?.aborted) throw transferCancelled(path, ctx.address);
  let call!: grpc.ClientWritableStream<PutFileChunk>;
  const done = new Promise<PutFileResponse__Output>((resolve, reject) => {
    call = client.putFile({ deadline: Date.now() + ctx.deadlineMs(size) }, (e, r) => (e || !r ? reject(ctx.mapError(e)) : resolve(r)));
  });
  done.catch(() => undefined); // awaited below; an early refusal also ends the sending loop
  let stopped = false;
  const onAbort = (): void => {
    stopped = true;
    call.cancel();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const send = async (msg: PutFileChunk): Promise<void> => {
    if (stopped) throw transferCancelled(path, ctx.address);
    if (!call.write(msg)) await Promise.race([once(call, 'drain'), done]);
  };
  try {
    await send({ header: { path, mode: opts.mode ?? 0, size, sha256, area: opts.area ?? 'FILE_AREA_DATA' } });
    for await (const chunk of uploadChunks(source)) await send({ data: chunk });
    if (stopped) throw transferCancelled(path, ctx.address);
    signal?.removeEventListener('abort', onAbort);
    call.end();
  } catch (e) {
    signal?.removeEventListener('abort', onAbort);
    call.cancel();
    throw stopped ? transferCancelled(path, ctx.address) : e;
  }
  const res = await done;
  if (res.sha256 !== sha256) throw new GaxxError('CHECKSUM_MISMATCH', `agent ${ctx.address} stored ${path} with sha256 ${res.sha256}, sent ${sha256}`);
  return res;
}

type Header = { size: number; mode: number; sha256: string };

/** The agent's header, refused when it announces more than MAX_FILE_BYTES. */
function checkedHeader(h: NonNullable<GetFileChunk__Output['header']>, path: string, address: string): Header {
  const size = Number(h.size);
  if (size > MAX_FILE_BYTES) {
    throw new GaxxError('FAILED_PRECONDITION', `agent ${address} announced ${path} as ${size} bytes; files of at most ${MAX_FILE_BYTES} bytes are copied`);
  }
  return { size, mode: h.mode, sha256: h.sha256 };
}

/**
 * Downloads `path` through `client`'s GetFile, handing each chunk to `write` (the next is read
 * only once it resolved, so at most the stream's buffer is held). Refused as soon as the agent
 * sends more than its header announced (CHECKSUM_MISMATCH) or announces more than MAX_FILE_BYTES;
 * at the end, CHECKSUM_MISMATCH unless size and sha256 match the header. The call may take
 * `deadlineMs(MAX_FILE_BYTES)` until the header comes, then `deadlineMs(size)` from there.
 * Once `signal` is aborted before the last chunk came, the call is cancelled and this rejects
 * with CANCELLED (the caller removes what it wrote).
 */
export async function getFile(
  client: AgentGrpcClient,
  path: string,
  write: (chunk: Buffer) => Promise<void>,
  ctx: TransferContext,
  signal?: AbortSignal,
): Promise<Downloaded> {
  if (signal?.aborted) throw transferCancelled(path, ctx.address);
  const call = client.getFile({ path }, { deadline: Date.now() + ctx.deadlineMs(MAX_FILE_BYTES) });
  let header: Header | undefined;
  let received = 0;
  const hash = createHash('sha256');
  let timer: NodeJS.Timeout | undefined;
  let expired = false;
  let stopped = false;
  let ended = false;
  let writing = false;
  const onAbort = (): void => {
    stopped = true;
    call.cancel();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of call as AsyncIterable<GetFileChunk__Output>) {
      if (chunk.header) {
        if (header) throw new GaxxError('UNAVAILABLE', `agent ${ctx.address} sent a second header for ${path}`);
        header = checkedHeader(chunk.header, path, ctx.address);
        const ms = ctx.deadlineMs(header.size);
        timer = setTimeout(() => {
          expired = true;
          call.cancel();
        }, ms);
      } else if (chunk.data) {
        if (!header) throw new GaxxError('UNAVAILABLE', `agent ${ctx.address} sent ${path}'s data before its header`);
        received += chunk.data.length;
        if (received > header.size) {
          throw new GaxxError('CHECKSUM_MISMATCH', `agent ${ctx.address} sent more of ${path} than the ${header.size} bytes its header announced`);
        }
        hash.update(chunk.data);
        writing = true;
        await write(chunk.data);
        writing = false;
      }
    }
    ended = true;
  } catch (e) {
    if (expired) throw new GaxxError('DEADLINE_EXCEEDED', `${path} from agent ${ctx.address}: not complete within the deadline for its ${header?.size} bytes`);
    if (stopped && !writing) throw transferCancelled(path, ctx.address);
    // The caller's own failure (its write) is its to name; anything else came from the call.
    throw writing || isGaxxError(e) ? e : ctx.mapError(e);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (!ended) call.cancel();
  }
  if (!header) throw new GaxxError('UNAVAILABLE', `agent ${ctx.address} sent ${path} without a header`);
  const sha256 = hash.digest('hex');
  if (sha256 !== header.sha256 || received !== header.size) {
    throw new GaxxError(
      'CHECKSUM_MISMATCH',
      `${path} from agent ${ctx.address}: got ${received} bytes sha256 ${sha256}, header says ${header.size} bytes ${header.sha256}`,
    );
  }
  return { size: received, sha256, mode: header.mode };
}
