/**
 * PutFile/GetFile, confined to one root (the data dir, or the cert dir for rotation). Absolute
 * paths, `..` segments, symlinks and hard-linked files are PATH_ESCAPE, checked on what is opened
 * (safe-open.ts), never by name before opening. Uploads go to a temp file in the agent's own
 * `tasks/` (beside the target when that is another file system) and are renamed into place only
 * after size and sha256 match; cert-area pushes are staged and validated as a
 * whole cert dir first (cert-area.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { z } from 'zod';
import { GaxxError, inside, MAX_FILE_BYTES, type GetFileChunk, type PutFileChunk__Output, type PutFileResponse } from '../../proto/index.js';
import { TASKS_DIR } from '../exec/task-dirs.js';
import { fileRefusal } from './fs-refusal.js';
import { components, fdPath, openDirIn, openFileIn, openParent } from './safe-open.js';

/** Files the cert area accepts (issue 3 rotation pushes these). */
export const CERT_AREA_FILES = new Set(['cert.pem', 'key.pem', 'ca.pem', 'revoked.json']);
/** The largest file PutFile takes and GetFile sends (shared with the client, which checks it too). */
export { MAX_FILE_BYTES };
/** The longest path PutFile and GetFile take. */
const MAX_PATH_CHARS = 4096;
/**
 * The most directories a PutFile path goes through: far past any layout a caller needs, and far
 * below what a tree may hold before removing it is a job of its own (a 2000-deep one took Node's
 * recursive rm past its stack).
 */
export const MAX_PATH_DEPTH = 64;
/** The longest name of one file or directory (NAME_MAX of Linux file systems). */
const MAX_NAME_BYTES = 255;
/** Whether every name in `rel` fits MAX_NAME_BYTES (a longer one is ENAMETOOLONG, at the end of an upload). */
const namesFit = (rel: string) => rel.split('/').every((c) => Buffer.byteLength(c) <= MAX_NAME_BYTES);
const CHUNK = 64 * 1024;

/** The longest existing prefix of `p`, resolved through symlinks. */
function realExisting(p: string): string {
  let cur = p;
  while (!existsSync(cur)) cur = dirname(cur);
  return join(realpathSync(cur), relative(cur, p));
}

/**
 * PERMISSION_DENIED for a path in the data area's `tasks/`: the agent's own scratch and warm
 * sandbox dirs, which no caller may write into or name (`doing`: what to do elsewhere instead).
 */
function refuseTasksArea(parts: string[], doing: string): void {
  if (parts[0] === TASKS_DIR) throw new GaxxError('PERMISSION_DENIED', `'${TASKS_DIR}/' holds the tasks' own work dirs: ${doing} elsewhere in the data area`);
}

/**
 * A task's named work dir `rel` under the data dir `root`: its path and its components joined
 * (`rel` as the launcher walks it, opening each component without following a symlink). Refused:
 * absolute paths, `..`, the data dir itself and the agent's own `tasks/` (a task that could write
 * either could plant a symlink where other tasks' work dirs are made), and a path that leads out
 * of root through a symlink now (said early; the launcher's walk is what keeps it so).
 */
export function workDirIn(root: string, rel: string): { path: string; rel: string } {
  if (rel.split('/').every((p) => p === '' || p === '.'))
    throw new GaxxError('INVALID_ARGUMENT', `work dir '${rel}' names the data area itself: name a directory under it`);
  const parts = components(rel);
  refuseTasksArea(parts, 'name a work dir');
  try {
    const realRoot = realpathSync(root);
    const full = join(realRoot, ...parts);
    if (!inside(realRoot, realExisting(full))) throw new GaxxError('PATH_ESCAPE', `path '${rel}' leaves its area`);
    return { path: full, rel: parts.join('/') };
  } catch (e) {
    throw fileRefusal(e, 'use', rel);
  }
}

