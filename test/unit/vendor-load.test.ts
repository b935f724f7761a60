// scripts/vendor-load.cjs loads the CLI's vendor files and the agent with their V8 code caches.
// A cache is used only for the very file it was made from: a cache made from another file of
// the same length (V8 itself compares only lengths), a file that is no cache of ours (such as a
// bare V8 cache), or none at all, and the file is compiled from its source and works the same.
// The same holds where Node has no zlib.crc32 (before 20.15), where the SHA-256 is checked.
// A file left as it was since its cache was made (modification time and size) is taken without
// a digest; a file written since is checked by its digest, however soon after.
// A variant's cache (<file>.<variant>.v8cache: the CLI's, made from one command) comes first
// when it is there, under the same checks; only a plain word names a variant.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';
import { probeInFreshNode } from '../helpers/bundle.js';

interface VendorLoad {
  loadVendor(name: string, opts?: { variant?: string; cache?: boolean }): { value: number };
  cacheStatus(name: string): string | undefined;
  cacheFile(name: string): string | undefined;
  writeCache(file: string, variant?: string): void;
  wrapped(text: string): string;
  HEADER_BYTES: number;
  DATA_ALIGNMENT: number;
  MTIME_AT: number;
  SIZE_AT: number;
}

const root = mkdtempSync(join(tmpdir(), 'gaxx-vendor-load-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Sources that differ in one digit only: the same length. */
const source = (n: number) => `'use strict';\nfunction twice(x) { return x * 2; }\nmodule.exports = { value: twice(${n}) };\n`;

/** A fresh dir holding a copy of vendor-load.cjs and `files`; that copy, loaded (one per dir). */
function dirWith(files: Record<string, string | Buffer>): { dir: string; vl: VendorLoad } {
  const dir = mkdtempSync(join(root, 'd-'));
  copyFileSync(join(repoRoot(), 'scripts', 'vendor-load.cjs'), join(dir, 'vendor-load.cjs'));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return { dir, vl: createRequire(join(dir, 'index.cjs'))('./vendor-load.cjs') as VendorLoad };
}

/** `name` loaded from `dir` by that dir's vendor-load in a fresh Node: its value, cache status, and whether node:zlib and node:crypto were set up. */
function loadIn(dir: string, name: string): { value: number; status: string; zlib: boolean; crypto: boolean } {
  return probeInFreshNode(
    dir,
    `const v = require('./vendor-load.cjs');
const value = v.loadVendor(${JSON.stringify(name)}).value;
process.stdout.write(JSON.stringify({ value, status: v.cacheStatus(${JSON.stringify(name)}), zlib: loaded('zlib'), crypto: loaded('crypto') }));`,
  );
}

/** The cache file vendor-load writes for source(n), as the build makes it. */
function cacheOf(n: number): Buffer {
  const { dir, vl } = dirWith({ 'm.cjs': source(n) });
  expect(vl.loadVendor('m.cjs').value).toBe(n * 2);
  vl.writeCache(join(dir, 'm.cjs'));
  return readFileSync(join(dir, 'm.cjs.v8cache'));
}

describe('vendor-load code caches', () => {
  it('a cache made from another file of the same length is not used; the file still loads', () => {
    const { vl } = dirWith({ 'm.cjs': source(3), 'm.cjs.v8cache': cacheOf(1) });
    expect(vl.loadVendor('m.cjs').value).toBe(6);
    expect(vl.cacheStatus('m.cjs')).toBe('stale');
  });

  it('a bare V8 cache without our header is not used', () => {
    const bare = new Script(source(1), { filename: 'm.cjs' }).createCachedData();
    const { vl } = dirWith({ 'm.cjs': source(1), 'm.cjs.v8cache': bare });
    expect(vl.loadVendor('m.cjs').value).toBe(2);
    expect(vl.cacheStatus('m.cjs')).toBe('foreign');
  });

  it('without a cache the file loads', () => {
    const { vl } = dirWith({ 'm.cjs': source(2) });
    expect(vl.loadVendor('m.cjs').value).toBe(4);
    expect(vl.cacheStatus('m.cjs')).toBe('missing');
  });

  it('a cache made from the same file is used', () => {
    const { vl } = dirWith({ 'm.cjs': source(1), 'm.cjs.v8cache': cacheOf(1) });
    expect(vl.loadVendor('m.cjs').value).toBe(2);
    expect(vl.cacheStatus('m.cjs')).toBe('used');
  });

  it('a file the build wrapped (the agent) loads as it is, and with its cache', () => {
    const wrappedText = dirWith({}).vl.wrapped(source(5));
    const made = dirWith({ 'w.cjs': wrappedText });
    expect(made.vl.loadVendor('w.cjs').value).toBe(10);
    made.vl.writeCache(join(made.dir, 'w.cjs'));
    const { vl } = dirWith({ 'w.cjs': wrappedText, 'w.cjs.v8cache': readFileSync(join(made.dir, 'w.cjs.v8cache')) });
    expect(vl.loadVendor('w.cjs').value).toBe(10);
    expect(vl.cacheStatus('w.cjs')).toBe('used');
  });

  it("V8's data starts on an 8-byte boundary of the cache file, so that V8 reads it where it lies", () => {
    // V8 copies cached data that does not start on an 8-byte boundary before reading it; the
    // buffer a cache is read into starts on one, so the data's offset in the file decides.
    const { vl } = dirWith({});
    expect(vl.DATA_ALIGNMENT).toBe(8);
    expect(vl.HEADER_BYTES % vl.DATA_ALIGNMENT).toBe(0);
    // Right after our header: V8's own, which starts with the magic number of every V8 cache.
    const v8Magic = new Script(source(1), { filename: 'm.cjs' }).createCachedData().subarray(0, 4);
    const cache = cacheOf(1);
    expect(cache.subarray(vl.HEADER_BYTES, vl.HEADER_BYTES + 4).equals(v8Magic)).toBe(true);
    // What lies between the digests and V8's data is zeros.
    expect(cache.subarray(vl.HEADER_BYTES - 4, vl.HEADER_BYTES).equals(Buffer.alloc(4))).toBe(true);
  });

  it('a cache V8 refuses (damaged data behind a matching header) is reported and the file still loads', () => {
    const cache = cacheOf(1);
    // V8's own header follows ours (magic, CRC-32, SHA-256): zeroed, V8 rejects the data.
    const { dir, vl } = dirWith({ 'm.cjs': source(1) });
    cache.fill(0, vl.HEADER_BYTES, vl.HEADER_BYTES + 16);
    writeFileSync(join(dir, 'm.cjs.v8cache'), cache);
    expect(vl.loadVendor('m.cjs').value).toBe(2);
    expect(vl.cacheStatus('m.cjs')).toBe('rejected');
  });

  it("a variant's cache is used before the file's own, and written beside it", () => {
    const made = dirWith({ 'm.cjs': source(1) });
    expect(made.vl.loadVendor('m.cjs').value).toBe(2);
    made.vl.writeCache(join(made.dir, 'm.cjs'), 'exec');
    // Our header's digests (the file's CRC-32 and SHA-256) as in the file's own cache.
    const variant = readFileSync(join(made.dir, 'm.cjs.exec.v8cache'));
    expect(variant.subarray(0, made.vl.MTIME_AT).equals(cacheOf(1).subarray(0, made.vl.MTIME_AT))).toBe(true);
    const { vl } = dirWith({ 'm.cjs': source(1), 'm.cjs.v8cache': cacheOf(1), 'm.cjs.exec.v8cache': variant });
    expect(vl.loadVendor('m.cjs', { variant: 'exec' }).value).toBe(2);
    expect({ status: vl.cacheStatus('m.cjs'), file: vl.cacheFile('m.cjs') }).toEqual({ status: 'used', file: 'm.cjs.exec.v8cache' });
  });

  it("a word with no variant's cache gets the file's own; a stale variant is not passed over", () => {
    const fallback = dirWith({ 'm.cjs': source(1), 'm.cjs.v8cache': cacheOf(1) });
    expect(fallback.vl.loadVendor('m.cjs', { variant: 'certs' }).value).toBe(2);
    expect({ status: fallback.vl.cacheStatus('m.cjs'), file: fallback.vl.cacheFile('m.cjs') }).toEqual({ status: 'used', file: 'm.cjs.v8cache' });
    const stale = dirWith({ 'm.cjs': source(3), 'm.cjs.v8cache': cacheOf(3), 'm.cjs.exec.v8cache': cacheOf(1) });
    expect(stale.vl.loadVendor('m.cjs', { variant: 'exec' }).value).toBe(6);
    expect({ status: stale.vl.cacheStatus('m.cjs'), file: stale.vl.cacheFile('m.cjs') }).toEqual({ status: 'stale', file: 'm.cjs.exec.v8cache' });
  });

  it('only a plain lower-case word names a variant: a path or another word is never opened as one', () => {
    for (const word of ['./../x', 'Exec', '-h', '']) {
      // A cache of this very file where the word leads: m.cjs.<word>.v8cache, and for './../x'
      // the path m.cjs../../x.v8cache, which is x.v8cache once m.cjs.. is a dir.
      const { dir, vl } = dirWith({ 'm.cjs': source(1), 'm.cjs.v8cache': cacheOf(1) });
      const path = `${join(dir, 'm.cjs')}.${word}.v8cache`;
      if (word.includes('/')) mkdirSync(join(dir, 'm.cjs..'));
      writeFileSync(word.includes('/') ? join(dir, 'x.v8cache') : path, cacheOf(1));
      // That path does lead to a cache: only the word's form keeps it unread.
      expect(readFileSync(path).length).toBeGreaterThan(vl.HEADER_BYTES);
      expect(vl.loadVendor('m.cjs', { variant: word }).value).toBe(2);
      expect({ word, file: vl.cacheFile('m.cjs') }).toEqual({ word, file: 'm.cjs.v8cache' });
      expect(() => vl.writeCache(join(dir, 'm.cjs'), word)).toThrow(/not a cache variant/);
    }
  });

  it('cache: false compiles without any cache (how a variant is made)', () => {
    const { vl } = dirWith({ 'm.cjs': source(1), 'm.cjs.v8cache': cacheOf(1), 'm.cjs.exec.v8cache': cacheOf(1) });
    expect(vl.loadVendor('m.cjs', { variant: 'exec', cache: false }).value).toBe(2);
    expect({ status: vl.cacheStatus('m.cjs'), file: vl.cacheFile('m.cjs') }).toEqual({ status: 'off', file: undefined });
  });

  it('files loaded one after another and from inside one another each get their own source and cache (read into reused buffers)', () => {
    // big.cjs outgrows the buffers (1 MiB at first); outer.cjs loads big.cjs and small.cjs from its code.
    const big = `${source(7)}// ${'x'.repeat(1536 * 1024)}\n`;
    const outer = `'use strict';\nconst v = require('./vendor-load.cjs');\nmodule.exports = { value: v.loadVendor('big.cjs').value + v.loadVendor('small.cjs').value };\n`;
    const made = dirWith({ 'outer.cjs': outer, 'big.cjs': big, 'small.cjs': source(4) });
    expect(made.vl.loadVendor('small.cjs').value).toBe(8);
    expect(made.vl.loadVendor('outer.cjs').value).toBe(22);
    for (const f of ['outer.cjs', 'big.cjs', 'small.cjs']) made.vl.writeCache(join(made.dir, f));
    const files = Object.fromEntries(
      ['outer.cjs', 'big.cjs', 'small.cjs'].flatMap((f) => [f, `${f}.v8cache`]).map((f) => [f, readFileSync(join(made.dir, f))]),
    );
    const { vl } = dirWith(files);
    expect(vl.loadVendor('outer.cjs').value).toBe(22);
    for (const f of ['outer.cjs', 'big.cjs', 'small.cjs']) expect({ f, status: vl.cacheStatus(f) }).toEqual({ f, status: 'used' });
  });

  it('a file untouched since its cache was made is taken without a digest: neither node:zlib nor node:crypto is loaded', () => {
    const made = dirWith({ 'm.cjs': source(1) });
    expect(made.vl.loadVendor('m.cjs').value).toBe(2);
    made.vl.writeCache(join(made.dir, 'm.cjs'));
    const header = readFileSync(join(made.dir, 'm.cjs.v8cache'));
    // Recorded although the file was written just before: writeCache waited for it to settle.
    expect(header.readDoubleBE(made.vl.MTIME_AT)).toBe(statSync(join(made.dir, 'm.cjs')).mtimeMs);
    expect(header.readDoubleBE(made.vl.SIZE_AT)).toBe(source(1).length);
    expect(loadIn(made.dir, 'm.cjs')).toEqual({ value: 2, status: 'used', zlib: false, crypto: false });
    // The same file rewritten in place, at once and with the same length: its digest is read.
    writeFileSync(join(made.dir, 'm.cjs'), source(3));
    expect(loadIn(made.dir, 'm.cjs')).toEqual({ value: 6, status: 'stale', zlib: true, crypto: false });
    // Written back as it was: a new time, but the digest finds the cache current.
    writeFileSync(join(made.dir, 'm.cjs'), source(1));
    expect(loadIn(made.dir, 'm.cjs')).toEqual({ value: 2, status: 'used', zlib: true, crypto: false });
    // Rewritten right after its cache was made (where the file system's clock is coarse, within
    // the tick of the write before, but for writeCache's wait): stale all the same.
    const again = dirWith({ 'm.cjs': source(1) });
    expect(again.vl.loadVendor('m.cjs').value).toBe(2);
    again.vl.writeCache(join(again.dir, 'm.cjs'));
    writeFileSync(join(again.dir, 'm.cjs'), source(3));
    expect(loadIn(again.dir, 'm.cjs')).toEqual({ value: 6, status: 'stale', zlib: true, crypto: false });
  });

  it('a file whose time lies ahead of the clock has no time recorded: its digest decides', () => {
    const made = dirWith({ 'm.cjs': source(1) });
    expect(made.vl.loadVendor('m.cjs').value).toBe(2);
    const ahead = new Date(Date.now() + 3600_000);
    utimesSync(join(made.dir, 'm.cjs'), ahead, ahead);
    made.vl.writeCache(join(made.dir, 'm.cjs'));
    expect(readFileSync(join(made.dir, 'm.cjs.v8cache')).readDoubleBE(made.vl.MTIME_AT)).toBe(0);
    expect(loadIn(made.dir, 'm.cjs')).toEqual({ value: 2, status: 'used', zlib: true, crypto: false });
  });

  it('without zlib.crc32 the SHA-256 decides: the same file uses its cache, another of the same length does not', () => {
    // The same file's cache with its CRC-32 zeroed: only a SHA-256 check can find it current.
    const noCrc = cacheOf(1);
    noCrc.fill(0, 16, 20);
    const { dir, vl } = dirWith({ 'same.cjs': source(1), 'same.cjs.v8cache': noCrc, 'other.cjs': source(3), 'other.cjs.v8cache': cacheOf(1) });
    expect(vl.loadVendor('same.cjs').value).toBe(2);
    expect(vl.cacheStatus('same.cjs')).toBe('stale');
    // A Node without zlib.crc32, as before 20.15: the one function removed before vendor-load runs.
    const script = `require('node:zlib').crc32 = undefined;
const v = require(${JSON.stringify(join(dir, 'vendor-load.cjs'))});
const values = [v.loadVendor('same.cjs').value, v.loadVendor('other.cjs').value];
process.stdout.write(JSON.stringify({ values, same: v.cacheStatus('same.cjs'), other: v.cacheStatus('other.cjs') }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(out).toEqual({ values: [2, 6], same: 'used', other: 'stale' });
  });
});
