'use strict';
/* global require, module, __dirname, Buffer */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS file by design, see below */
// Copied into dist/bundle by scripts/bundle.mjs. Loads a CommonJS file beside it (the CLI,
// gaxx-cli.cjs, and its vendor files vendor-*.cjs; the agent, gaxx-agent.cjs) with the V8 code
// cache that the build made for it (<file>.v8cache, or a variant's: <file>.<variant>.v8cache,
// made from one command): Node 20 has no compile cache for modules, and compiling these files is
// a good part of the start of every command and of the agent.
// A cache is used only when it was made from this very file (its header holds the file's CRC-32
// and SHA-256: V8 itself checks only the source's length) and V8 accepts it (same V8 version and
// flags); otherwise the file is compiled as usual. A file the build left as it was (the same
// modification time, to the nanosecond, and size as when its cache was made) is taken as
// unchanged without reading a digest: any write since would have moved its modification time
// (the cache records it only once the file system's clock has moved past it, see writeCache).
// Otherwise (a copy, an install that set times of its own) the CRC-32 is what is checked where
// Node has zlib.crc32 (20.15 and later): node:zlib loads in a third of the time node:crypto
// takes, and many commands need neither otherwise. A CRC-32 tells apart the versions of a file
// that a build or an edit makes (one who can write here can write the cache too: it guards
// against mistakes, not attacks). Nothing is ever written here at run time:
// the agent runs as a user who cannot write to its install dir. Modules loaded here land in
// require.cache, so a plain require() of the same file elsewhere gets the same instance.
const Module = require('node:module');
const { isAscii } = require('node:buffer');
const { closeSync, fstatSync, openSync, readFileSync, readSync, statSync, writeFileSync } = require('node:fs');
const { basename, join } = require('node:path');
const { Script } = require('node:vm');

/**
 * Start of every cache file, then the source's CRC-32 (4 bytes), SHA-256 (32), modification time
 * (ms since the epoch, a double: Node's mtimeMs, 0 when not recorded) and size (a double), zeros
 * up to HEADER_BYTES, then V8's data. V8 copies cache data that does not start on an 8-byte
 * boundary (AlignedCachedData) before it reads it: with the data right after the digests (at 52),
 * every load paid for a copy of each cache (0.3 to 1 MB, a page fault per 4 KB of it). The
 * buffers it is read into start aligned (readReused), so the data at a multiple of 8 is read
 * where it lies.
 */
const MAGIC = Buffer.from('gaxx-v8-cache-4\n');
const CRC_AT = MAGIC.length;
const SHA_AT = CRC_AT + 4;
const SHA_BYTES = 32;
const MTIME_AT = SHA_AT + SHA_BYTES;
const SIZE_AT = MTIME_AT + 8;
const DATA_ALIGNMENT = 8;
const HEADER_BYTES = Math.ceil((SIZE_AT + 8) / DATA_ALIGNMENT) * DATA_ALIGNMENT;
/**
 * How much older than now a file's modification time must be for writeCache to record it. Linux
 * stamps a write with a clock that moves once per tick (1 to 10 ms): a file written again within
 * the tick of its last write keeps its time. Once a tick has passed since that time, any later
 * write gets a later one.
 */
const SETTLED_MS = 50;

/** zlib.crc32 where this Node has it (20.15 and later), else undefined. */
function zlibCrc32() {
  const { crc32 } = require('node:zlib');
  return typeof crc32 === 'function' ? crc32 : undefined;
}

const sha256 = (bytes) => require('node:crypto').createHash('sha256').update(bytes).digest();

/**
 * Whether `header` (a cache file's first HEADER_BYTES) was made from `source`, whose file's
 * modification time and size are `stat`'s: at once when they are the ones recorded, else by the
 * digest.
 */
function madeFrom(header, source, stat) {
  const mtime = header.readDoubleBE(MTIME_AT);
  if (mtime !== 0 && mtime === stat.mtimeMs && header.readDoubleBE(SIZE_AT) === stat.size) return true;
  const crc32 = zlibCrc32();
  if (crc32) return header.readUInt32BE(CRC_AT) === crc32(source);
  return header.subarray(SHA_AT, SHA_AT + SHA_BYTES).equals(sha256(source));
}