const headerSchema = z.object({
  path: z
    .string()
    .min(1)
    .max(MAX_PATH_CHARS)
    .refine((p) => !p.endsWith('/'), 'names a directory (ends in /): name the file')
    .refine(namesFit, `a name in it is over ${MAX_NAME_BYTES} bytes`)
    .refine((p) => p.split('/').filter((c) => c !== '' && c !== '.').length <= MAX_PATH_DEPTH + 1, `at most ${MAX_PATH_DEPTH} directories deep`),
  mode: z.number().int().min(0).max(0o777),
  size: z.number().int().min(0).max(MAX_FILE_BYTES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex sha256'),
  area: z.enum(['FILE_AREA_DATA', 'FILE_AREA_CERTS']),
});

/** Roots PutFile may write to; cert-area pushes go through `certs` (staged and validated). */
export interface FileAreas {
  dataDir: string;
  certsDir: string;
  certs?: CertArea | undefined;
}

/** Applies one pushed cert-area file, or refuses it leaving everything as it was. */
export interface CertArea {
  apply(name: string, data: Buffer): Promise<void>;
}

type Header = z.infer<typeof headerSchema>;

/** Reads the header chunk; INVALID_ARGUMENT with dot-paths when it is missing or bad. */
async function readHeader(it: AsyncIterator<PutFileChunk__Output>): Promise<Header> {
  const first = await it.next();
  if (first.done || !first.value.header) throw new GaxxError('INVALID_ARGUMENT', 'PutFile must start with a header');
  const parsed = headerSchema.safeParse(first.value.header);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `header.${i.path.join('.')}: ${i.message}`);
    throw new GaxxError('INVALID_ARGUMENT', problems.join('; '), { details: { problems } });
  }
  return parsed.data;
}

/** Receives the data chunks into `sink`, checking size and sha256 against the header. */
async function receiveData(it: AsyncIterator<PutFileChunk__Output>, h: Header, sink: (b: Buffer) => Promise<unknown>): Promise<string> {
  const hash = createHash('sha256');
  let size = 0;
  for (let n = await it.next(); !n.done; n = await it.next()) {
    const data = n.value.data;
    if (!data) throw new GaxxError('INVALID_ARGUMENT', 'PutFile sends one header, then only data');
    size += data.length;
    if (size > h.size) throw new GaxxError('INVALID_ARGUMENT', `more data than the header's size ${h.size}`);
    hash.update(data);
    await sink(data);
  }
  if (size !== h.size) throw new GaxxError('INVALID_ARGUMENT', `got ${size} bytes, header said ${h.size}`);
  const digest = hash.digest('hex');
  if (digest !== h.sha256) throw new GaxxError('CHECKSUM_MISMATCH', 'sha256 of the received data does not match the header');
  return digest;
}

const MAX_CERT_FILE_BYTES = 1024 * 1024;

/** A cert-area push: received whole, then staged and validated by `areas.certs` before anything is replaced. */
async function receiveCertPush(it: AsyncIterator<PutFileChunk__Output>, h: Header, areas: FileAreas, mayUseCerts: boolean): Promise<PutFileResponse> {
  if (!mayUseCerts) throw new GaxxError('PERMISSION_DENIED', 'only the operator role may write the cert area');
  if (!CERT_AREA_FILES.has(h.path)) throw new GaxxError('PATH_ESCAPE', `the cert area holds only ${[...CERT_AREA_FILES].join(', ')}`);
  if (h.size > MAX_CERT_FILE_BYTES) throw new GaxxError('INVALID_ARGUMENT', `a cert-area file is at most ${MAX_CERT_FILE_BYTES} bytes`);
  if (!areas.certs) throw new GaxxError('FAILED_PRECONDITION', 'this agent takes no cert-area pushes');
  const parts: Buffer[] = [];
  const digest = await receiveData(it, h, async (b) => parts.push(b));
  await areas.certs.apply(h.path, Buffer.concat(parts));
  return { path: h.path, size: h.size, sha256: digest };
}

/** Receives an upload (header first, then data) and commits it atomically. */
export async function receivePut(chunks: AsyncIterable<PutFileChunk__Output>, areas: FileAreas, mayUseCerts: boolean): Promise<PutFileResponse> {
  const it = chunks[Symbol.asyncIterator]();
  const h = await readHeader(it);
  try {
    return await (h.area === 'FILE_AREA_CERTS' ? receiveCertPush(it, h, areas, mayUseCerts) : receiveDataFile(it, h, areas));
  } catch (e) {
    throw fileRefusal(e, 'put', h.path);
  }
}

/** A data-area upload: into a temp file (stagingDir), renamed over the target once size and sha256 match. */
async function receiveDataFile(it: AsyncIterator<PutFileChunk__Output>, h: Header, areas: FileAreas): Promise<PutFileResponse> {
  // The tasks' scratch dirs are the agent's: a file put there would be in a task's "fresh" work
  // dir before it starts, and a file named `tasks` would keep every task from getting one.
  refuseTasksArea(components(h.path), 'put files');
  // The parent is walked and pinned (safe-open.ts); temp file and rename go through its descriptor.
  const { dir, name } = await openParent(areas.dataDir, h.path, true);
  const stage = await stagingDir(areas.dataDir, dir);
  const tmp = stage ? `${fdPath(stage)}/${UPLOAD_PREFIX}${randomBytes(6).toString('hex')}` : `${fdPath(dir)}/.${randomBytes(6).toString('hex')}.part`;
  let fh: FileHandle | undefined;
  let committed = false;
  try {
    // Refused before the data comes, not after (the rename would fail with EISDIR).
    if ((await lstat(`${fdPath(dir)}/${name}`).catch(() => undefined))?.isDirectory()) {
      throw new GaxxError('INVALID_ARGUMENT', `cannot put '${h.path}': it is a directory: name a file`);
    }
    fh = await open(tmp, 'wx', h.mode || 0o600);
    const out = fh;
    const digest = await receiveData(it, h, (b) => out.write(b));
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, `${fdPath(dir)}/${name}`);
    committed = true;
    return { path: h.path, size: h.size, sha256: digest };
  } finally {
    if (!committed) {
      await fh?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    }
    await stage?.close();
    await dir.close();
  }
}

