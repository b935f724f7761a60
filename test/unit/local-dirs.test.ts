// Directories the CLI writes into: its own, or sticky; never through a symlink or someone else's folder.
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOwnDir, makeOwnSubdir, prepareUserDir } from '../../cli/local-dirs.js';
import { prepareResultsDir, prepareRunResultsDir, releaseResultsDir, WRITER_CLAIM } from '../../cli/run/results-dir.js';
import { processMark } from '../../proto/index.js';
import { failure } from '../helpers/thrown.js';

const root = mkdtempSync(join(tmpdir(), 'gxld-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

describe('prepareUserDir', () => {
  it('makes a missing dir with its parents, accepts one of ours and a sticky shared one', () => {
    prepareUserDir(join(root, 'a', 'b'), 'LOCALDIR');
    expect(readdirSync(join(root, 'a'))).toEqual(['b']);
    const sticky = join(root, 'sticky');
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    prepareUserDir(sticky, 'LOCALDIR');
  });

  it('refuses a dir every user may write to without the sticky bit, and a file (USAGE)', () => {
    const open = join(root, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(failure(() => prepareUserDir(open, 'LOCALDIR')).code).toBe('INSECURE_FILE_MODE');
    writeFileSync(join(root, 'file'), 'x');
    expect(failure(() => prepareUserDir(join(root, 'file'), 'LOCALDIR')).code).toBe('USAGE');
  });

  it.runIf(isRoot)("refuses another user's dir", () => {
    const theirs = join(root, 'theirs');
    mkdirSync(theirs);
    chownSync(theirs, 65534, 65534);
    expect(failure(() => prepareUserDir(theirs, 'LOCALDIR')).code).toBe('INSECURE_FILE_MODE');
  });
});

describe('prepareUserDir: the real path, and every directory above it', () => {
  it('returns the real path behind a symlink, so later writes do not follow the link again', () => {
    const target = join(root, 'target');
    mkdirSync(target);
    symlinkSync(target, join(root, 'link'));
    expect(prepareUserDir(join(root, 'link'), '--results')).toBe(realpathSync(target));
  });

  it('refuses a dir under one every user may write to without the sticky bit (the path to it could be swapped)', () => {
    const open = join(root, 'open-parent');
    mkdirSync(join(open, 'out'), { recursive: true });
    chmodSync(open, 0o777);
    expect(failure(() => prepareUserDir(join(open, 'out'), '--results')).code).toBe('INSECURE_FILE_MODE');
    // Reached through a symlink of ours, the same.
    symlinkSync(join(open, 'out'), join(root, 'to-open'));
    expect(failure(() => prepareUserDir(join(root, 'to-open'), '--results')).code).toBe('INSECURE_FILE_MODE');
  });

  it.runIf(isRoot)("refuses a dir under another user's, and one a symlink leads into another user's", () => {
    const theirs = join(root, 'their-parent');
    mkdirSync(join(theirs, 'out'), { recursive: true });
    chownSync(theirs, 65534, 65534);
    expect(failure(() => prepareUserDir(join(theirs, 'out'), 'LOCALDIR')).code).toBe('INSECURE_FILE_MODE');
    symlinkSync(join(theirs, 'out'), join(root, 'to-theirs'));
    expect(failure(() => prepareUserDir(join(root, 'to-theirs'), 'LOCALDIR')).code).toBe('INSECURE_FILE_MODE');
  });
});

describe('makeOwnSubdir and checkOwnDir', () => {
  it('makes a new folder, accepts our existing one, refuses a symlink to a dir and a group- or world-writable one', () => {
    const base = join(root, 'sub');
    mkdirSync(base);
    makeOwnSubdir(join(base, 'h1'), 'host folder');
    makeOwnSubdir(join(base, 'h1'), 'host folder');
    mkdirSync(join(root, 'elsewhere'));
    symlinkSync(join(root, 'elsewhere'), join(base, 'h2'));
    expect(failure(() => makeOwnSubdir(join(base, 'h2'), 'host folder')).code).toBe('INSECURE_FILE_MODE');
    mkdirSync(join(base, 'h3'));
    chmodSync(join(base, 'h3'), 0o757);
    expect(failure(() => makeOwnSubdir(join(base, 'h3'), 'host folder')).code).toBe('INSECURE_FILE_MODE');
    chmodSync(join(base, 'h3'), 0o775);
    expect(failure(() => checkOwnDir(join(base, 'h3'), 'bundle dir')).code).toBe('INSECURE_FILE_MODE');
    checkOwnDir(join(base, 'h1'), 'bundle dir');
  });
});

describe('prepareResultsDir', () => {
  it('an empty --results dir others may write to is refused before anything is made in it', () => {
    const open = join(root, 'res-open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(failure(() => prepareResultsDir(open)).code).toBe('INSECURE_FILE_MODE');
    expect(readdirSync(open)).toEqual([]);
    const real = prepareResultsDir(join(root, 'res-new'));
    // Claimed by this process while it writes there.
    expect(readdirSync(join(root, 'res-new')).sort()).toEqual([WRITER_CLAIM, '1']);
    releaseResultsDir(real);
    expect(readdirSync(join(root, 'res-new'))).toEqual(['1']);
  });
});

describe('one writer of a --results DIR at a time (its claim)', () => {
  /** A process that lives until killed, and its claim text. */
  const liveClaim = async (): Promise<{ pid: number; text: string; kill: () => Promise<void> }> => {
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    const pid = child.pid as number;
    const exited = new Promise((r) => child.once('exit', r));
    return { pid, text: `${JSON.stringify(processMark(pid))}\n`, kill: async () => (child.kill('SIGKILL'), void (await exited)) };
  };

  it('another live writer’s claim: FAILED_PRECONDITION naming its pid, nothing read, removed or made; once it is gone, taken over', async () => {
    const dir = join(root, 'claimed');
    mkdirSync(join(dir, '1', '.gaxx-2-0123456789ab.tmp'), { recursive: true });
    const other = await liveClaim();
    writeFileSync(join(dir, WRITER_CLAIM), other.text);
    const before = readdirSync(dir, { recursive: true }).sort();
    const e = failure(() => prepareRunResultsDir(dir, 'r1'));
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.message).toContain(`another gaxx (pid ${other.pid}) is writing results into '${dir}'`);
    // Its temp folder is a live writer's: kept.
    expect(readdirSync(dir, { recursive: true }).sort()).toEqual(before);
    // A new, empty DIR another writer claimed first (it made nothing else yet): refused the same way.
    const fresh = join(root, 'claimed-fresh');
    mkdirSync(fresh);
    writeFileSync(join(fresh, WRITER_CLAIM), other.text);
    expect(failure(() => prepareResultsDir(fresh)).code).toBe('FAILED_PRECONDITION');
    expect(readdirSync(fresh)).toEqual([WRITER_CLAIM]);
    // Killed: its claim is taken over, its temp folder removed as a killed writer's.
    await other.kill();
    const real = prepareRunResultsDir(dir, 'r1').root;
    expect(readdirSync(join(dir, '1'))).toEqual([]);
    expect(JSON.parse(readFileSync(join(dir, WRITER_CLAIM), 'utf8'))).toMatchObject({ pid: process.pid });
    releaseResultsDir(real);
    expect(readdirSync(dir)).toEqual(['1']);
    const freshReal = prepareResultsDir(fresh);
    releaseResultsDir(freshReal);
    expect(readdirSync(fresh)).toEqual(['1']);
  });

  it('a DIR that is refused for what it holds keeps no claim', () => {
    const dir = join(root, 'claim-refused');
    mkdirSync(join(dir, '1', 'b'), { recursive: true });
    writeFileSync(join(dir, '1', 'b', 'seq'), '1\n');
    expect(failure(() => prepareRunResultsDir(dir, 'r1')).code).toBe('ALREADY_EXISTS');
    expect(readdirSync(dir)).toEqual(['1']);
  });
});

describe('prepareRunResultsDir (runs wait / run --resume --results)', () => {
  /** A folder of run `runId`'s task `taskId` as gaxx run --results writes it. */
  const folder = (dir: string, name: string, runId: string, taskId: string, seq = `${taskId}\n`): void => {
    mkdirSync(join(dir, '1', name), { recursive: true });
    writeFileSync(join(dir, '1', name, 'seq'), seq);
    writeFileSync(join(dir, '1', name, 'stdout'), '');
    writeFileSync(join(dir, '1', name, 'stderr'), '');
    writeFileSync(join(dir, '1', name, 'result.json'), `${JSON.stringify({ runId, taskId }, null, 2)}\n`);
  };

  it('a new or empty DIR, or one of the run’s own folders: those are kept, a killed writer’s temp folder removed', () => {
    const made = prepareRunResultsDir(join(root, 'run-new'), 'r1');
    expect(made.written).toEqual(new Set());
    releaseResultsDir(made.root);
    expect(readdirSync(join(root, 'run-new'))).toEqual(['1']);
    const own = join(root, 'run-own');
    folder(own, 'a', 'r1', '1');
    folder(own, 'a\\#3', 'r1', '3');
    mkdirSync(join(own, '1', '.gaxx-2-0123456789ab.tmp'));
    const { root: real, written } = prepareRunResultsDir(own, 'r1');
    expect(real).toBe(realpathSync(own));
    expect(written).toEqual(new Set(['1', '3']));
    expect(readdirSync(join(own, '1')).sort()).toEqual(['a', 'a\\#3']);
    // Named by their records, as the run names them.
    const named = join(root, 'run-named');
    folder(named, 'a', 'r1', '1');
    folder(named, 'a\\#3', 'r1', '3');
    folder(named, '\\#4', 'r1', '4');
    writeFileSync(join(named, '1', 'a', 'result.json'), JSON.stringify({ runId: 'r1', taskId: '1', input: 'a' }));
    writeFileSync(join(named, '1', 'a\\#3', 'result.json'), JSON.stringify({ runId: 'r1', taskId: '3', input: 'a' }));
    writeFileSync(join(named, '1', '\\#4', 'result.json'), JSON.stringify({ runId: 'r1', taskId: '4', input: '' }));
    expect(prepareRunResultsDir(named, 'r1').written).toEqual(new Set(['1', '3', '4']));
  });

  it('another run’s folder, a folder that is none, a file: ALREADY_EXISTS, nothing removed or made', () => {
    const cases: Array<[string, (dir: string) => void, string]> = [
      ['theirs', (d) => folder(d, 'b', 'r2', '1'), "is run r2's"],
      ['no-seq', (d) => folder(d, 'b', 'r1', '1', '2\n'), 'is no results folder'],
      ['file-in-1', (d) => (mkdirSync(join(d, '1'), { recursive: true }), writeFileSync(join(d, '1', 'b'), 'x')), 'is not a folder'],
      ['file-beside', (d) => (mkdirSync(d), writeFileSync(join(d, 'notes'), 'x')), 'it holds "notes"'],
      ['one-a-file', (d) => (mkdirSync(d), writeFileSync(join(d, '1'), 'x')), "its '1' is not a directory"],
    ];
    for (const [name, make, says] of cases) {
      const dir = join(root, `run-${name}`);
      make(dir);
      if (name !== 'one-a-file') mkdirSync(join(dir, '1', '.gaxx-2-0123456789ab.tmp'), { recursive: true });
      const before = readdirSync(dir, { recursive: true }).sort();
      const e = failure(() => prepareRunResultsDir(dir, 'r1'));
      expect(e.code, name).toBe('ALREADY_EXISTS');
      expect(e.message, name).toContain(says);
      expect(readdirSync(dir, { recursive: true }).sort(), name).toEqual(before);
    }
  });

  it('a folder copied from elsewhere is refused, never read through a symlink, a FIFO or unbounded', () => {
    const outside = join(root, 'run-outside');
    folder(outside, 'a', 'r1', '1');
    const cases: Array<[string, (d: string) => void, string]> = [
      // A forged result.json as a symlink to a real one of the run: not a file gaxx wrote.
      [
        'json-link',
        (d) => (
          folder(d, 'a', 'r1', '1'),
          rmSync(join(d, '1', 'a', 'result.json')),
          symlinkSync(join(outside, '1', 'a', 'result.json'), join(d, '1', 'a', 'result.json'))
        ),
        'its result.json is a symlink',
      ],
      [
        'seq-link',
        (d) => (folder(d, 'a', 'r1', '1'), rmSync(join(d, '1', 'a', 'seq')), symlinkSync(join(outside, '1', 'a', 'seq'), join(d, '1', 'a', 'seq'))),
        'its seq is a symlink',
      ],
      [
        'stdout-link',
        (d) => (folder(d, 'a', 'r1', '1'), rmSync(join(d, '1', 'a', 'stdout')), symlinkSync('/etc/passwd', join(d, '1', 'a', 'stdout'))),
        'its stdout is no regular file',
      ],
      // Read with a plain open, a FIFO blocks until someone writes to it: forever.
      [
        'json-fifo',
        (d) => (folder(d, 'a', 'r1', '1'), rmSync(join(d, '1', 'a', 'result.json')), execFileSync('mkfifo', [join(d, '1', 'a', 'result.json')])),
        'its result.json is no regular file',
      ],
      [
        'seq-fifo',
        (d) => (folder(d, 'a', 'r1', '1'), rmSync(join(d, '1', 'a', 'seq')), execFileSync('mkfifo', [join(d, '1', 'a', 'seq')])),
        'its seq is no regular file',
      ],
      // Sparse: 64 MiB of nothing, far more than any result.json gaxx writes.
      ['json-huge', (d) => (folder(d, 'a', 'r1', '1'), truncateSync(join(d, '1', 'a', 'result.json'), 64 * 1024 * 1024)), 'its result.json is larger than'],
      ['extra-file', (d) => (folder(d, 'a', 'r1', '1'), writeFileSync(join(d, '1', 'a', 'notes'), 'x')), 'it holds ["notes","result.json"'],
      // A folder of the run under another name (renamed, or forged): not where the run puts that task.
      [
        'renamed',
        (d) => (folder(d, 'b', 'r1', '1'), writeFileSync(join(d, '1', 'b', 'result.json'), JSON.stringify({ runId: 'r1', taskId: '1', input: 'a' }))),
        `task 1's folder is named "a"`,
      ],
      ['two-of-a-task', (d) => (folder(d, 'a', 'r1', '1'), folder(d, 'b', 'r1', '1')), 'names task 1, whose folder is there already'],
    ];
    for (const [name, make, says] of cases) {
      const dir = join(root, `run-copied-${name}`);
      make(dir);
      const before = readdirSync(dir, { recursive: true }).sort();
      const e = failure(() => prepareRunResultsDir(dir, 'r1'));
      expect(e.code, name).toBe('ALREADY_EXISTS');
      expect(e.message, name).toContain(says);
      expect(e.message, name).toContain(dir);
      expect(readdirSync(dir, { recursive: true }).sort(), name).toEqual(before);
    }
  });

  it('a symlink for DIR/1 is refused, not followed', () => {
    const dir = join(root, 'run-link');
    mkdirSync(join(dir));
    mkdirSync(join(root, 'run-link-target'));
    symlinkSync(join(root, 'run-link-target'), join(dir, '1'));
    expect(failure(() => prepareRunResultsDir(dir, 'r1')).code).toBe('ALREADY_EXISTS');
  });
});
