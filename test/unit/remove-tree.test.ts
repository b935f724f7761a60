// removeTree: trees deeper than the JS stack and than PATH_MAX go, symlinks are removed and never
// followed, modes a task left (000) do not stop it, and what cannot go is FILE_ACCESS.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isGaxxError, removeTree } from '../../proto/index.js';
import { deepTree } from '../helpers/deep-tree.js';

const dir = mkdtempSync(join(tmpdir(), 'gaxx-remove-tree-'));
afterAll(() => removeTree(dir));

describe('removeTree', () => {
  it('removes a 3000-deep tree, past the JS stack and PATH_MAX, where rmSync overflows the stack', async () => {
    const root = join(dir, 'deep');
    deepTree(root, 3000);
    expect(() => rmSync(root, { recursive: true, force: true })).toThrow(RangeError);
    await removeTree(root);
    expect(existsSync(root)).toBe(false);
  });

  it('removes a symlink, never its target, and leaves nothing for a missing path', async () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'x');
    const root = join(dir, 'links');
    mkdirSync(join(root, 'a'), { recursive: true });
    symlinkSync(outside, join(root, 'a', 'to-dir'));
    symlinkSync(join(outside, 'keep'), join(root, 'to-file'));
    await removeTree(root);
    expect(existsSync(root)).toBe(false);
    expect(readdirSync(outside)).toEqual(['keep']);
    symlinkSync(outside, join(dir, 'top-link'));
    await removeTree(join(dir, 'top-link'));
    expect(readdirSync(outside)).toEqual(['keep']);
    await removeTree(join(dir, 'never-there'));
  });

  it('removes dirs a task left unreadable and unwritable (mode 000) and read-only files', async () => {
    const root = join(dir, 'modes');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    writeFileSync(join(root, 'a', 'b', 'f'), 'x', { mode: 0o400 });
    chmodSync(join(root, 'a', 'b'), 0o000);
    chmodSync(join(root, 'a'), 0o500);
    await removeTree(root);
    expect(existsSync(root)).toBe(false);
  });

  // A mount point cannot be removed by anyone (mounting needs root).
  it.runIf(process.getuid?.() === 0)('is FILE_ACCESS naming the path when something in the tree cannot go', async () => {
    const root = join(dir, 'busy');
    mkdirSync(join(root, 'mnt'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'none', join(root, 'mnt')]);
    try {
      const e = await removeTree(root).catch((x: unknown) => x);
      expect(isGaxxError(e, 'FILE_ACCESS') && e.details?.path).toBe(root);
    } finally {
      execFileSync('umount', [join(root, 'mnt')]);
    }
  });
});
