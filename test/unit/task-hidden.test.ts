// What tasks are not shown besides the agent's own dirs: the agent user's home (unless tasks
// work in it) and the dirs of --task-hidden, which a local fleet fills with the CLI's config and
// state dirs (its agents run as the operator when gaxx is not root).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { homeToHide } from '../../agent/exec/task-launch.js';
import { taskHiddenArgs } from '../../cli/providers/local.js';
import { isGaxxError } from '../../proto/index.js';

describe("the agent user's home", () => {
  const config = { dataDir: '/tmp/gaxx-local-1000/a1/data', taskWritable: [] as string[] };

  it('is hidden when tasks neither work nor write in it', () => {
    expect(homeToHide(config, '/home/op')).toBe('/home/op');
    expect(homeToHide({ ...config, taskWritable: ['/srv/shared'] }, '/home/op')).toBe('/home/op');
  });

  it('is left when it is /, missing, relative, or holds the data dir or a writable dir', () => {
    for (const home of ['/', '//', undefined, '', 'home/op']) expect(homeToHide(config, home), String(home)).toBeUndefined();
    expect(homeToHide({ dataDir: '/var/lib/gaxx/data', taskWritable: [] }, '/var/lib/gaxx')).toBeUndefined();
    expect(homeToHide({ dataDir: '/var/lib/gaxx/data', taskWritable: [] }, '/var/lib/gaxx/data')).toBeUndefined();
    expect(homeToHide({ ...config, taskWritable: ['/home/op/shared'] }, '/home/op')).toBeUndefined();
  });

  it('is left when the data dir lies in it through a symlink', () => {
    const root = mkdtempSync(join(tmpdir(), 'gaxx-home-'));
    try {
      mkdirSync(join(root, 'home', 'data'), { recursive: true });
      symlinkSync(join(root, 'home', 'data'), join(root, 'data-link'));
      expect(homeToHide({ dataDir: join(root, 'data-link'), taskWritable: [] }, join(root, 'home'))).toBeUndefined();
      expect(homeToHide({ dataDir: join(root, 'elsewhere'), taskWritable: [] }, join(root, 'home'))).toBe(join(root, 'home'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("a local fleet's --task-hidden", () => {
  it("names the installation's dirs", () => {
    expect(taskHiddenArgs({ hideFromTasks: ['/home/op/.config/gaxx', '/home/op/.local/state/gaxx/'], runDir: '/tmp/gaxx-local-1000' })).toEqual([
      '--task-hidden',
      '/home/op/.config/gaxx:/home/op/.local/state/gaxx',
    ]);
    expect(taskHiddenArgs({ hideFromTasks: [], runDir: '/tmp/gaxx-local-1000' })).toEqual([]);
  });

  it('refuses to start agents whose own dir lies in one, or one it cannot name, with CONFIG_INVALID', () => {
    for (const o of [
      { hideFromTasks: ['/home/op/.local/state/gaxx'], runDir: '/home/op/.local/state/gaxx/local-run' },
      { hideFromTasks: ['/home/op/odd:dir'], runDir: '/tmp/gaxx-local-1000' },
    ]) {
      let code = '';
      try {
        taskHiddenArgs(o);
      } catch (e) {
        code = isGaxxError(e) ? e.code : 'not a GaxxError';
      }
      expect(code, JSON.stringify(o)).toBe('CONFIG_INVALID');
    }
  });
});