/**
 * How a file wrapped at build time starts (see wrapped()): such a file (the agent, the CLI) is
 * compiled as it is, so V8 holds its one copy of the text, not a second, wrapped one (~2 MB of the
 * agent's RSS).
 */
const WRAPPED_HEAD = Module.wrap('\0').split('\0')[0];

/** `text` in the function wrapper of a CommonJS module, as the build writes the agent and the CLI. */
function wrapped(text) {
  return Module.wrap(text);
}

/**
 * One buffer that each file, then its cache, is read into, reused from read to read. A fresh
 * buffer costs a page fault per 4 KB written: reading the 2.2 MB `gaxx exec` loaded took 8.2 ms
 * into fresh buffers and 3.4 ms into reused ones on one machine, and a second buffer for the
 * caches cost `gaxx exec` ~90 more faults (~10 us each where page faults are slow, as in some
 * VMs). Nothing read into it is kept: a source becomes a string (a copy) before its cache is
 * read over it, and V8 reads a cache only while it compiles. Held through a WeakRef, so that a
 * long-lived process (the agent) gives it back at a garbage collection.
 */
let scratch;

/**
 * The whole file at `path`, read into the scratch buffer (grown when too small): a view of its
 * bytes, valid until the next read, and the file's modification time and size.
 */
function readReused(path) {
  const fd = openSync(path, 'r');
  try {
    const { mtimeMs, size } = fstatSync(fd);
    let buf = scratch?.deref();
    if (!buf || buf.length < size) {
      buf = Buffer.allocUnsafeSlow(Math.max(size, 1024 * 1024));
      scratch = new WeakRef(buf);
    }
    let n = 0;
    for (let got = 1; n < size && got > 0; n += got) got = readSync(fd, buf, n, size - n, n);
    return { bytes: buf.subarray(0, n), stat: { mtimeMs, size } };
  } finally {
    closeSync(fd);
  }
}

/** Per loaded file: its compiled script and what became of its cache. */
const loaded = new Map();

/** A variant's name: a word, so that it names a file beside `file` and nothing else. */
const VARIANT = /^[a-z][a-z0-9-]*$/;

/** Where the cache of `file` is kept: `<file>.v8cache`, or `<file>.<variant>.v8cache` for a variant. */
function cachePath(file, variant) {
  if (variant === undefined) return `${file}.v8cache`;
  if (!VARIANT.test(variant)) throw new Error(`not a cache variant: ${JSON.stringify(variant)}`);
  return `${file}.${variant}.v8cache`;
}

/**
 * Whether the cache file at `path` was made from `source` (readReused's: the bytes and the file's
 * stat), by its header alone: its status, and the header when 'used'. The source's bytes are
 * still in the scratch buffer here; the cache's data is read over them later (cacheData).
 */
function checkCacheFile(path, source) {
  const header = Buffer.alloc(HEADER_BYTES);
  let fd;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { status: 'missing' };
  }
  try {
    if (fstatSync(fd).size <= HEADER_BYTES || readSync(fd, header, 0, HEADER_BYTES, 0) < HEADER_BYTES) return { status: 'foreign' };
  } finally {
    closeSync(fd);
  }
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) return { status: 'foreign' };
  if (!madeFrom(header, source.bytes, source.stat)) return { status: 'stale' };
  return { status: 'used', header };
}

/**
 * The cache to compile `file` with: the variant's when it has one (any word that does not name
 * a variant of this file costs one failed open), else the file's own; `path` says which was read.
 */
function pickCache(file, source, variant) {
  if (variant !== undefined && VARIANT.test(variant)) {
    const path = cachePath(file, variant);
    const got = checkCacheFile(path, source);
    if (got.status !== 'missing') return { ...got, path };
  }
  const path = cachePath(file);
  return { ...checkCacheFile(path, source), path };
}

/**
 * V8's data of the cache `picked` (pickCache's, 'used'), read into the scratch buffer: 'stale'
 * instead when the file is no longer the one checked (its header changed in between).
 */
