/**
 * `--results DIR`: per task a folder in GNU parallel's `--results` layout,
 * `DIR/1/<input>/{seq,stdout,stderr}`, plus `result.json` (the task's result), written as each
 * result arrives. stdout and stderr hold the exact bytes. The folder name is the task's input
 * record (each-host runs: the host) with `\` written `\\` and `/` written `\_` (as parallel
 * does); an empty name, `.`, `..` or a name longer than 200 bytes is written `\#<seq>`, and every
 * task with the same input as an earlier record gets `<input>\#<seq>` (whichever ends first), so
 * every task has exactly one folder, the same on every run of the list.
 * DIR must not exist yet or be empty: two runs never mix their results.
 *
 * A folder is whole or absent: its files are written into a hidden temp folder beside it
 * (`.gaxx-<seq>-<random>.tmp`), which is renamed to its name only once all four are written. A
 * folder that cannot be written (a full disk) is removed and reported as FILE_ACCESS naming the
 * file and the fix; the views (views.ts) tell it and go on: the result itself is in Redis.
 *
 * Every name is made from what this process knows (the task id it enqueued, the record it read,
 * the host it pinned the task to), never from the result itself, which is read from Redis;
 * and every path written is checked to lie under DIR.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ERROR_CODES, fileAccessError, GaxxError, inside, type ErrorCode } from '../../proto/index.js';
import type { OutputChunk, TaskResult } from '../../scheduler/index.js';
import { makeOwnSubdir, prepareUserDir } from '../local-dirs.js';
import type { RunView } from './views.js';

/** The folder name for an input record. */
export function resultName(input: string, seq: string): string {
  const name = input.replace(/\\/g, '\\\\').replace(/\//g, '\\_').replace(/\0/g, '\\0');
  if (name === '' || name === '.' || name === '..' || Buffer.byteLength(name) > 200) return `\\#${seq}`;
  return name;
}

/**
 * Checks DIR (missing or empty) and creates it; ALREADY_EXISTS when it holds anything. Returns
 * its real path, which the results are written under (prepareUserDir).
 */
export function prepareResultsDir(dir: string): string {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new GaxxError('USAGE', `--results: '${dir}' is not a directory`);
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new GaxxError('FAILED_PRECONDITION', `--results: cannot read '${dir}': ${(e as Error).message}`);
  }
  if (entries.length > 0) throw new GaxxError('ALREADY_EXISTS', `--results: '${dir}' is not empty; give a new directory`);
  // Another user's directory could have what gaxx makes in it swapped for symlinks.
  const real = prepareUserDir(dir, '--results');
  makeOwnSubdir(join(real, '1'), '--results');
  return real;
}

/** A task id as gaxx makes them (a record number, or `<i>-<host>`): safe as a path component. */
const SEQ = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

/** Writes each task's folder as its result arrives. */
export class ResultsDirView implements RunView {
  private readonly root: string;

  constructor(
    dir: string,
    /** Each task's host, for a run of one task per host (task lists name folders by record). */
    private readonly hosts?: ReadonlyMap<string, string>,
  ) {
    this.root = resolve(dir, '1');
  }

  readonly label = '--results';

  start(): void {}
  live(): void {}
  end(): void {}