/**
 * Uploads being received are written in the agent's own `tasks/` under this prefix (`+` is in no
 * task id, so no scratch dir is one) and renamed into place once whole: an agent killed mid-upload
 * leaves its part there, where the agent removes it when it starts again (leftovers.ts), not
 * hidden beside the target, where nothing would ever find it.
 */
export const UPLOAD_PREFIX = '+put-';

/**
 * The agent's `tasks/` dir, opened by the safe walk, when it is on the file system of the upload's
 * target dir `target` (a rename cannot cross one); undefined otherwise, or when it cannot be made:
 * the part is then written beside the target, as a hidden `.<hex>.part`.
 */
async function stagingDir(dataDir: string, target: FileHandle): Promise<FileHandle | undefined> {
  let stage: FileHandle | undefined;
  try {
    stage = await openDirIn(dataDir, TASKS_DIR, true);
    const [a, b] = await Promise.all([stage.stat(), target.stat()]);
    if (a.dev === b.dev) return stage;
  } catch {
    // Beside the target instead: the upload itself says what is wrong with that dir, if anything.
  }
  await stage?.close();
  return undefined;
}

/** CANCELLED once `signal` is aborted (the caller went away, or its deadline passed). */
function stopIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new GaxxError('CANCELLED', 'the caller went away');
}

/**
 * Reads the first `size` bytes of `fh` by position (the descriptor that is hashed is the one that
 * is sent), chunk by chunk into `each`; what a task appends meanwhile is not read.
 */
async function readAll(
  fh: FileHandle,
  size: number,
  rel: string,
  signal: AbortSignal | undefined,
  each: (chunk: Buffer) => Promise<void> | void,
): Promise<void> {
  for (let pos = 0; pos < size;) {
    stopIfCancelled(signal);
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) throw new GaxxError('CHECKSUM_MISMATCH', `'${rel}' changed while it was sent`);
    pos += bytesRead;
    await each(buf.subarray(0, bytesRead));
  }
}

/**
 * Sends a data-area file: header (size, mode, sha256), then 64 KiB chunks; `write` resolves when
 * the peer can take more. Hashing and sending read the same open descriptor; a file that changes
 * in between (a task still writing it) ends the stream with CHECKSUM_MISMATCH. A file over
 * MAX_FILE_BYTES (a task's 64 GiB sparse file hashed for minutes) is refused before it is read,
 * and reading stops once `signal` is aborted.
 */
export async function sendFile(dataDir: string, rel: string, write: (c: GetFileChunk) => Promise<void>, signal?: AbortSignal): Promise<void> {
  if (rel.length > MAX_PATH_CHARS) throw new GaxxError('INVALID_ARGUMENT', `path: at most ${MAX_PATH_CHARS} characters`);
  if (!namesFit(rel)) throw new GaxxError('INVALID_ARGUMENT', `path: a name in it is over ${MAX_NAME_BYTES} bytes`);
  try {
    const fh = await openFileIn(dataDir, rel);
    try {
      await sendOpen(fh, rel, write, signal);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw fileRefusal(e, 'get', rel);
  }
}

async function sendOpen(fh: FileHandle, rel: string, write: (c: GetFileChunk) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  const st = await fh.stat();
  if (st.size > MAX_FILE_BYTES) {
    throw new GaxxError('FAILED_PRECONDITION', `'${rel}' is ${st.size} bytes; GetFile sends files of at most ${MAX_FILE_BYTES} bytes`);
  }
  const hash = createHash('sha256');
  await readAll(fh, st.size, rel, signal, (chunk) => void hash.update(chunk));
  const digest = hash.digest('hex');
  await write({ header: { size: st.size, mode: st.mode & 0o777, sha256: digest } });
  const again = createHash('sha256');
  await readAll(fh, st.size, rel, signal, (chunk) => {
    again.update(chunk);
    return write({ data: chunk });
  });
  if (again.digest('hex') !== digest) throw new GaxxError('CHECKSUM_MISMATCH', `'${rel}' changed while it was sent`);
}
