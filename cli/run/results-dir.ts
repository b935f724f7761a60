/**
 * `--results DIR`: per task a folder in GNU parallel's `--results` layout,
 * `DIR/1/<input>/{seq,stdout,stderr}`, plus `result.json` (the task's result), written as each
 * result arrives. stdout and stderr hold the exact bytes. The folder name is the task's input
 * record (each-host runs: the host) with `\` written `\\` and `/` written `\_` (as parallel
 * does); an empty name, `.`, `..` or a name longer than 200 bytes is written `\#<seq>`, and every
 * task with the same input as an earlier record gets `<input>\#<seq>` (whichever ends first), so
 * every task has exactly one folder, the same on every run of the list.
 * DIR must not exist yet or be empty: two runs never mix their results. `gaxx runs wait ID` and
 * `gaxx run --resume ID` complete a DIR that run's own `--results` left incomplete (its gaxx run
 * killed, its wait ended early, a full disk): a folder there is whole by construction and kept as
 * it is, the missing ones are written as that run would have written them (prepareRunResultsDir).
 *
 * A folder is whole or absent: its files are written into a hidden temp folder beside it
 * (`.gaxx-<seq>-<random>.tmp`), which is renamed to its name only once all four are written. A
 * folder that cannot be written (a full disk) is removed and reported as FILE_ACCESS naming the
 * file and the fix; the views (views.ts) tell it and go on: the result itself is in Redis.
 *
 * One writer of a DIR at a time: each holds the claim `DIR/.gaxx-writer` (its pid, start time and
 * boot id; claim-file.ts) from its check of DIR until it exits, so that a second `gaxx run
 * --results`, `gaxx runs wait --results` or `gaxx run --resume --results` of the same DIR is
 * refused (FAILED_PRECONDITION naming the writer's pid) instead of removing the first one's temp
 * folders as a killed writer's, or moving folders the first one is placing. A claim whose process
 * is gone (killed) is taken over.
 *
 * Every name is made from what this process knows (the task id it enqueued, the record it read,
 * the host it pinned the task to; completing a run's DIR, what the run kept of those beside its
 * results), never from the result itself, which is read from Redis; and every path written is
 * checked to lie under DIR.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  claimMark,
  ERROR_CODES,
  fileAccessError,
  GaxxError,
  inside,
  processClaimText,
  releaseClaim,
  takeProcessClaim,
  type ErrorCode,
} from '../../proto/index.js';
import type { OutputChunk, TaskResult } from '../../scheduler/index.js';
import { checkOwnDir, makeOwnSubdir, prepareUserDir } from '../local-dirs.js';
import type { RunView } from './views.js';

/** The folder name for an input record. */
export function resultName(input: string, seq: string): string {
  const name = input.replace(/\\/g, '\\\\').replace(/\//g, '\\_').replace(/\0/g, '\\0');
  if (name === '' || name === '.' || name === '..' || Buffer.byteLength(name) > 200) return `\\#${seq}`;
  return name;
}

/**
 * Checks DIR (missing or empty) and creates it; ALREADY_EXISTS when it holds anything,
 * FAILED_PRECONDITION when another gaxx is writing into it. Returns its real path, which the
 * results are written under (prepareUserDir), claimed by this process until it exits.
 */
export function prepareResultsDir(dir: string): string {
  const notEmpty = (): GaxxError => new GaxxError('ALREADY_EXISTS', `--results: '${dir}' is not empty; give a new directory`);
  if (entriesOf(dir).length > 0) throw notEmpty();
  return claimDir(dir, (real) => {
    // Another writer may have begun between the look above and the claim.
    if (entriesOf(real).length > 0) throw notEmpty();
    makeOwnSubdir(join(real, '1'), '--results');
  }).real;
}

/**
 * DIR made (prepareUserDir) and claimed for this process (claimWriter), then `check` run on its
 * real path while the claim is held; a check that throws releases the claim.
 */
function claimDir<T>(dir: string, check: (real: string) => T): { real: string; checked: T } {
  // Another user's directory could have what gaxx makes in it swapped for symlinks.
  const real = prepareUserDir(dir, '--results');
  claimWriter(real, dir);
  try {
    return { real, checked: check(real) };
  } catch (e) {
    releaseResultsDir(real);
    throw e;
  }
}

/** The claim a writer of a DIR holds in it (see the module comment). */
export const WRITER_CLAIM = '.gaxx-writer';
/** The claim and the files beside it a claimer makes and removes at once (claim-file.ts): none is content of DIR. */
const CLAIM_FILE = /^\.gaxx-writer(\.(new|next|stale)\.[0-9]+\.[0-9]+)?$/;
/** The claims this process holds, released as it exits. */
const claimed = new Set<string>();
let releasedAtExit = false;

const mine = (text: string): boolean => claimMark(text)?.pid === process.pid;

/** Claims DIR (real path `real`) for this process; FAILED_PRECONDITION when another live gaxx holds it. */
function claimWriter(real: string, dir: string): void {
  const path = join(real, WRITER_CLAIM);
  if (claimed.has(path)) return;
  const got = takeProcessClaim(path, processClaimText());
  if (got.taken) {
    claimed.add(path);
    if (!releasedAtExit) process.once('exit', () => [...claimed].forEach(releaseResultsClaim));
    releasedAtExit = true;
    return;
  }
  const pid = claimMark(got.held)?.pid;
  throw new GaxxError(
    'FAILED_PRECONDITION',
    `--results: another gaxx${pid ? ` (pid ${pid})` : ''} is writing results into '${dir}' (${path}): wait for it to end, or stop it, then run this again`,
    { details: { ...(pid ? { pid } : {}), path } },
  );
}

/** Ends this process's claim on DIR `real` (its real path, as prepare*ResultsDir returned it); it ends at exit anyway. */
export function releaseResultsDir(real: string): void {
  const path = join(real, WRITER_CLAIM);
  if (claimed.delete(path)) releaseResultsClaim(path);
}

function releaseResultsClaim(path: string): void {
  try {
    releaseClaim(path, mine);
  } catch {
    // Left: a claim whose process is gone is taken over.
  }
}

/** DIR's entries, but for a writer's claim; none when it does not exist yet. */
function entriesOf(dir: string): string[] {
  try {
    return readdirSync(dir).filter((e) => !CLAIM_FILE.test(e));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new GaxxError('USAGE', `--results: '${dir}' is not a directory`);
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new GaxxError('FAILED_PRECONDITION', `--results: cannot read '${dir}': ${(e as Error).message}`);
    return [];
  }
}

/** A task id as gaxx makes them (a record number, or `<i>-<host>`): safe as a path component. */
const SEQ = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;
/** A task list's task id: its record's number. */
const RECORD_NO = /^[1-9][0-9]{0,15}$/;
/** The temp folder a writer killed mid-write left (`.gaxx-<seq>-<random>.tmp`): no task's folder. */
const TEMP = /^\.gaxx-[A-Za-z0-9][A-Za-z0-9._-]{0,79}-[0-9a-f]{12}\.tmp$/;

/** A `--results` DIR to complete: its real path, and the tasks whose folders are already there. */
export interface RunResultsDir {
  root: string;
  written: ReadonlySet<string>;
}

/**
 * `--results DIR` of `gaxx runs wait ID` and `gaxx run --resume ID`: DIR new or empty, or the
 * folder run ID's own `--results` wrote into. A folder is that run's when it holds the four
 * regular files gaxx writes and nothing else, its `result.json` names the run (`runId`) and its
 * `seq` the same task, its name is the one that task's record gets, and no other folder names
 * that task (a DIR copied from elsewhere may hold anything: folderTask reads only small regular
 * files, never through a symlink, never blocking); such folders are kept as they are (each was
 * written whole) and their tasks returned, so that only the missing ones are written. Anything
 * else in DIR (another run's folders, a file of someone's) is ALREADY_EXISTS, and nothing is
 * written, made or removed: the two runs' results must not mix. A temp folder a killed writer
 * left is no folder: it is removed, once DIR is known to be the run's. FAILED_PRECONDITION while
 * another gaxx writes into DIR (its claim, above): nothing is read, written or removed then.
 */
export function prepareRunResultsDir(dir: string, runId: string): RunResultsDir {
  const foreignIn = (entries: string[]): void => {
    const foreign = entries.find((e) => e !== '1');
    if (foreign !== undefined) throw notTheRuns(dir, runId, `it holds ${JSON.stringify(foreign)}`);
  };
  foreignIn(entriesOf(dir));
  // DIR/1 is read once no other gaxx writes into it (its temp folders are a live writer's then).
  const { real, checked: found } = claimDir(dir, (real) => {
    const entries = entriesOf(real);
    foreignIn(entries);
    const one = join(real, '1');
    const folders = entries.length > 0 ? runFolders(dir, one, runId) : { written: new Set<string>(), temps: [] };
    makeOwnSubdir(one, '--results');
    return folders;
  });
  const one = join(real, '1');
  for (const t of found.temps) {
    try {
      rmSync(join(one, t), { recursive: true, force: true });
    } catch {
      // Left as it was: a temp folder is never taken for a task's folder.
    }
  }
  return { root: real, written: found.written };
}

/** The tasks of run `runId` whose folders DIR/1 (`one`) holds, and its leftover temp folders; ALREADY_EXISTS on anything else. */
function runFolders(dir: string, one: string, runId: string): { written: Set<string>; temps: string[] } {
  const st = lstatSync(one);
  if (!st.isDirectory()) throw notTheRuns(dir, runId, "its '1' is not a directory");
  // A folder of another user's could be swapped while it is read: as gaxx run refuses it.
  checkOwnDir(one, '--results', 0o002);
  const written = new Set<string>();
  const temps: string[] = [];
  for (const name of readdirSync(one)) {
    const path = join(one, name);
    const isDir = lstatSync(path).isDirectory();
    if (isDir && TEMP.test(name)) temps.push(name);
    else if (!isDir) throw notTheRuns(dir, runId, `1/${JSON.stringify(name)} is not a folder`);
    else {
      const task = folderTask(dir, path, name, runId);
      // gaxx writes one folder per task: a second one naming it is a copy, not the run's.
      if (written.has(task)) throw notTheRuns(dir, runId, `1/${JSON.stringify(name)} names task ${task}, whose folder is there already`);
      written.add(task);
    }
  }
  return { written, temps };
}

/** The task whose folder `path` is, when it is run `runId`'s (its result.json and seq agree); else ALREADY_EXISTS. */
function folderTask(dir: string, path: string, name: string, runId: string): string {
  const folder = `1/${JSON.stringify(name)}`;
  // A folder gaxx wrote holds its four files and nothing else, each a regular file.
  const files = readdirSync(path).sort();
  if (files.join('/') !== FILES.join('/'))
    throw notTheRuns(dir, runId, `${folder} is no results folder of it (it holds ${JSON.stringify(files)}, not ${FILES.join(', ')})`);
  for (const f of ['stdout', 'stderr'])
    if (!lstatSync(join(path, f)).isFile()) throw notTheRuns(dir, runId, `${folder} is no results folder of it (its ${f} is no regular file)`);
  let unread = '';
  const read = (file: string, max: number): string | undefined => {
    try {
      return readSmallFile(join(path, file), max);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ELOOP: a symlink (O_NOFOLLOW); EISDIR, ENXIO: no regular file; EFBIG: larger than gaxx writes it.
      const why = { ENOENT: 'missing', ELOOP: 'a symlink', EISDIR: 'a directory', ENXIO: 'no regular file', EFBIG: `larger than ${max} bytes` }[code ?? ''];
      if (why === undefined) throw fileAccessError(e) ?? e;
      unread = `: its ${file} is ${why}`;
      return undefined;
    }
  };
  let result: { runId?: unknown; taskId?: unknown } | undefined;
  try {
    result = JSON.parse(read('result.json', MAX_RESULT_JSON) ?? 'null') as typeof result;
  } catch {
    result = undefined;
  }
  if (typeof result?.runId === 'string' && result.runId !== runId) throw notTheRuns(dir, runId, `${folder} is run ${result.runId}'s`);
  const taskId = result?.taskId;
  if (result?.runId !== runId || typeof taskId !== 'string' || !SEQ.test(taskId) || read('seq', MAX_SEQ) !== `${taskId}\n`)
    throw notTheRuns(dir, runId, `${folder} is no results folder of it (its result.json and seq do not name one of its tasks${unread})`);
  // Its record names its folder (the record itself, or `<record>\#<seq>` when an earlier one took that).
  const input = (result as { input?: unknown }).input;
  const base = typeof input === 'string' ? resultName(input, taskId) : undefined;
  if (base !== undefined && name !== base && name !== `${base}\\#${taskId}`)
    throw notTheRuns(dir, runId, `${folder} is no results folder of it (task ${taskId}'s folder is named ${JSON.stringify(base)})`);
  return taskId;
}

/** The files of a task's folder, sorted. */
const FILES = ['result.json', 'seq', 'stderr', 'stdout'];
/** The most a result.json gaxx writes holds (a record is at most 128 KiB, escaped up to 6 times that) and a seq file. */
const MAX_RESULT_JSON = 4 * 1024 * 1024;
const MAX_SEQ = 128;

/**
 * A file of a folder in DIR/1 as text, read only when it is a regular file of at most `max`
 * bytes: never through a symlink (O_NOFOLLOW: ELOOP), never blocking on a FIFO or device
 * (O_NONBLOCK, and refused by its fstat before any read: EISDIR, ENXIO), never more than `max`
 * bytes (EFBIG). A DIR copied from elsewhere may hold anything under a folder's name.
 */
function readSmallFile(path: string, max: number): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    const fail = (code: string, what: string): NodeJS.ErrnoException => Object.assign(new Error(`${path}: ${what}`), { code, path });
    if (st.isDirectory()) throw fail('EISDIR', 'is a directory');
    if (!st.isFile()) throw fail('ENXIO', 'is no regular file');
    if (st.size > max) throw fail('EFBIG', `is larger than ${max} bytes`);
    // One byte more than it holds: a file that grows meanwhile is no file gaxx wrote either.
    const buf = Buffer.alloc(st.size + 1);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    if (n > st.size) throw fail('EFBIG', 'grew while it was read');
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function notTheRuns(dir: string, runId: string, why: string): GaxxError {
  return new GaxxError(
    'ALREADY_EXISTS',
    `--results: '${dir}' holds what run ${runId}'s --results did not write (${why}); nothing was written: give a new or empty directory, or the one run ${runId}'s gaxx run --results wrote into`,
  );
}

/** Writes each task's folder as its result arrives. */
export class ResultsDirView implements RunView {
  private readonly root: string;

  constructor(
    dir: string,
    /** Each task's host, for a run of one task per host (task lists name folders by record). */
    private readonly hosts?: ReadonlyMap<string, string>,
    /** Tasks whose folders are there already (a DIR being completed, prepareRunResultsDir): kept as they are. */
    private readonly written: ReadonlySet<string> = new Set(),
  ) {
    this.root = resolve(dir, '1');
  }

  readonly label = '--results';

  /** The command that writes the folders this view could not: once the disk has room, or the run's other results came. */
  completeWith(runId: string): string {
    const dir = resolve(this.root, '..');
    const word = /^[\w./:@%+,=-]+$/.test(dir) ? dir : `'${dir.replace(/'/g, `'\\''`)}'`;
    return `gaxx runs wait ${runId} --results ${word} writes the missing folders`;
  }

  start(): void {}
  live(): void {}
  end(): void {}

  /**
   * `input`: the task's record, as this process read it (a shown run's: as Redis keeps it). The
   * task id names the folder only once it is known to be one of the run's: a run of one task per
   * host finds its host by it (a shown run's task whose host could not be read gets no folder,
   * counted as not written); a task list's results are those its stream counted as its own
   * (stream-run), and one without a text record (refused: not UTF-8, too long) is written
   * `\#<seq>`. FILE_ACCESS when the folder could not be written (none is left). A task
   * whose result did not come (`pending`: the wait ended early, or a cancel's grace passed) gets
   * no folder: its outcome is not known, and a folder is only ever a task's result; it is counted
   * among those not written (its reason as the code), which say how to get every result later.
   * A task whose folder is there already (`written`) keeps it as it is. `unnamed`: why a shown
   * run's record of the task, its folder's name, is not known (thrown: the folder is not written).
   */
  result(r: TaskResult, output: OutputChunk[], _liveShown: boolean, input: string | undefined, pending = false, unnamed?: GaxxError): void {
    const seq = r.taskId;
    if (!SEQ.test(seq) || this.written.has(seq)) return;
    if (unnamed) throw unnamed;
    const name = input ?? (this.hosts ? this.hosts.get(seq) : '');
    // Every task of a run of one task per host has its host (a shown run's, while the run keeps them).
    if (name === undefined)
      throw new GaxxError(
        'NOT_FOUND',
        "its host, which names its folder, is not known (the run's hosts could not be read, or expired), so no folder is written for it",
      );
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
    if (this.renamed(tmp, base, seq)) return;
    const there = this.seqIn(base);
    if (there !== undefined && RECORD_NO.test(there) && Number(seq) < Number(there)) {
      renameSync(this.folder(base), this.folder(`${base}\\#${there}`));
      renameSync(tmp, this.folder(base));
    } else if (!this.renamed(tmp, `${base}\\#${seq}`, seq))
      throw new GaxxError('ALREADY_EXISTS', `${this.folder(`${base}\\#${seq}`)} holds another task's folder`);
  }

  /**
   * Renames `tmp` to `name`: false when another folder is there. One of this same task (a second
   * writer completing the run's DIR beside the first) is whole too: `tmp` is dropped for it.
   */
  private renamed(tmp: string, name: string, seq: string): boolean {
    try {
      renameSync(tmp, this.folder(name));
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw e;
    }
    if (this.seqIn(name) !== seq) return false;
    rmSync(tmp, { recursive: true, force: true });
    return true;
  }

  /** The task id in folder `name`'s seq file, when it has one. */
  private seqIn(name: string): string | undefined {
    try {
      const seq = readSmallFile(join(this.folder(name), 'seq'), MAX_SEQ).trim();
      return SEQ.test(seq) ? seq : undefined;
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
