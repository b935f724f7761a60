'use strict';
/* global require, module, __dirname, Buffer */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS file by design, see below */
// Copied into dist/bundle by scripts/bundle.mjs. Loads a CommonJS file beside it (the CLI,
// gaxx-cli.cjs, and its vendor files vendor-*.cjs; the agent, gaxx-agent.cjs) with the V8 code
// cache that the build made for it (<file>.v8cache): Node 20 has no compile cache for modules,
// and compiling these files is a good part of the start of every command and of the agent.
// A cache is used only when it was made from this very file (its header holds the file's
// SHA-256: V8 itself checks only the source's length) and V8 accepts it (same V8 version and
// flags); otherwise the file is compiled as usual. Nothing is ever written here at run time:
// the agent runs as a user who cannot write to its install dir. Modules loaded here land in
// require.cache, so a plain require() of the same file elsewhere gets the same instance.
const Module = require('node:module');
const { isAscii } = require('node:buffer');
const { createHash } = require('node:crypto');
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { Script } = require('node:vm');

/** Start of every cache file, then the source's SHA-256 (32 bytes), then V8's data. */
const MAGIC = Buffer.from('gaxx-v8-cache-1\n');
const HEADER_BYTES = MAGIC.length + 32;

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

/** Per loaded file: its compiled script, its source's hash and what became of its cache. */
const loaded = new Map();

/** V8's data from `<file>.v8cache` when its header names `sourceHash`, else undefined and why. */
function readCache(file, sourceHash) {
  let bytes;
  try {
    bytes = readFileSync(`${file}.v8cache`);
  } catch {
    return { status: 'missing' };
  }
  if (bytes.length <= HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return { status: 'foreign' };
  if (!bytes.subarray(MAGIC.length, HEADER_BYTES).equals(sourceHash)) return { status: 'stale' };
  return { status: 'used', data: bytes.subarray(HEADER_BYTES) };
}

/** Loads `name` (a file beside this one) as a CommonJS module, once; returns its exports. */
function loadVendor(name) {
  const file = join(__dirname, name);
  const hit = require.cache[file];
  if (hit) return hit.exports;
  const source = readFileSync(file);
  const sourceHash = createHash('sha256').update(source).digest();
  const cache = readCache(file, sourceHash);
  // ASCII (esbuild's output is) read as latin1 becomes a string kept outside V8's heap.
  const text = isAscii(source) ? source.toString('latin1') : source.toString('utf8');
  const code = text.startsWith(WRAPPED_HEAD) ? text : Module.wrap(text);
  const script = new Script(code, { filename: file, cachedData: cache.data });
  const status = cache.data && script.cachedDataRejected ? 'rejected' : cache.status;
  loaded.set(file, { script, sourceHash, status });
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
 * 'missing', or undefined when it was not loaded here.
 */
function cacheStatus(name) {
  return loaded.get(join(__dirname, name))?.status;
}

/** Writes `<file>.v8cache` for a file loaded here, with what V8 has compiled of it so far (build time only). */
function writeCache(file) {
  const l = loaded.get(file);
  if (!l) throw new Error(`${file} was not loaded through vendor-load`);
  writeFileSync(`${file}.v8cache`, Buffer.concat([MAGIC, l.sourceHash, l.script.createCachedData()]));
}

module.exports = { loadVendor, cacheStatus, writeCache, wrapped };