function cacheData(picked) {
  let bytes;
  try {
    bytes = readReused(picked.path).bytes;
  } catch {
    return { status: 'missing', path: picked.path };
  }
  if (bytes.length <= HEADER_BYTES || !bytes.subarray(0, HEADER_BYTES).equals(picked.header)) return { status: 'stale', path: picked.path };
  return { status: 'used', data: bytes.subarray(HEADER_BYTES), path: picked.path };
}

/**
 * Loads `name` (a file beside this one) as a CommonJS module, once; returns its exports.
 * `opts.variant`: a cache made from one use of the file (the CLI's `exec`: what that command
 * compiles, and nothing of the other commands) is tried before the file's own. V8 deserialises
 * all of a cache, so a command started from the cache of every command pays for all of them.
 * `opts.cache: false` compiles the file without any cache (to make a variant's).
 */
function loadVendor(name, opts = {}) {
  const file = join(__dirname, name);
  const hit = require.cache[file];
  if (hit) return hit.exports;
  const source = readReused(file);
  const picked = opts.cache === false ? { status: 'off' } : pickCache(file, source, opts.variant);
  // ASCII (esbuild's output is) read as latin1: no decoding, one byte per character.
  const text = isAscii(source.bytes) ? source.bytes.toString('latin1') : source.bytes.toString('utf8');
  // The source is a string now: its cache is read over its bytes.
  const cache = picked.status === 'used' ? cacheData(picked) : picked;
  const code = text.startsWith(WRAPPED_HEAD) ? text : Module.wrap(text);
  const script = new Script(code, { filename: file, cachedData: cache.data });
  const status = cache.data && script.cachedDataRejected ? 'rejected' : cache.status;
  loaded.set(file, { script, status, path: cache.path });
  const m = new Module(file, module);
  m.filename = file;
  m.paths = Module._nodeModulePaths(__dirname);
  require.cache[file] = m;
  try {
    script.runInThisContext().call(m.exports, m.exports, Module.createRequire(file), m, file, __dirname);
  } catch (e) {
    delete require.cache[file];
    throw e;
  }
  m.loaded = true;
  return m.exports;
}

/**
 * What became of `name`'s code cache when it was loaded: 'used', 'rejected' (by V8: another
 * Node version or other flags), 'stale' (made from another file), 'foreign' (not a cache file),
 * 'missing', 'off' (loaded with `cache: false`), or undefined when it was not loaded here.
 */
function cacheStatus(name) {
  return loaded.get(join(__dirname, name))?.status;
}

/** The name of the cache file that was read for `name` (its own or a variant's), or undefined. */
function cacheFile(name) {
  const path = loaded.get(join(__dirname, name))?.path;
  return path === undefined ? undefined : basename(path);
}

/**
 * Writes the cache of a file loaded here (`<file>.v8cache`, or `<file>.<variant>.v8cache`),
 * with what V8 has compiled of it so far (build time only). The file's modification time and size
 * are recorded once that time is SETTLED_MS old (a file written just before is waited for), and
 * not when the file changed while it was read or its time lies ahead of the clock.
 */
function writeCache(file, variant) {
  const l = loaded.get(file);
  if (!l) throw new Error(`${file} was not loaded through vendor-load`);
  const young = SETTLED_MS - (Date.now() - statSync(file).mtimeMs);
  if (young > 0 && young <= SETTLED_MS) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.ceil(young));
  const before = statSync(file);
  const source = readFileSync(file);
  const after = statSync(file);
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header);
  header.writeUInt32BE(zlibCrc32()?.(source) ?? 0, CRC_AT);
  sha256(source).copy(header, SHA_AT);
  const settled = before.mtimeMs === after.mtimeMs && before.size === after.size && after.size === source.length && Date.now() - after.mtimeMs >= SETTLED_MS;
  header.writeDoubleBE(settled ? after.mtimeMs : 0, MTIME_AT);
  header.writeDoubleBE(settled ? after.size : 0, SIZE_AT);
  writeFileSync(cachePath(file, variant), Buffer.concat([header, l.script.createCachedData()]));
}

module.exports = { loadVendor, cacheStatus, cacheFile, writeCache, wrapped, HEADER_BYTES, DATA_ALIGNMENT, MTIME_AT, SIZE_AT };
