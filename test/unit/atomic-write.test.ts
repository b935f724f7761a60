// The one atomic, durable file write (certs/store.ts) that certificates, fleet state, the agent's
// journal and the installed agent bundle all use (a local agent's own files: atomic, not forced to
// disk), and the one lookup of gaxx's version.
import { fsyncSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeFileAtomic, writeStreamAtomic } from '../../certs/index.js';
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

describe('writeStreamAtomic', () => {
  it('a process that exits while a streamed write is under way (a second Ctrl-C: process.exit) leaves no temp file', async () => {
    const sub = join(dir, 'stream');
    mkdirSync(sub);
    let wrote!: () => void;
    const written = new Promise<void>((r) => (wrote = r));
    let stop!: (e: Error) => void;
    const stopped = new Promise<never>((_, reject) => (stop = reject));
    const writing = writeStreamAtomic(
      join(sub, 'f'),
      () => 0o600,
      async (write) => {
        await write(Buffer.from('a part'));
        wrote();
        return stopped;
      },
    );
    await written;
    expect(readdirSync(sub)).toEqual([expect.stringMatching(/^\.[0-9a-f]+\.tmp$/)]);
    // What process.exit does before the process ends: its 'exit' listeners run, synchronously,
    // and nothing awaited runs after them. Called here, not by an exit, which would end the test.
    const atExit = process.listeners('exit').find((l) => l.name === 'removeStreaming');
    expect(atExit, "writeStreamAtomic's exit listener").toBeDefined();
    atExit?.(0);
    expect(readdirSync(sub)).toEqual([]);
    stop(new Error('stopped'));
    await expect(writing).rejects.toThrow('stopped');
    expect(readdirSync(sub)).toEqual([]);
    // A write that ended is no longer one to remove: the finished file stays.
    await writeStreamAtomic(
      join(sub, 'g'),
      () => 0o644,
      async (write) => write(Buffer.from('whole')),
    );
    atExit?.(0);
    expect(readdirSync(sub)).toEqual(['g']);
    expect(readFileSync(join(sub, 'g'), 'utf8')).toBe('whole');
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
