/**
 * PutFile/GetFile, confined to one root (the data dir, or the cert dir for rotation). Absolute
 * paths, `..` segments and symlinks whose real path leaves the root are PATH_ESCAPE. Uploads go
 * to a temp file beside the target and are renamed only after size and sha256 match.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, realpathSync } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { z } from 'zod';
import { GaxxError, type GetFileChunk, type PutFileChunk__Output, type PutFileResponse } from '../../proto/index.js';

/** Files the cert area accepts (issue 3 rotation pushes these). */
export const CERT_AREA_FILES = new Set(['cert.pem', 'key.pem', 'ca.pem', 'revoked.json']);
const MAX_FILE_BYTES = 1024 ** 3;
const CHUNK = 64 * 1024;

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The longest existing prefix of `p`, resolved through symlinks. */
function realExisting(p: string): string {
  let cur = p;
  while (!existsSync(cur)) cur = dirname(cur);
  return join(realpathSync(cur), relative(cur, p));
}

/** Resolves `rel` under `root`; PATH_ESCAPE for absolute paths, `..`, or symlinks out of root. */
export function confinedPath(root: string, rel: string): string {
  if (rel === '' || rel.includes('\0')) throw new GaxxError('INVALID_ARGUMENT', 'path must be a non-empty relative path');
  if (isAbsolute(rel) || rel.split(/[\\/]/).includes('..')) throw new GaxxError('PATH_ESCAPE', `path '${rel}' leaves its area`);
  const realRoot = realpathSync(root);
  const full = join(realRoot, rel);
  if (!inside(realRoot, full) || !inside(realRoot, realExisting(full))) throw new GaxxError('PATH_ESCAPE', `path '${rel}' leaves its area`);
  return full;
}

const headerSchema = z.object({
  path: z.string().min(1).max(4096),
  mode: z.number().int().min(0).max(0o777),
  size: z.number().int().min(0).max(MAX_FILE_BYTES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex sha256'),
  area: z.enum(['FILE_AREA_DATA', 'FILE_AREA_CERTS']),
});

/** Roots PutFile may write to. */
export interface FileAreas {
  dataDir: string;
  certsDir: string;
}

/** Receives an upload (header first, then data) and commits it atomically. */
export async function receivePut(chunks: AsyncIterable<PutFileChunk__Output>, areas: FileAreas, mayUseCerts: boolean): Promise<PutFileResponse> {
  const it = chunks[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done || !first.value.header) throw new GaxxError('INVALID_ARGUMENT', 'PutFile must start with a header');
  const parsed = headerSchema.safeParse(first.value.header);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `header.${i.path.join('.')}: ${i.message}`);
    throw new GaxxError('INVALID_ARGUMENT', problems.join('; '), { details: { problems } });
  }
  const h = parsed.data;
  let target: string;
  let mode = h.mode || 0o600;
  if (h.area === 'FILE_AREA_CERTS') {
    if (!mayUseCerts) throw new GaxxError('PERMISSION_DENIED', 'only the operator role may write the cert area');
    if (!CERT_AREA_FILES.has(h.path)) throw new GaxxError('PATH_ESCAPE', `the cert area holds only ${[...CERT_AREA_FILES].join(', ')}`);
    target = confinedPath(areas.certsDir, h.path);
    mode = h.path === 'key.pem' ? 0o600 : 0o644;
  } else {
    target = confinedPath(areas.dataDir, h.path);
  }
  await mkdir(dirname(target), { recursive: true, mode: 0o700 });
  confinedPath(h.area === 'FILE_AREA_CERTS' ? areas.certsDir : areas.dataDir, h.path); // re-check after mkdir
  const tmp = join(dirname(target), `.${randomBytes(6).toString('hex')}.part`);
  const fh = await open(tmp, 'wx', mode);
  const hash = createHash('sha256');
  let size = 0;
  let committed = false;
  try {
    for (let n = await it.next(); !n.done; n = await it.next()) {
      const data = n.value.data;
      if (!data) throw new GaxxError('INVALID_ARGUMENT', 'PutFile sends one header, then only data');
      size += data.length;
      if (size > h.size) throw new GaxxError('INVALID_ARGUMENT', `more data than the header's size ${h.size}`);
      hash.update(data);
      await fh.write(data);
    }
    if (size !== h.size) throw new GaxxError('INVALID_ARGUMENT', `got ${size} bytes, header said ${h.size}`);
    const digest = hash.digest('hex');
    if (digest !== h.sha256) throw new GaxxError('CHECKSUM_MISMATCH', 'sha256 of the received data does not match the header');
    await fh.sync();
    await fh.close();
    await rename(tmp, target);
    committed = true;
    return { path: h.path, size, sha256: digest };
  } finally {
    if (!committed) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    }
  }
}

/** Sends a data-area file: header (size, mode, sha256), then 64 KiB chunks; `write` resolves when the peer can take more. */
export async function sendFile(dataDir: string, rel: string, write: (c: GetFileChunk) => Promise<void>): Promise<void> {
  const full = confinedPath(dataDir, rel);
  const st = await stat(full).catch((e: NodeJS.ErrnoException) => {
    throw new GaxxError('NOT_FOUND', `no file '${rel}'`, { cause: e });
  });
  if (!st.isFile()) throw new GaxxError('NOT_FOUND', `'${rel}' is not a regular file`);
  const hash = createHash('sha256');
  for await (const c of createReadStream(full, { highWaterMark: CHUNK })) hash.update(c as Buffer);
  await write({ header: { size: st.size, mode: st.mode & 0o777, sha256: hash.digest('hex') } });
  for await (const c of createReadStream(full, { highWaterMark: CHUNK })) await write({ data: c as Buffer });
}
