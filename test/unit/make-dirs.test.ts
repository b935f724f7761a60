// makeDirs: a directory with its parents, each made once; a path mkdir can never make (under
// /proc, under a file) fails at once with FILE_ACCESS, where Node 20's recursive mkdir looped.
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isGaxxError, makeDirs, makeDirsAsync, type GaxxError } from '../../proto/index.js';
import { failure } from '../helpers/thrown.js';

const root = mkdtempSync(join(tmpdir(), 'gxmd-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function asyncFailure(p: Promise<unknown>): Promise<GaxxError> {
  const e = await p.then(
    () => new Error('expected a GaxxError'),
    (err: unknown) => err,
  );
  if (isGaxxError(e)) return e;
  throw e;
}

/** Both forms, so that each case runs for the sync and the promise one. */
const forms = [
  { name: 'makeDirs', make: async (p: string, mode?: number) => makeDirs(p, mode === undefined ? {} : { mode }) },
  { name: 'makeDirsAsync', make: (p: string, mode?: number) => makeDirsAsync(p, mode === undefined ? {} : { mode }) },
];

describe.each(forms)('$name', ({ name, make }) => {
  const base = join(root, name);
  mkdirSync(base);

  it('makes the directory and each missing parent with the mode; a directory already there is fine and keeps its mode', async () => {
    mkdirSync(join(base, 'kept'), { mode: 0o755 });
    chmodSync(join(base, 'kept'), 0o755);
    await make(join(base, 'kept', 'a', 'b', 'c'), 0o700);
    for (const d of ['a', 'a/b', 'a/b/c']) expect(statSync(join(base, 'kept', d)).mode & 0o777).toBe(0o700);
    expect(statSync(join(base, 'kept')).mode & 0o777).toBe(0o755);
    await make(join(base, 'kept', 'a', 'b', 'c'), 0o700);
    await make(`${join(base, 'kept', 'a')}/`);
    // A relative path is the working dir's.
    await make(join(base, 'kept', 'a', '..', 'd'));
    expect(readdirSync(join(base, 'kept')).sort()).toEqual(['a', 'd']);
  });

  it('makes them through a symlinked parent, in the directory it leads to; a symlink to a directory is one', async () => {
    mkdirSync(join(base, 'real'));
    symlinkSync(join(base, 'real'), join(base, 'link'));
    await make(join(base, 'link', 'x', 'y'));
    expect(statSync(join(base, 'real', 'x', 'y')).isDirectory()).toBe(true);
    await make(join(base, 'link'));
    expect(lstatSync(join(base, 'link')).isSymbolicLink()).toBe(true);
  });

  it('refuses a path under a file, a file, and a symlink to nothing (FILE_ACCESS)', async () => {
    writeFileSync(join(base, 'file'), 'x');
    symlinkSync(join(base, 'nowhere'), join(base, 'dangling'));
    const underFile = await asyncFailure(make(join(base, 'file', 'sub', 'dir')));
    expect([underFile.code, underFile.details?.errno]).toEqual(['FILE_ACCESS', 'ENOTDIR']);
    for (const p of [join(base, 'file'), join(base, 'dangling')]) {
      const e = await asyncFailure(make(p));
      expect([e.code, e.details?.errno, e.details?.path]).toEqual(['FILE_ACCESS', 'EEXIST', p]);
    }
  });

  it('refuses at once a directory its file system cannot make (under /proc), naming the one that failed', async () => {
    for (const [p, failed] of [
      ['/proc/gaxx-no-such-dir', '/proc/gaxx-no-such-dir'],
      ['/proc/gaxx-no-such-dir/a/b', '/proc/gaxx-no-such-dir'],
      ['/proc/self/gaxx-x', '/proc/self/gaxx-x'],
    ] as const) {
      const e = await asyncFailure(make(p));
      expect([e.code, e.details?.errno, e.details?.path]).toEqual(['FILE_ACCESS', 'ENOENT', failed]);
    }
  });

  it.runIf(process.getuid?.() !== 0)('refuses a parent it may not write to (FILE_ACCESS, EACCES)', async () => {
    mkdirSync(join(base, 'closed'), { mode: 0o500 });
    const e = await asyncFailure(make(join(base, 'closed', 'a')));
    expect([e.code, e.details?.errno]).toEqual(['FILE_ACCESS', 'EACCES']);
  });
});

describe('makeDirs failures', () => {
  it('are FILE_ACCESS thrown synchronously, with the errno they met', () => {
    const e = failure(() => makeDirs('/proc/gaxx-sync/x', { hint: { elsewhere: 'use another' } }));
    expect([e.code, e.details?.errno]).toEqual(['FILE_ACCESS', 'ENOENT']);
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});
