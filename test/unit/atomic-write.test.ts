// The one atomic, durable file write (certs/store.ts) that certificates, fleet state, the agent's
// journal and the installed agent bundle all use (a local agent's own files: atomic, not forced to
// disk), and the one lookup of gaxx's version.
import { fsyncSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeFileAtomic } from '../../certs/index.js';
import { packageVersion } from '../../proto/index.js';

// fsync passes through to the real one, counted: whether a write is forced to disk is not
// otherwise visible from inside the machine.
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return { ...real, fsyncSync: vi.fn(real.fsyncSync) };
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-atomic-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('replaces the file whole, with exactly the mode asked for whatever the umask, and leaves no temp file', () => {
    const sub = join(dir, 'a', 'b');
    const path = join(sub, 'f.json');
    const old = process.umask(0o077);
    try {
      writeFileAtomic(path, 'one', 0o644);
      writeFileAtomic(path, Buffer.from('two'), 0o644);
    } finally {
      process.umask(old);
    }
    expect(readFileSync(path, 'utf8')).toBe('two');
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(statSync(sub).mode & 0o777).toBe(0o700);
    expect(readdirSync(sub)).toEqual(['f.json']);
    writeFileAtomic(path, 'three');
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('forces the file and its directory to disk, unless asked for a write that need not outlive the machine (durable: false)', () => {
    const sub = join(dir, 'd');
    const path = join(sub, 'f');
    const fsync = vi.mocked(fsyncSync);
    fsync.mockClear();
    writeFileAtomic(path, 'kept', 0o644);
    expect(fsync).toHaveBeenCalledTimes(2);
    fsync.mockClear();
    writeFileAtomic(path, 'whole, not forced', 0o640, { durable: false });
    expect(fsync).not.toHaveBeenCalled();
    expect(readFileSync(path, 'utf8')).toBe('whole, not forced');
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expect(readdirSync(sub)).toEqual(['f']);
  });

  it('a write that cannot land leaves the old file as it was and no temp file', () => {
    const sub = join(dir, 'c');
    const path = join(sub, 'target');
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, 'inside'), 'x');
    // Renaming a file over a non-empty directory fails (EISDIR): the write must undo itself.
    expect(() => writeFileAtomic(path, 'new')).toThrow();
    expect(readdirSync(sub)).toEqual(['target']);
    expect(readFileSync(join(path, 'inside'), 'utf8')).toBe('x');
  });
});

describe('packageVersion', () => {
  it("reads gaxx's package.json above a file, passing over another package's", () => {
    const root = join(dir, 'pkg');
    mkdirSync(join(root, 'dist', 'bundle', 'inner'), { recursive: true });
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'gaxx', version: '1.2.3' }));
    writeFileSync(join(root, 'dist', 'package.json'), JSON.stringify({ name: 'other', version: '9.9.9' }));
    writeFileSync(join(root, 'dist', 'bundle', 'inner', 'package.json'), '{not json');
    expect(packageVersion(join(root, 'dist', 'bundle', 'inner', 'gaxx.mjs'))).toBe('1.2.3');
    const installed = join(dir, 'installed');
    mkdirSync(installed);
    writeFileSync(join(installed, 'package.json'), JSON.stringify({ name: 'gaxx-agent', version: '1.2.4' }));
    expect(packageVersion(join(installed, 'gaxx-agent.mjs'))).toBe('1.2.4');
    expect(packageVersion(join(root, 'dist', 'bundle', 'inner', 'gaxx.mjs'), ['gaxx'], 2)).toBeUndefined();
  });
});