  /**
   * `input`: the task's record, as this process read it. The task id names the folder only once
   * it is known to be one this process enqueued: a run of one task per host finds its host by it
   * (a task it does not know gets no folder); a task list's results are those its stream counted
   * as its own (stream-run), and one without a text record (refused: not UTF-8, too long) is
   * written `\#<seq>`. FILE_ACCESS when the folder could not be written (none is left). A task
   * whose result did not come (`pending`: the wait ended early, or a cancel's grace passed) gets
   * no folder: its outcome is not known, and a folder is only ever a task's result; it is counted
   * among those not written (its reason as the code), which say how to get every result later.
   */
  result(r: TaskResult, output: OutputChunk[], _liveShown: boolean, input: string | undefined, pending = false): void {
    const seq = r.taskId;
    const name = input ?? (this.hosts ? this.hosts.get(seq) : '');
    if (name === undefined || !SEQ.test(seq)) return;
    if (pending) {
      const code: ErrorCode = r.reason in ERROR_CODES ? (r.reason as ErrorCode) : 'UNAVAILABLE';
      throw new GaxxError(code, `no result came before the wait ended (${r.reason || r.outcome}), so no folder is written for it`);
    }
    const base = resultName(name, seq);
    const bytes = (s: 1 | 2): Buffer => Buffer.concat(output.filter((c) => c.stream === s).map((c) => c.data));
    const files: Array<[string, string | Buffer]> = [
      ['seq', `${seq}\n`],
      ['stdout', bytes(1)],
      ['stderr', bytes(2)],
      ['result.json', `${JSON.stringify({ ...r, ...(input !== undefined ? { input } : {}) }, null, 2)}\n`],
    ];
    const folder = this.folder(base);
    const tmp = this.folder(`.gaxx-${seq}-${randomBytes(6).toString('hex')}.tmp`);
    try {
      mkdirSync(tmp);
      // O_EXCL: the temp folder is new, nothing in it may be a planted symlink.
      for (const [f, data] of files) writeFileSync(join(tmp, f), data, { flag: 'wx' });
      this.place(tmp, base, seq);
    } catch (e) {
      try {
        rmSync(tmp, { recursive: true, force: true });
      } catch {
        // What could not be written may not be removable either: the failure reported is the write's.
      }
      throw writeError(e, folder);
    }
  }

  /**
   * Renames the written temp folder to `base`, or to `base\#<seq>` when another task has that
   * name. Of the tasks with one name, the first record keeps it, whichever ends first: a task of
   * a lower number that ends later moves the one there to `base\#<its seq>` and takes `base`, so
   * that the layout is the same on every run of one list (`DIR/1/a` is always record a's first).
   */
  private place(tmp: string, base: string, seq: string): void {
    try {
      renameSync(tmp, this.folder(base));
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw e;
    }
    const there = this.seqIn(base);
    if (there !== undefined && Number(seq) < Number(there)) {
      renameSync(this.folder(base), this.folder(`${base}\\#${there}`));
      renameSync(tmp, this.folder(base));
    } else renameSync(tmp, this.folder(`${base}\\#${seq}`));
  }

  /** The record number of the task in folder `name` when both it and this are record numbers (task lists), else undefined. */
  private seqIn(name: string): string | undefined {
    try {
      const seq = readFileSync(join(this.folder(name), 'seq'), 'utf8').trim();
      return /^[1-9][0-9]{0,15}$/.test(seq) ? seq : undefined;
    } catch {
      return undefined;
    }
  }

  /** DIR/1/`name`; INTERNAL if that is not a folder right under DIR/1 (the names above make none other). */
  private folder(name: string): string {
    const folder = join(this.root, name);
    if (!inside(this.root, folder) || resolve(folder, '..') !== this.root)
      throw new GaxxError('INTERNAL', `--results: the folder for task ${JSON.stringify(name)} would not lie in ${this.root}`);
    return folder;
  }
}

/**
 * A failed write of a results folder as FILE_ACCESS naming the folder (not its temp one, nor a
 * file in it: neither is left, while DIR/1 is there for `df`) and, for a full disk, the fix.
 */
function writeError(e: unknown, path: string): unknown {
  if (e instanceof GaxxError) return e;
  const err = e as NodeJS.ErrnoException | null;
  // A write to a descriptor (ENOSPC) names no file; a failure in the temp folder names that one.
  if (err && typeof err.errno === 'number' && typeof err.code === 'string') err.path = path;
  const elsewhere = 'give --results a directory on another file system';
  return fileAccessError(e, { elsewhere }) ?? new GaxxError('FILE_ACCESS', `cannot write ${path}: ${(e as Error).message}`, { cause: e, details: { path } });
}
